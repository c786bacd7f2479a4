//! meshdrop: browser-to-browser file sharing. The crate builds twice: with `server` for the
//! HTTP server (SSR, server functions, database) and with `web` for the browser (hydration).
//! `protocol`, `transfer_view` and `app` compile in both; `server` and `web` hold each side's
//! own code.

pub mod api;
pub mod app;
pub mod protocol;
pub mod swarm;
pub mod transfer_view;

#[cfg(feature = "server")]
pub mod server;

#[cfg(feature = "web")]
pub mod web;
