//! The message bus: append-only `TASK-MESSAGE-BUS.md` / `PROJECT-MESSAGE-BUS.md`
//! files of `---` / YAML header / `---` / body records, byte-compatible with the Go reference.
//!
//! - [`message`]: the record types and message ids;
//! - [`format`] and [`escape`]: how a record is written (header YAML, body escaping);
//! - [`parse`]: the incremental state-machine parser (legacy lines, resync after torn records);
//! - [`append`]: the locked, single-`write` appender ([`BusWriter`]);
//! - [`read`]: all / since / tail-window / type-filtered reads;
//! - [`follow`]: blocking follow on inotify with rotation handling ([`Follower`]);
//! - [`discover`]: bus files under a runs root.

pub mod append;
pub mod discover;
pub mod error;
pub mod escape;
pub mod follow;
pub mod format;
mod header;
mod header_fast;
mod legacy;
pub mod message;
pub mod parse;
mod path;
pub mod read;

pub use append::{append, AppendOptions, BusWriter};
pub use discover::{discover, BusFile, BusScope};
pub use error::BusError;
pub use follow::{FollowFrom, Follower};
pub use message::{generate_msg_id, Link, Message, NewMessage, Parent};
pub use parse::{parse_bytes, Parser};
pub use read::{read, read_all, read_since, read_tail, ReadQuery};
