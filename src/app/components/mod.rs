//! Small reusable pieces of UI.

mod copy_button;
mod qr_code;
mod transfer_panel;

pub use copy_button::CopyButton;
pub use qr_code::QrCode;
pub use transfer_panel::TransferPanel;
