//! Bodies of `GET|POST /api/v1/admin/self-update`. The answer of both is
//! [`crate::update::StatusView`] (the offline `update status` prints the same view).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::update::UpdateMode;

pub use crate::update::StatusView;

/// Body of `POST /api/v1/admin/self-update`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// Absolute path of the candidate binary on the server's machine.
    #[schema(value_type = String)]
    pub binary_path: PathBuf,
    /// Expected sha256 of the candidate (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// `drain` (default) or `handoff`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "drain")]
    pub mode: Option<UpdateMode>,
}
