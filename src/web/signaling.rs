//! The hub's WebSocket: typed messages in, typed messages out.

use super::js_error;
use crate::protocol::signal::{ClientMessage, ServerMessage};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

/// What the socket reports to the shell.
pub enum SignalingEvent {
    Message(ServerMessage),
    Closed(String),
}

/// This tab's WebSocket to the server's signaling hub, for one room.
pub struct SignalingSocket {
    ws: web_sys::WebSocket,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_close: Closure<dyn FnMut(web_sys::CloseEvent)>,
}

impl SignalingSocket {
    /// Opens `/api/rooms/{room}/signal` on this origin, offering the ticket as a subprotocol
    /// (never in the URL).
    pub fn connect(
        room: &str,
        ticket: &str,
        mut on_event: impl FnMut(SignalingEvent) + 'static,
    ) -> Result<Self, String> {
        let origin = super::origin();
        let url = format!(
            "{}/api/rooms/{room}/signal",
            origin.replacen("http", "ws", 1)
        );
        let protocols: js_sys::Array = crate::protocol::signal::offered_protocols(ticket)
            .iter()
            .map(|p| wasm_bindgen::JsValue::from_str(p))
            .collect();
        let ws = web_sys::WebSocket::new_with_str_sequence(&url, &protocols).map_err(js_error)?;
        let (tx, rx) = futures_channel::mpsc::unbounded::<SignalingEvent>();
        let tx_close = tx.clone();
        let on_message =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                let Some(text) = e.data().as_string() else {
                    return;
                };
                let event = match ServerMessage::parse(&text) {
                    Ok(msg) => SignalingEvent::Message(msg),
                    Err(err) => {
                        SignalingEvent::Closed(format!("bad message from the server: {err}"))
                    }
                };
                let _ = tx.unbounded_send(event);
            });
        let on_close =
            Closure::<dyn FnMut(web_sys::CloseEvent)>::new(move |e: web_sys::CloseEvent| {
                let reason = if e.reason().is_empty() {
                    format!("signaling closed (code {})", e.code())
                } else {
                    format!("signaling closed: {} (code {})", e.reason(), e.code())
                };
                let _ = tx_close.unbounded_send(SignalingEvent::Closed(reason));
            });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        // Events reach the shell in order through one channel.
        wasm_bindgen_futures::spawn_local(async move {
            use futures_util::StreamExt;
            let mut rx = rx;
            while let Some(event) = rx.next().await {
                on_event(event);
            }
        });
        Ok(Self {
            ws,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    pub fn send(&self, msg: &ClientMessage) {
        let _ = self.ws.send_with_str(&msg.to_json());
    }
}

impl Drop for SignalingSocket {
    fn drop(&mut self) {
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}
