//! A button that copies text to the clipboard and says whether it worked.

use dioxus::prelude::*;

#[derive(Clone, Copy, PartialEq)]
enum Copied {
    Not,
    Yes,
    Failed,
}

#[component]
pub fn CopyButton(
    text: String,
    #[props(default = "Copy link".to_string())] label: String,
) -> Element {
    let mut copied = use_signal(|| Copied::Not);
    let onclick = move |_| {
        let text = text.clone();
        async move {
            // The clipboard API needs a secure context (https or localhost) and a user gesture.
            let eval = document::eval(
                "const t = await dioxus.recv();
                 try { await navigator.clipboard.writeText(t); return true; } catch (e) { return false; }",
            );
            let ok =
                eval.send(text).is_ok() && matches!(eval.await, Ok(serde_json::Value::Bool(true)));
            copied.set(if ok { Copied::Yes } else { Copied::Failed });
        }
    };
    let text_now = match copied() {
        Copied::Not => label,
        Copied::Yes => "Copied!".to_string(),
        Copied::Failed => "Copy failed: select the link".to_string(),
    };
    rsx! {
        button {
            r#type: "button",
            class: "rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium hover:bg-slate-100",
            "data-testid": "copy-link",
            onclick,
            "{text_now}"
        }
    }
}
