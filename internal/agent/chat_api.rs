//! REST agents (perplexity, xai): one streaming OpenAI-compatible chat completion over SSE,
//! `POST {base_url}/chat/completions` with `{"model", "messages":[{"role":"user","content"}],
//! "stream": true}` and `Authorization: Bearer <token>`. Each delta is handed on as it arrives
//! (the supervisor appends it to agent-stdout.txt); the full answer becomes output.md. Every
//! failure (HTTP status, connection, broken stream) is a one-line summary naming the agent.
//! The `usage` object a chunk carries (the final one, with `stream_options.include_usage`)
//! is the run's usage (xai is asked for it with `stream_options.include_usage`): `prompt_tokens` (with `prompt_tokens_details.cached_tokens`),
//! `completion_tokens`, and perplexity's `cost.total_cost` as a reported cost.

use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;

use crate::config::AgentType;
use crate::storage::{CostSource, Usage};

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

/// The provider variable holding a chat-API type's token.
pub fn token_var(agent_type: AgentType) -> Option<&'static str> {
    match agent_type {
        AgentType::Perplexity => Some("PERPLEXITY_API_KEY"),
        AgentType::Xai => Some("XAI_API_KEY"),
        _ => None,
    }
}

/// One chat request.
#[derive(Clone)]
pub struct ChatRequest<'a> {
    /// Agent type (names the agent in summaries).
    pub agent_type: AgentType,
    /// API base, e.g. `https://api.x.ai/v1`; `/chat/completions` is appended (see [`endpoint`]).
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
    /// Receives the usage of the answer when a chunk (or the JSON completion) reports it.
    pub usage: Option<&'a Mutex<Option<Usage>>>,
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

/// Path of the chat endpoint below a `base_url`.
const CHAT_PATH: &str = "/chat/completions";

/// The endpoint of `base_url`: `/chat/completions` is appended unless the URL already ends
/// with it (a full endpoint URL is taken as it is).
pub fn endpoint(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    if base.ends_with(CHAT_PATH) {
        base.to_string()
    } else {
        format!("{base}{CHAT_PATH}")
    }
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
    let mut body = serde_json::json!({
        "model": req.model,
        "messages": [{ "role": "user", "content": req.prompt }],
        "stream": true,
    });
    // xai sends usage in a last chunk only when asked; perplexity always sends it.
    if req.agent_type == AgentType::Xai {
        body["stream_options"] = serde_json::json!({ "include_usage": true });
    }
    let body = body.to_string();
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
        let mut on_usage = |usage: Usage| {
            if let Some(slot) = req.usage {
                *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(usage);
            }
        };
        read_sse(name, BufReader::new(reader), &mut on_delta, &mut on_usage)
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
        if let (Some(slot), Some(usage)) = (req.usage, chunk_usage(&doc)) {
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(usage);
        }
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
    on_usage: &mut dyn FnMut(Usage),
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
        if let Some(usage) = chunk_usage(&chunk) {
            on_usage(usage);
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

/// The usage a chat completion (chunk) reports, if any. Output counts what the provider bills
/// beyond the prompt (`total_tokens - prompt_tokens` when larger than `completion_tokens`, as
/// with reasoning tokens counted apart).
fn chunk_usage(chunk: &Value) -> Option<Usage> {
    let usage = chunk.get("usage").filter(|u| u.is_object())?;
    let count = |v: &Value| v.as_u64().unwrap_or(0);
    let input = count(&usage["prompt_tokens"]);
    let output =
        count(&usage["completion_tokens"]).max(count(&usage["total_tokens"]).saturating_sub(input));
    let cost = usage["cost"]["total_cost"]
        .as_f64()
        .filter(|c| c.is_finite() && *c >= 0.0);
    Some(Usage {
        model: chunk["model"]
            .as_str()
            .filter(|m| !m.trim().is_empty())
            .map(str::to_string),
        input_tokens: input,
        cached_input_tokens: count(&usage["prompt_tokens_details"]["cached_tokens"]),
        output_tokens: output,
        cost_usd: cost,
        cost_source: cost.map(|_| CostSource::Reported),
    })
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
        let answer = read_sse(
            "xai",
            stream.as_bytes(),
            &mut |d| seen.push(d.to_string()),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(answer, "Hello");
        assert_eq!(seen, ["Hel", "lo"]);
    }

    #[test]
    fn sse_cut_short_is_broken_unless_finished() {
        let cut = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n";
        let err = read_sse("xai", cut.as_bytes(), &mut |_| {}, &mut |_| {}).unwrap_err();
        assert!(err.starts_with("xai: broken stream"), "{err}");
        let finished =
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n";
        assert_eq!(
            read_sse("xai", finished.as_bytes(), &mut |_| {}, &mut |_| {}).unwrap(),
            "Hi"
        );
        let error = "data: {\"error\":{\"message\":\"quota\"}}\n";
        let err = read_sse("perplexity", error.as_bytes(), &mut |_| {}, &mut |_| {}).unwrap_err();
        assert_eq!(err, "perplexity: error in stream: quota");
    }

    #[test]
    fn usage_of_the_final_chunk() {
        let stream = "data: {\"model\":\"sonar-pro\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\
                      data: {\"model\":\"sonar-pro\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18,\"cost\":{\"total_cost\":0.0051}}}\n\
                      data: [DONE]\n";
        let mut got = None;
        read_sse("perplexity", stream.as_bytes(), &mut |_| {}, &mut |u| {
            got = Some(u)
        })
        .unwrap();
        let usage = got.unwrap();
        assert_eq!((usage.input_tokens, usage.output_tokens), (11, 7));
        assert_eq!(usage.cost_usd, Some(0.0051));
        assert_eq!(usage.model.as_deref(), Some("sonar-pro"));
        let xai = serde_json::json!({"model": "grok-4", "usage": {"prompt_tokens": 10,
            "completion_tokens": 2, "total_tokens": 20,
            "prompt_tokens_details": {"cached_tokens": 6},
            "completion_tokens_details": {"reasoning_tokens": 8}}});
        let usage = chunk_usage(&xai).unwrap();
        assert_eq!(
            (
                usage.input_tokens,
                usage.cached_input_tokens,
                usage.output_tokens
            ),
            (10, 6, 10)
        );
        assert_eq!(usage.cost_usd, None);
        assert!(chunk_usage(&serde_json::json!({"usage": null})).is_none());
    }

    #[test]
    fn excerpt_is_short_and_one_line() {
        assert_eq!(excerpt(" a\nb "), "a b");
        assert_eq!(excerpt(&"x".repeat(400)).chars().count(), BODY_EXCERPT + 1);
        assert_eq!(endpoint("http://h/v1/"), "http://h/v1/chat/completions");
        assert_eq!(
            endpoint("https://api.perplexity.ai/chat/completions"),
            "https://api.perplexity.ai/chat/completions"
        );
    }
}
