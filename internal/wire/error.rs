//! The one error shape of every API answer: `{"error": {"code", "message"}}`.

use serde::{Deserialize, Serialize};

/// The JSON shape of every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and message of an error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`not_found`, `bad_request`, `unauthorized`, …).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}
