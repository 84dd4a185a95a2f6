//! Mock model servers for the real-CLI contract tests: one HTTP server on 127.0.0.1 (an
//! ephemeral port) that speaks the three APIs the CLIs call —
//! - Anthropic Messages (`POST …/v1/messages`, streaming SSE and non-streaming JSON),
//! - OpenAI Responses (`POST …/responses`, streaming SSE with a response id and usage),
//! - Gemini (`POST …/models/<m>:streamGenerateContent?alt=sse`, and `:generateContent`).
//!
//! What the "model" answers is set per test ([`Reply`]): a text, a shell tool call (the CLI
//! runs it with its real tool, then the model answers `Done.`), a stall, an HTTP error. Every
//! request is logged ([`MockModels::requests`]) so a test can check that a resumed
//! conversation carries the earlier turns. Token usage is reported in every answer.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Value};

/// What the model does with a request that offers tools (the CLI's main turn).
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer this text.
    Text(String),
    /// Ask the CLI to run this shell command with its own tool; once the tool's result comes
    /// back, answer `Done.`.
    Shell(String),
    /// Send nothing for this long, then answer `late`.
    Stall(Duration),
    /// Fail with this HTTP status and message (every request, with or without tools).
    Fail(u16, String),
}

/// One logged request.
#[derive(Debug, Clone)]
pub struct Logged {
    /// Path and query.
    pub uri: String,
    /// The JSON body (`Null` when not JSON).
    pub body: Value,
}

/// A running mock; stops with the test process (its thread is detached).
pub struct MockModels {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    reply: Arc<Mutex<Reply>>,
    log: Arc<Mutex<Vec<Logged>>>,
}

#[derive(Clone)]
struct State {
    reply: Arc<Mutex<Reply>>,
    log: Arc<Mutex<Vec<Logged>>>,
}

impl MockModels {
    /// Starts a mock answering `reply`.
    pub fn start(reply: Reply) -> MockModels {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind mock");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = State {
            reply: Arc::new(Mutex::new(reply)),
            log: Arc::new(Mutex::new(Vec::new())),
        };
        let server_state = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new()
                    .fallback(handle)
                    .with_state(server_state);
                let _ = axum::serve(listener, app).await;
            });
        });
        MockModels {
            base,
            reply: state.reply,
            log: state.log,
        }
    }

    /// Changes what the model answers from now on.
    pub fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    /// The model requests (those offering tools: the CLI's conversation turns).
    pub fn turns(&self) -> Vec<Logged> {
        self.requests()
            .into_iter()
            .filter(|r| offers_tools(&r.body))
            .collect()
    }
}

fn offers_tools(body: &Value) -> bool {
    body["tools"].as_array().is_some_and(|t| !t.is_empty())
}

#[derive(Clone, Copy, PartialEq)]
enum Api {
    Anthropic,
    OpenAi,
    Gemini,
}

async fn handle(
    axum::extract::State(state): axum::extract::State<State>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_string();
    state.log.lock().unwrap().push(Logged {
        uri: uri.to_string(),
        body: body.clone(),
    });
    let api = if path.ends_with("/messages") {
        Api::Anthropic
    } else if path.ends_with("/responses") {
        Api::OpenAi
    } else if path.contains(":streamGenerateContent") || path.contains(":generateContent") {
        Api::Gemini
    } else if path.contains(":countTokens") || path.ends_with("/count_tokens") {
        return json_response(200, json!({"totalTokens": 10, "input_tokens": 10}));
    } else {
        return json_response(
            404,
            json!({"error": {"message": format!("no mock for {path}")}}),
        );
    };
    let reply = state.reply.lock().unwrap().clone();
    if let Reply::Fail(status, message) = &reply {
        return error_response(api, *status, message);
    }
    let main_turn = offers_tools(&body) || api == Api::Gemini && body["tools"].is_array();
    let answer = if !main_turn || answered_tool(api, &body) {
        Answer::Text("Done.".to_string(), None)
    } else {
        match reply {
            Reply::Text(text) => Answer::Text(text, None),
            Reply::Shell(command) => Answer::Shell(command, tool_name(api, &body)),
            Reply::Stall(d) => Answer::Text("late".to_string(), Some(d)),
            Reply::Fail(..) => unreachable!(),
        }
    };
    let answer = match answer {
        Answer::Text(_, _) if !main_turn => Answer::Text(side_text(&body), None),
        other => other,
    };
    let streaming = match api {
        Api::Anthropic | Api::OpenAi => body["stream"].as_bool().unwrap_or(false),
        Api::Gemini => path.contains(":streamGenerateContent"),
    };
    if !streaming {
        return json_response(200, whole(api, &answer));
    }
    sse(api, answer)
}

/// A side request (no tools: titles, summaries, checks) gets a short neutral text; a
/// request asking for JSON gets `{}`-like JSON.
fn side_text(body: &Value) -> String {
    let text = body.to_string();
    if text.contains("responseMimeType") || text.contains("json") {
        r#"{"reasoning":"mock","next_speaker":"user"}"#.to_string()
    } else {
        "Mock title".to_string()
    }
}

#[derive(Debug)]
enum Answer {
    Text(String, Option<Duration>),
    /// Command and the tool's name.
    Shell(String, String),
}

/// Whether the last turn of the conversation is a tool's result (the model then answers).
fn answered_tool(api: Api, body: &Value) -> bool {
    match api {
        Api::Anthropic => body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_array())
            .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result")),
        Api::OpenAi => body["input"]
            .as_array()
            .and_then(|i| i.last())
            .is_some_and(|i| {
                i["type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("_call_output"))
            }),
        Api::Gemini => body["contents"]
            .as_array()
            .and_then(|c| c.last())
            .and_then(|c| c["parts"].as_array())
            .is_some_and(|p| p.iter().any(|p| p.get("functionResponse").is_some())),
    }
}

/// The CLI's shell tool among the offered tools.
fn tool_name(api: Api, body: &Value) -> String {
    let names: Vec<String> = match api {
        Api::Gemini => body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| {
                t["functionDeclarations"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|d| d["name"].as_str().map(str::to_string))
            .collect(),
        _ => body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                t["name"]
                    .as_str()
                    .or(t["function"]["name"].as_str())
                    .map(str::to_string)
            })
            .collect(),
    };
    let wanted = [
        "Bash",
        "run_shell_command",
        "shell_command",
        "shell",
        "exec_command",
    ];
    wanted
        .iter()
        .find(|w| names.iter().any(|n| n == *w))
        .map(|w| w.to_string())
        .unwrap_or_else(|| panic!("no shell tool offered: {names:?}"))
}

/// The tool's arguments for `command`.
fn tool_args(tool: &str, command: &str) -> Value {
    match tool {
        "shell" => json!({"command": ["bash", "-lc", command]}),
        "exec_command" => json!({"cmd": command}),
        "Bash" => json!({"command": command, "description": "run the command"}),
        _ => json!({"command": command}),
    }
}

fn json_response(status: u16, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn error_response(api: Api, status: u16, message: &str) -> Response {
    let body = match api {
        Api::Anthropic => {
            json!({"type": "error", "error": {"type": if status == 401 {"authentication_error"} else {"api_error"}, "message": message}})
        }
        Api::OpenAi => {
            json!({"error": {"message": message, "type": "invalid_request_error", "code": if status == 401 {"invalid_api_key"} else {"server_error"}}})
        }
        Api::Gemini => {
            json!({"error": {"code": status, "message": message, "status": if status == 401 {"UNAUTHENTICATED"} else {"INTERNAL"}}})
        }
    };
    json_response(status, body)
}

pub const USAGE_IN: u64 = 11;
pub const USAGE_OUT: u64 = 7;

/// A non-streaming answer.
fn whole(api: Api, answer: &Answer) -> Value {
    let text = match answer {
        Answer::Text(t, _) => t.clone(),
        Answer::Shell(..) => "Done.".to_string(),
    };
    match api {
        Api::Anthropic => json!({
            "id": "msg_mock", "type": "message", "role": "assistant", "model": "mock",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT}
        }),
        Api::OpenAi => json!({
            "id": "resp_mock", "object": "response", "status": "completed",
            "output": [{"type": "message", "role": "assistant", "id": "msg_mock",
                        "content": [{"type": "output_text", "text": text, "annotations": []}]}],
            "usage": {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT, "total_tokens": USAGE_IN + USAGE_OUT}
        }),
        Api::Gemini => json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": USAGE_IN, "candidatesTokenCount": USAGE_OUT,
                              "totalTokenCount": USAGE_IN + USAGE_OUT}
        }),
    }
}

/// The SSE events of a streaming answer: `(event name, data)`.
fn events(api: Api, answer: &Answer) -> Vec<(Option<&'static str>, Value)> {
    let id = format!("{:x}", fastrand::u64(..));
    match (api, answer) {
        (Api::Anthropic, answer) => {
            let mut out = vec![(
                Some("message_start"),
                json!({"type": "message_start", "message": {
                "id": format!("msg_{id}"), "type": "message", "role": "assistant", "model": "mock",
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": USAGE_IN, "output_tokens": 1}}}),
            )];
            let stop = match answer {
                Answer::Text(text, _) => {
                    out.push((Some("content_block_start"), json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})));
                    for chunk in chunks(text) {
                        out.push((Some("content_block_delta"), json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": chunk}})));
                    }
                    "end_turn"
                }
                Answer::Shell(command, tool) => {
                    out.push((Some("content_block_start"), json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": format!("toolu_{id}"), "name": tool, "input": {}}})));
                    out.push((Some("content_block_delta"), json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": tool_args(tool, command).to_string()}})));
                    "tool_use"
                }
            };
            out.push((
                Some("content_block_stop"),
                json!({"type": "content_block_stop", "index": 0}),
            ));
            out.push((Some("message_delta"), json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": USAGE_OUT}})));
            out.push((Some("message_stop"), json!({"type": "message_stop"})));
            out
        }
        (Api::OpenAi, answer) => {
            let response_id = format!("resp_{id}");
            let mut out = vec![(
                Some("response.created"),
                json!({"type": "response.created", "response": {"id": response_id}}),
            )];
            let item = match answer {
                Answer::Text(text, _) => {
                    for chunk in chunks(text) {
                        out.push((Some("response.output_text.delta"), json!({"type": "response.output_text.delta", "item_id": format!("msg_{id}"), "output_index": 0, "content_index": 0, "delta": chunk})));
                    }
                    json!({"type": "message", "role": "assistant", "id": format!("msg_{id}"),
                           "content": [{"type": "output_text", "text": text, "annotations": []}]})
                }
                Answer::Shell(command, tool) => json!({
                    "type": "function_call", "id": format!("fc_{id}"), "call_id": format!("call_{id}"),
                    "name": tool, "arguments": tool_args(tool, command).to_string()
                }),
            };
            out.push((
                Some("response.output_item.done"),
                json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
            ));
            out.push((Some("response.completed"), json!({"type": "response.completed", "response": {
                "id": response_id,
                "usage": {"input_tokens": USAGE_IN, "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens": USAGE_OUT, "output_tokens_details": {"reasoning_tokens": 0},
                          "total_tokens": USAGE_IN + USAGE_OUT}}})));
            out
        }
        (Api::Gemini, answer) => {
            let usage = json!({"promptTokenCount": USAGE_IN, "candidatesTokenCount": USAGE_OUT, "totalTokenCount": USAGE_IN + USAGE_OUT});
            match answer {
                Answer::Text(text, _) => {
                    let parts = chunks(text);
                    let last = parts.len().saturating_sub(1);
                    parts
                        .into_iter()
                        .enumerate()
                        .map(|(i, chunk)| {
                            let mut candidate = json!({"content": {"role": "model", "parts": [{"text": chunk}]}, "index": 0});
                            let mut data = json!({});
                            if i == last {
                                candidate["finishReason"] = json!("STOP");
                                data["usageMetadata"] = usage.clone();
                            }
                            data["candidates"] = json!([candidate]);
                            (None, data)
                        })
                        .collect()
                }
                Answer::Shell(command, tool) => vec![(
                    None,
                    json!({
                        "candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": tool, "args": tool_args(tool, command)}}]},
                                        "finishReason": "STOP", "index": 0}],
                        "usageMetadata": usage
                    }),
                )],
            }
        }
    }
}

/// A text in a few pieces (streams deliver answers in chunks).
fn chunks(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    if words.is_empty() {
        return vec![String::new()];
    }
    words.iter().map(|w| w.to_string()).collect()
}

fn sse(api: Api, answer: Answer) -> Response {
    let stall = match &answer {
        Answer::Text(_, stall) => *stall,
        Answer::Shell(..) => None,
    };
    let events = events(api, &answer);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        let mut events = events.into_iter();
        // The first event goes out at once (the CLI sees the response start), then the stall.
        if let Some(first) = events.next() {
            let _ = tx.send(Ok(frame(first))).await;
        }
        if let Some(stall) = stall {
            tokio::time::sleep(stall).await;
        }
        for event in events {
            if tx.send(Ok(frame(event))).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .unwrap()
}

fn frame((event, data): (Option<&'static str>, Value)) -> Bytes {
    let mut text = String::new();
    if let Some(event) = event {
        text.push_str(&format!("event: {event}\n"));
    }
    text.push_str(&format!("data: {data}\n\n"));
    Bytes::from(text)
}
