//! The one door to the YAML library. serde_yaml is deprecated upstream; every module reads and
//! writes YAML through these names, so swapping the library touches only this file.
//! [`scalar`] is the small YAML scalar emitter that run-info and bus headers are written with,
//! quoting exactly as Go's yaml.v3 does.

pub(crate) mod scalar;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use serde_yaml::{Deserializer, Error, Mapping, Value};

/// Parses a YAML document from text.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_yaml::from_str(text)
}

/// Parses a YAML document from bytes (UTF-8).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_yaml::from_slice(bytes)
}

/// Writes `value` as a YAML document.
pub fn to_string<T: ?Sized + Serialize>(value: &T) -> Result<String, Error> {
    serde_yaml::to_string(value)
}

/// Converts a parsed YAML value into `T`.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    serde_yaml::from_value(value)
}

/// Converts `value` into a YAML value.
pub fn to_value<T: Serialize>(value: T) -> Result<Value, Error> {
    serde_yaml::to_value(value)
}
