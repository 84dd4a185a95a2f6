//! The HTTP API's wire model: every JSON request and response body, defined once. The
//! server's handlers build these types, the API-client commands (`run-agent server …`) decode
//! them, and the OpenAPI document (`GET /api/v1/openapi.json`) describes them through their
//! `ToSchema` derives, so a renamed field breaks the build instead of a client.
//!
//! This module knows nothing of the HTTP server (no axum): the client uses it without the
//! server. Response types accept unknown fields (a newer server may add some); request types
//! refuse them (`deny_unknown_fields`), so a typo in a client's body is a 400 naming the key.

pub mod bus;
pub mod error;
pub mod events;
pub mod health;
pub mod runs;
pub mod server;
pub mod tasks;
pub mod update;

pub use bus::{BusMessages, CompatPost, MessagePosted, PostBody};
pub use error::{ErrorBody, ErrorDetail};
pub use events::{
    BusBatch, LogLines, OnTopic, Resync, RunChange, RunEnded, RunStatusEvent, TopicError,
};
pub use health::{Health, IndexSummary, StatusBody, UpdateSummary, VersionBody};
pub use runs::{RunDetail, RunFiles, RunStopped, RunSummary, RunsPage};
pub use server::{AgentEntry, AgentList, Done, LoginBody, StreamHello, StreamTopics, TopicChange};
pub use tasks::{
    CreateProjectBody, ProjectCreated, ProjectList, ProjectSummary, ResumeBody, StartTaskBody,
    StopBody, TaskDeleted, TaskList, TaskOutcome, TaskResumed, TaskStarted, TaskStopped,
    TaskSummary, TaskView,
};
pub use update::StartBody;

/// Time as it appears on the wire (RFC 3339, UTC, `Z`, fraction only when non-zero), the
/// form the serde encoding of a `DateTime<Utc>` gives.
pub fn wire_time(time: &chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
