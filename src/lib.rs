//! meshdrop: browser-to-browser file sharing. The crate builds twice: with `server` for the
//! HTTP server (SSR, server functions, database) and with `web` for the browser (hydration).
//! `protocol` and `app` compile in both; `server` and `web` hold each side's own code.

pub mod api;
pub mod app;
pub mod protocol;
pub mod swarm;

#[cfg(feature = "server")]
pub mod server;

#[cfg(feature = "web")]
pub mod web;
