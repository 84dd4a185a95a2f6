//! Talking to a server under test: plain requests, raw requests and server-sent events.
#![allow(dead_code)]

use std::time::Duration;

/// An HTTP client for which a non-2xx status is an answer, not an error; `timeout` bounds each
/// whole request (`None`: no bound).
pub fn http_agent(timeout: Option<Duration>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(timeout)
        .build()
        .into()
}

/// A plain GET returning status and body; non-2xx statuses are not errors.
pub fn http_get(url: &str) -> Result<(u16, String), ureq::Error> {
    let agent = http_agent(Some(Duration::from_secs(10)));
    let mut resp = agent.get(url).call()?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string()?;
    Ok((status, body))
}

/// POSTs `body` as JSON to `url` with `agent`: the status and the answer's text. A request
/// that gets no answer fails the test.
pub fn post_json_text(agent: &ureq::Agent, url: &str, body: &serde_json::Value) -> (u16, String) {
    let mut resp = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().expect("read the answer");
    (status, text)
}

/// An answer's text as JSON, or as a JSON string when it is not JSON (an error page).
pub fn json_or_text(text: String) -> serde_json::Value {
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}

/// The run ids of a run listing (`{"runs": [{"run_id": …}, …]}`), in order.
pub fn run_ids(listing: &serde_json::Value) -> Vec<String> {
    listing["runs"]
        .as_array()
        .unwrap_or_else(|| panic!("no runs array: {listing}"))
        .iter()
        .map(|r| r["run_id"].as_str().expect("a run id").to_string())
        .collect()
}

/// The base URL from a server log's "API listening on http://host:port/api/v1/" line.
pub fn listening_url(log: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains("API listening on "))?;
    let rest = line.split("API listening on ").nth(1)?;
    let url: String = rest
        .chars()
        .take_while(|c| !matches!(c, '"' | ' ' | '}'))
        .collect();
    let url = url.trim_end_matches("/api/v1/").trim_end_matches('/');
    Some(url.replace("localhost", "127.0.0.1"))
}

/// Sends `request` (a full raw HTTP/1.1 request, `Connection: close` advised) to
/// 127.0.0.1:`port` and returns the status and the body (headers stripped).
pub fn raw_http(port: u16, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Opens a server-sent event stream (optionally resuming after `last_id`) and returns an
/// iterator of its events as (event, id, data); it ends when the server closes the stream.
pub fn sse_events(
    url: &str,
    last_id: Option<&str>,
) -> impl Iterator<Item = (String, String, String)> {
    use std::io::BufRead;
    let agent = http_agent(Some(Duration::from_secs(30)));
    let mut req = agent.get(url);
    if let Some(id) = last_id {
        req = req.header("Last-Event-ID", id);
    }
    let resp = req.call().expect("open the event stream");
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    let mut lines = std::io::BufReader::new(resp.into_body().into_reader()).lines();
    std::iter::from_fn(move || {
        let mut cur = (String::new(), String::new(), String::new());
        loop {
            let line = lines.next()?.ok()?;
            if line.is_empty() {
                if cur.0.is_empty() {
                    continue;
                }
                return Some(cur);
            }
            if let Some(v) = line.strip_prefix("event:") {
                cur.0 = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("id:") {
                cur.1 = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                cur.2 = v.trim_start().to_string();
            }
        }
    })
}
