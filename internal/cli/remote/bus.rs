//! `server bus read|post`: a project's or task's message bus through the REST API; `read
//! --follow` reads the bus SSE stream, resuming from the last msg_id when the connection drops.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use serde_json::Value;

use super::common::{client, print_json, text, REQUEST_TIMEOUT};
use super::ClientArgs;
use crate::cli::terminal_text::{for_terminal, for_terminal_json};
use crate::client::{query, segment, ApiClient, ClientError};
use crate::wire::bus::{BusMessages, Message, MessagePosted, PostBody};

/// Consecutive failed reconnects before `read --follow` gives up.
const MAX_RECONNECTS: u32 = 10;

/// `server bus …`.
#[derive(Debug, clap::Subcommand)]
pub enum BusCommand {
    /// Print a bus's messages; --follow keeps printing new ones.
    Read(ReadArgs),
    /// Append a message to a bus.
    Post(PostArgs),
}

/// Which bus: the project's, or a task's with --task.
#[derive(Debug, Clone, clap::Args)]
pub struct BusTarget {
    /// Project id.
    #[arg(long, value_name = "ID")]
    pub project: String,
    /// Task id (the task's bus instead of the project's).
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
}

impl BusTarget {
    fn path(&self) -> String {
        match &self.task {
            Some(t) => format!(
                "/api/v1/projects/{}/tasks/{}/bus",
                segment(&self.project),
                segment(t)
            ),
            None => format!("/api/v1/projects/{}/bus", segment(&self.project)),
        }
    }
}

/// `bus read`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub target: BusTarget,
    /// Only messages after this msg_id.
    #[arg(long, value_name = "MSG_ID")]
    pub since: Option<String>,
    /// Only the last N messages (before following).
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Only messages of this type.
    #[arg(long = "type", value_name = "TYPE")]
    pub msg_type: Option<String>,
    /// Keep printing new messages (until interrupted).
    #[arg(long)]
    pub follow: bool,
    /// JSON: the raw answer; with --follow one message object per line.
    #[arg(long)]
    pub json: bool,
}

/// `bus post`.
#[derive(Debug, Clone, clap::Args)]
pub struct PostArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub target: BusTarget,
    /// Message type (FACT, PROGRESS, DECISION, …).
    #[arg(long = "type", value_name = "TYPE")]
    pub msg_type: String,
    /// Message body.
    #[arg(long, value_name = "TEXT")]
    pub body: String,
    /// Run the message is about.
    #[arg(long, value_name = "RUN")]
    pub run: Option<String>,
    /// Parent msg_id (repeatable).
    #[arg(long = "parent", value_name = "MSG_ID")]
    pub parents: Vec<String>,
    /// Print the server's raw JSON answer.
    #[arg(long)]
    pub json: bool,
}

impl BusCommand {
    /// The command's client flags.
    pub(super) fn client_mut(&mut self) -> &mut ClientArgs {
        match self {
            BusCommand::Read(args) => &mut args.client,
            BusCommand::Post(args) => &mut args.client,
        }
    }
}

/// Runs `server bus …`.
pub fn run(command: BusCommand) -> anyhow::Result<ExitCode> {
    match command {
        BusCommand::Read(args) => read(args),
        BusCommand::Post(args) => post(args),
    }
}

/// One message as a human line: `ts  TYPE  [task/run]  body`.
fn line(msg: &Message) -> String {
    let mut scope = text(&msg.task_id);
    if !msg.run_id.is_empty() {
        scope = format!("{scope}/{}", msg.run_id);
    }
    format!(
        "{}  {}  {}  [{}]  {}",
        text(&msg.msg_id),
        crate::storage::time::format_rfc3339_nano(&msg.ts),
        text(&msg.msg_type),
        scope,
        msg.body
    )
}

fn read(args: ReadArgs) -> anyhow::Result<ExitCode> {
    let api = client(&args.client, REQUEST_TIMEOUT)?;
    let path = args.target.path();
    let mut last: Option<String> = args.since.clone();
    if !args.follow || args.tail.is_some() {
        let q = query(&[
            ("since", args.since.clone()),
            ("tail", args.tail.map(|t| t.to_string())),
            ("type", args.msg_type.clone()),
        ]);
        let answer = api.get::<BusMessages>(&format!("{path}{q}"))?;
        let messages = answer.body.messages;
        if let Some(msg) = messages.last() {
            last = Some(msg.msg_id.clone());
        }
        if !args.follow {
            let tty = std::io::stdout().is_terminal();
            if args.json {
                let text = serde_json::to_string_pretty(&answer.raw)?;
                println!("{}", for_terminal_json(&text, tty));
            } else if messages.is_empty() {
                println!("no messages");
            } else {
                for m in &messages {
                    println!("{}", for_terminal(&line(m), tty));
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        let raw = answer.raw["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (m, raw) in messages.iter().zip(&raw) {
            print_message(m, raw, args.json)?;
        }
    }
    let api = client(&args.client, Duration::from_secs(10))?;
    let q = query(&[("type", args.msg_type.clone())]);
    follow(&api, &format!("{path}/stream{q}"), last, args.json)
}

/// Prints one message: `raw` (as received) with --json, else its human line.
fn print_message(msg: &Message, raw: &Value, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let tty = out.is_terminal();
    if json {
        writeln!(out, "{}", for_terminal_json(&raw.to_string(), tty))?;
    } else {
        writeln!(out, "{}", for_terminal(&line(msg), tty))?;
    }
    out.flush()?;
    Ok(())
}

/// Prints messages as they arrive; resumes from the last msg_id after a drop.
fn follow(
    api: &ApiClient,
    path: &str,
    mut last: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut failures = 0u32;
    let mut connected = false;
    loop {
        match api.stream(path, last.as_deref()) {
            Ok(mut events) => {
                connected = true;
                while let Ok(Some(event)) = events.next_event() {
                    failures = 0;
                    match event.event.as_str() {
                        "message" => {
                            let url = format!("{}{path}", api.base());
                            let raw: Value = serde_json::from_str(&event.data).map_err(|e| {
                                ClientError::Decode {
                                    url: url.clone(),
                                    message: e.to_string(),
                                }
                            })?;
                            let msg: Message = crate::client::decode(&url, &raw)?;
                            print_message(&msg, &raw, json)?;
                            if let Some(id) = event.id {
                                last = Some(id);
                            }
                        }
                        "resync" => eprintln!("note: {}", event.data),
                        "error" => bail!("the server's stream failed: {}", event.data),
                        _ => {}
                    }
                }
            }
            Err(err @ ClientError::Unreachable { .. }) if connected => {
                if failures >= MAX_RECONNECTS {
                    return Err(err.into());
                }
            }
            Err(err) => return Err(err.into()),
        }
        failures += 1;
        if failures > MAX_RECONNECTS {
            bail!("the stream at {}{path} kept dropping; gave up", api.base());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn post(args: PostArgs) -> anyhow::Result<ExitCode> {
    let api = client(&args.client, REQUEST_TIMEOUT)?;
    let body = PostBody {
        msg_type: args.msg_type,
        body: args.body,
        run_id: args.run,
        parents: args.parents,
    };
    let answer = api.post::<_, MessagePosted>(&args.target.path(), &body)?;
    if args.json {
        print_json(&answer.raw)?;
    } else {
        println!("{}", text(&answer.body.msg_id));
    }
    Ok(ExitCode::SUCCESS)
}
