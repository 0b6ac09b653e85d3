//! The prompt text an OpenAI-style request asks for, as the simulated prefix cache sees it.
//!
//! Chat Completions: every message in order, each rendered as its role, a newline, its text and a
//! newline ([`chat_prompt`]); a message's text is its `content` string, or its content parts' `text`
//! fields joined by newlines. Completions: the `prompt` string, or an array of strings joined by
//! newlines. The same function renders the `llm-bench` simulator's prompts, so the simulated and
//! the served caches see the same tokens.

use serde_json::Value;

/// One chat message as `role\ntext\n`, appended to `out`.
pub fn push_message(out: &mut String, role: &str, text: &str) {
    out.push_str(role);
    out.push('\n');
    out.push_str(text);
    out.push('\n');
}

/// The prompt text of chat messages given as `(role, text)`.
pub fn chat_prompt<'a>(messages: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (role, text) in messages {
        push_message(&mut out, role, text);
    }
    out
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The prompt text of a request body for `path` (`/v1/chat/completions` or `/v1/completions`).
///
/// # Errors
/// A body without `messages` (chat) or `prompt` (completions) of the expected shape.
pub fn request_prompt(path: &str, body: &Value) -> Result<String, String> {
    if path == "/v1/chat/completions" {
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .ok_or("messages: expected an array")?;
        let mut out = String::new();
        for message in messages {
            let role = message.get("role").and_then(Value::as_str).unwrap_or("");
            let text = message.get("content").map(content_text).unwrap_or_default();
            push_message(&mut out, role, &text);
        }
        Ok(out)
    } else {
        match body.get("prompt") {
            Some(Value::String(text)) => Ok(text.clone()),
            Some(Value::Array(parts)) => Ok(parts
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")),
            _ => Err("prompt: expected a string or an array of strings".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_messages_render_in_order_with_roles() {
        let body: Value = serde_json::from_str(
            r#"{"messages":[{"role":"system","content":"be brief"},
                {"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url"},{"type":"text","text":"there"}]}]}"#,
        )
        .unwrap();
        let text = request_prompt("/v1/chat/completions", &body).unwrap();
        assert_eq!(text, "system\nbe brief\nuser\nhi\nthere\n");
        assert_eq!(
            text,
            chat_prompt([("system", "be brief"), ("user", "hi\nthere")])
        );
    }

    #[test]
    fn completions_take_the_prompt() {
        let one: Value = serde_json::from_str(r#"{"prompt":"a b"}"#).unwrap();
        let many: Value = serde_json::from_str(r#"{"prompt":["a","b"]}"#).unwrap();
        assert_eq!(request_prompt("/v1/completions", &one).unwrap(), "a b");
        assert_eq!(request_prompt("/v1/completions", &many).unwrap(), "a\nb");
        assert!(request_prompt("/v1/completions", &Value::Null).is_err());
        assert!(request_prompt("/v1/chat/completions", &one).is_err());
    }
}
