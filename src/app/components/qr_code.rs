//! A QR code of a link, rendered as inline SVG (same markup on the server and in the browser).

use dioxus::prelude::*;

#[component]
pub fn QrCode(text: String) -> Element {
    let svg = use_memo(move || render_svg(&text));
    match svg() {
        Some(svg) => rsx! {
            div { class: "qr inline-block rounded-lg bg-white p-2 shadow", "aria-label": "QR code of the link", dangerous_inner_html: svg }
        },
        None => {
            rsx! { p { class: "text-sm text-slate-500", "This link is too long for a QR code." } }
        }
    }
}

fn render_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color>()
            .min_dimensions(180, 180)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_links_as_svg() {
        let svg = super::render_svg("http://127.0.0.1:8080/room/AAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert!(
            svg.starts_with("<?xml") || svg.starts_with("<svg"),
            "{}",
            &svg[..40]
        );
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
    }
}
