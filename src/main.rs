//! Entry point: the server build serves the app, the web build hydrates it.

fn main() {
    #[cfg(feature = "server")]
    meshdrop::server::main();

    #[cfg(all(feature = "web", not(feature = "server")))]
    dioxus::launch(meshdrop::app::App);
}
