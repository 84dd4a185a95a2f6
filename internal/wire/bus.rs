//! Bodies of the message-bus routes (`/api/v1/projects/{p}[/tasks/{t}]/bus`, and the
//! reference's `/api/v1/messages`). A message itself is [`crate::bus::Message`]; the bus
//! streams send one per SSE `message` event.

use serde::{Deserialize, Serialize};

pub use crate::bus::Message;

/// Body of a bus post.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostBody {
    /// Message type (`FACT`, `PROGRESS`, …).
    #[serde(rename = "type")]
    pub msg_type: String,
    /// Message body.
    #[serde(default)]
    pub body: String,
    /// Run the message is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Parent msg_ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<String>,
}

/// Body of the reference's `POST /api/v1/messages`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CompatPost {
    /// Project id.
    pub project_id: String,
    /// Task id (task bus when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Run id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Message type.
    #[serde(rename = "type")]
    pub msg_type: String,
    /// Body.
    #[serde(default)]
    pub body: String,
}

/// The answer of a bus read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BusMessages {
    /// The messages, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<Message>,
}

/// The answer of a bus post (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessagePosted {
    /// Id of the new message.
    pub msg_id: String,
}
