//! Small reusable pieces of UI.

mod copy_button;
mod qr_code;

pub use copy_button::CopyButton;
pub use qr_code::QrCode;
