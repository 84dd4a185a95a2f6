//! REST agents (perplexity, xai): one streaming OpenAI-compatible chat completion over SSE,
//! `POST {base_url}/chat/completions` with `{"model", "messages":[{"role":"user","content"}],
//! "stream": true}` and `Authorization: Bearer <token>`. Each delta is handed on as it arrives
//! (the supervisor appends it to agent-stdout.txt); the full answer becomes output.md. Every
//! failure (HTTP status, connection, broken stream) is a one-line summary naming the agent.

use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::config::AgentType;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an error body goes into the summary.
const BODY_EXCERPT: usize = 300;

/// The default endpoint and model of a REST agent type.
pub fn defaults(agent_type: AgentType) -> Option<(&'static str, &'static str)> {
    match agent_type {
        AgentType::Perplexity => Some(("https://api.perplexity.ai", "sonar-pro")),
        AgentType::Xai => Some(("https://api.x.ai/v1", "grok-4")),
        _ => None,
    }
}

/// One chat request.
#[derive(Clone)]
pub struct ChatRequest<'a> {
    /// Agent type (names the agent in summaries).
    pub agent_type: AgentType,
    /// API base, e.g. `https://api.x.ai/v1`; `/chat/completions` is appended.
    pub base_url: &'a str,
    /// Model name.
    pub model: &'a str,
    /// Bearer token.
    pub token: &'a str,
    /// The user message.
    pub prompt: &'a str,
    /// Counts what arrives (the response head as 1, then every byte of the body), so that a
    /// watcher can tell a stalled stream from a slow one.
    pub received: Option<&'a AtomicU64>,
}

impl std::fmt::Debug for ChatRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatRequest")
            .field("agent_type", &self.agent_type)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("token", &"***")
            .finish()
    }
}

/// The endpoint of `base_url`.
pub fn endpoint(base_url: &str) -> String {
    format!("{}/chat/completions", base_url.trim_end_matches('/'))
}

/// Sends the request and streams the answer: `on_delta` gets each piece of content as it
/// arrives. Returns the full answer, or the error summary (`<agent>: …`).
pub fn stream_chat(
    req: &ChatRequest<'_>,
    mut on_delta: impl FnMut(&str),
) -> Result<String, String> {
    let name = req.agent_type.as_str();
    let url = endpoint(req.base_url);
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(format!(
            "{name}: base_url {:?} must start with http:// or https://",
            req.base_url
        ));
    }
    let body = serde_json::json!({
        "model": req.model,
        "messages": [{ "role": "user", "content": req.prompt }],
        "stream": true,
    })
    .to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .build()
        .into();
    let response = agent
        .post(&url)
        .header("Authorization", &format!("Bearer {}", req.token))
        .header("Accept", "text/event-stream")
        .content_type("application/json")
        .send(body.as_bytes())
        .map_err(|e| format!("{name}: request to {url} failed: {e}"))?;
    if let Some(received) = req.received {
        received.fetch_add(1, Ordering::Relaxed);
    }
    let status = response.status();
    let is_sse = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let mut reader = Counted {
        inner: response.into_body().into_reader(),
        received: req.received,
    };
    if !status.is_success() {
        let mut text = String::new();
        let _ = reader.by_ref().take(64 * 1024).read_to_string(&mut text);
        return Err(format!(
            "{name}: HTTP {} {}: {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            excerpt(&text)
        ));
    }
    if is_sse {
        read_sse(name, BufReader::new(reader), &mut on_delta)
    } else {
        // A server may answer a streaming request with one JSON completion.
        let mut text = String::new();
        reader
            .read_to_string(&mut text)
            .map_err(|e| format!("{name}: broken response: {e}"))?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{name}: response is neither SSE nor JSON ({e}): {}",
                excerpt(&text)
            )
        })?;
        let answer = doc["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| {
                format!(
                    "{name}: response has no choices[0].message.content: {}",
                    excerpt(&text)
                )
            })?
            .to_string();
        on_delta(&answer);
        Ok(answer)
    }
}

/// A reader that adds the bytes it reads to a counter.
struct Counted<'a, R> {
    inner: R,
    received: Option<&'a AtomicU64>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(received) = self.received {
            received.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Reads an SSE stream of chat completion chunks until `data: [DONE]` (or the end of a
/// stream whose last chunk had a finish_reason).
fn read_sse(
    name: &str,
    reader: impl BufRead,
    on_delta: &mut dyn FnMut(&str),
) -> Result<String, String> {
    let mut answer = String::new();
    let mut finished = false;
    for line in reader.lines() {
        let line = line.map_err(|e| format!("{name}: broken stream: {e}"))?;
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(answer);
        }
        if data.is_empty() {
            continue;
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|e| format!("{name}: broken stream: bad chunk ({e}): {}", excerpt(data)))?;
        if let Some(err) = chunk.get("error") {
            let message = err["message"]
                .as_str()
                .map_or_else(|| err.to_string(), str::to_string);
            return Err(format!("{name}: error in stream: {}", excerpt(&message)));
        }
        let choice = &chunk["choices"][0];
        if let Some(delta) = choice["delta"]["content"].as_str() {
            if !delta.is_empty() {
                on_delta(delta);
                answer.push_str(delta);
            }
        }
        if choice["finish_reason"].is_string() {
            finished = true;
        }
    }
    if finished {
        Ok(answer)
    } else {
        Err(format!(
            "{name}: broken stream: the connection closed before the answer was finished"
        ))
    }
}

/// The first [`BODY_EXCERPT`] characters of `text`, on one line.
fn excerpt(text: &str) -> String {
    let one_line: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(BODY_EXCERPT) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_deltas_and_done() {
        let stream = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n\
                      : keep-alive\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n\
                      data: [DONE]\n\n";
        let mut seen = Vec::new();
        let answer = read_sse("xai", stream.as_bytes(), &mut |d| seen.push(d.to_string())).unwrap();
        assert_eq!(answer, "Hello");
        assert_eq!(seen, ["Hel", "lo"]);
    }

    #[test]
    fn sse_cut_short_is_broken_unless_finished() {
        let cut = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n";
        let err = read_sse("xai", cut.as_bytes(), &mut |_| {}).unwrap_err();
        assert!(err.starts_with("xai: broken stream"), "{err}");
        let finished =
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n";
        assert_eq!(
            read_sse("xai", finished.as_bytes(), &mut |_| {}).unwrap(),
            "Hi"
        );
        let error = "data: {\"error\":{\"message\":\"quota\"}}\n";
        let err = read_sse("perplexity", error.as_bytes(), &mut |_| {}).unwrap_err();
        assert_eq!(err, "perplexity: error in stream: quota");
    }

    #[test]
    fn excerpt_is_short_and_one_line() {
        assert_eq!(excerpt(" a\nb "), "a b");
        assert_eq!(excerpt(&"x".repeat(400)).chars().count(), BODY_EXCERPT + 1);
        assert_eq!(endpoint("http://h/v1/"), "http://h/v1/chat/completions");
    }
}
