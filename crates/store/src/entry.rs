//! The log entry: the spec's structured format, its identifiers and their validation.
//!
//! Every entry carries `execution_id`, `timestamp` (Unix ms), `level`, `source` and `message`,
//! and optionally `task_id` and `metadata` (a JSON object). The store validates every entry on
//! append and rejects, with a [`EntryError`] naming the field, anything it could not return
//! unchanged: it never cuts or rewrites silently.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest execution or task id, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Longest message, in bytes. The capture layer splits longer lines before they get here.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;
/// Longest source, in bytes.
pub const MAX_SOURCE_LEN: usize = 256;
/// Longest metadata object once serialized as JSON, in bytes.
pub const MAX_METADATA_LEN: usize = 256 * 1024;

/// Why an entry (or one of its fields) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// An id was empty, too long, or held a byte outside `[A-Za-z0-9._:-]`.
    #[error("invalid {field} {value:?}: {reason} (ids are 1..=128 bytes of [A-Za-z0-9._:-])")]
    InvalidId {
        /// `execution_id` or `task_id`.
        field: &'static str,
        /// The refused value, shortened for the message.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `source` was empty or longer than [`MAX_SOURCE_LEN`].
    #[error("invalid source: {0} (a source is 1..=256 bytes, such as `scheduler` or `plugin:ns/plugin.action`)")]
    InvalidSource(&'static str),
    /// The message is longer than [`MAX_MESSAGE_LEN`].
    #[error("message is {len} bytes, more than the limit of {MAX_MESSAGE_LEN}; split it into several entries")]
    MessageTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Metadata that is not a JSON object, or too large.
    #[error("invalid metadata: {0}")]
    InvalidMetadata(String),
    /// A level name other than DEBUG, INFO, WARN or ERROR.
    #[error("unknown level {0:?}: expected DEBUG, INFO, WARN or ERROR")]
    UnknownLevel(String),
}

/// Severity, ordered DEBUG < INFO < WARN < ERROR.
///
/// DEBUG is detailed tracing, INFO normal operation, WARN a recoverable problem, ERROR a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// Detailed tracing.
    Debug = 0,
    /// Normal operation.
    Info = 1,
    /// A recoverable problem.
    Warn = 2,
    /// A failure.
    Error = 3,
}

impl Level {
    /// All levels, lowest first.
    pub const ALL: [Level; 4] = [Level::Debug, Level::Info, Level::Warn, Level::Error];

    /// The upper-case name used in JSON and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }

    /// The byte stored on disk (see `docs/FORMAT.md`).
    pub fn to_byte(self) -> u8 {
        self as u8
    }

    /// The level for an on-disk byte, if it is one.
    pub fn from_byte(b: u8) -> Option<Level> {
        Level::ALL.get(usize::from(b)).copied()
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Level {
    type Err = EntryError;

    /// Case-insensitive; `WARNING` is accepted for WARN.
    fn from_str(s: &str) -> Result<Level, EntryError> {
        match s.to_ascii_uppercase().as_str() {
            "DEBUG" => Ok(Level::Debug),
            "INFO" => Ok(Level::Info),
            "WARN" | "WARNING" => Ok(Level::Warn),
            "ERROR" => Ok(Level::Error),
            _ => Err(EntryError::UnknownLevel(shorten(s, 32))),
        }
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Checks an id (`field` names it in the error): 1 to [`MAX_ID_LEN`] bytes of ASCII letters,
/// digits, `-`, `_`, `.` and `:`.
pub fn check_id(field: &'static str, s: &str) -> Result<(), EntryError> {
    let bad = |reason| EntryError::InvalidId {
        field,
        value: shorten(s, 40),
        reason,
    };
    if s.is_empty() {
        return Err(bad("it is empty"));
    }
    if s.len() > MAX_ID_LEN {
        return Err(bad("it is longer than 128 bytes"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        return Err(bad("it holds a character outside [A-Za-z0-9._:-]"));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `s` as an id: 1..=128 bytes of `[A-Za-z0-9._:-]`.
            pub fn new(s: impl Into<String>) -> Result<Self, EntryError> {
                let s = s.into();
                check_id($field, &s)?;
                Ok(Self(Arc::from(s)))
            }

            /// An id from text a CRC-checked record holds and the decoder already checked.
            pub(crate) fn from_checked(s: &str) -> Self {
                Self(Arc::from(s))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = EntryError;
            fn try_from(s: String) -> Result<Self, EntryError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = EntryError;
            fn try_from(s: &str) -> Result<Self, EntryError> {
                Self::new(s)
            }
        }

        impl FromStr for $name {
            type Err = EntryError;
            fn from_str(s: &str) -> Result<Self, EntryError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.as_ref().to_owned()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}

id_type!(
    /// The id of one execution of a workflow: the correlation id of every entry. Cloning it is
    /// cheap (the text is shared), so every entry of a query can carry it.
    ExecutionId,
    "execution_id"
);
id_type!(
    /// The id of one task inside an execution.
    TaskId,
    "task_id"
);

/// The final states of an execution.
pub const TERMINAL_STATES: [&str; 3] = ["SUCCESS", "FAILED", "CANCELLED"];

/// The source of the engine's execution lifecycle entries.
pub const SCHEDULER_SOURCE: &str = "scheduler";

/// One structured log entry.
///
/// In JSON (NDJSON import, `dump --json`) the keys are exactly the field names, with `level` in
/// upper case and `task_id` / `metadata` left out when absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEntry {
    /// The execution this entry belongs to.
    pub execution_id: ExecutionId,
    /// When it happened, in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Severity.
    pub level: Level,
    /// Who logged it: `scheduler`, `worker`, `plugin:<namespace>/<plugin>.<action>`, ...
    pub source: String,
    /// The text.
    pub message: String,
    /// The task, for task-specific entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    /// Structured data such as an error stack: always a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl LogEntry {
    /// An entry without task or metadata.
    pub fn new(
        execution_id: ExecutionId,
        timestamp: i64,
        level: Level,
        source: impl Into<String>,
        message: impl Into<String>,
    ) -> LogEntry {
        LogEntry {
            execution_id,
            timestamp,
            level,
            source: source.into(),
            message: message.into(),
            task_id: None,
            metadata: None,
        }
    }

    /// Sets the task.
    pub fn with_task(mut self, task_id: TaskId) -> LogEntry {
        self.task_id = Some(task_id);
        self
    }

    /// Sets the metadata object.
    pub fn with_metadata(mut self, metadata: Map<String, Value>) -> LogEntry {
        self.metadata = Some(metadata);
        self
    }

    /// Checks the fields the type system does not: source, message and metadata sizes.
    /// (Ids are checked when they are made.)
    pub fn validate(&self) -> Result<(), EntryError> {
        check_source(&self.source)?;
        if self.message.len() > MAX_MESSAGE_LEN {
            return Err(EntryError::MessageTooLong {
                len: self.message.len(),
            });
        }
        Ok(())
    }

    /// The final state if this is an execution's terminal entry: source `scheduler` and a
    /// metadata key `state` holding SUCCESS, FAILED or CANCELLED. `dump --follow` stops there and
    /// `list` reports it.
    pub fn terminal_state(&self) -> Option<&str> {
        if self.source != SCHEDULER_SOURCE {
            return None;
        }
        let state = self.metadata.as_ref()?.get("state")?.as_str()?;
        TERMINAL_STATES.contains(&state).then_some(state)
    }
}

/// Checks a source string: 1..=256 bytes, no control characters.
pub fn check_source(source: &str) -> Result<(), EntryError> {
    if source.is_empty() {
        return Err(EntryError::InvalidSource("it is empty"));
    }
    if source.len() > MAX_SOURCE_LEN {
        return Err(EntryError::InvalidSource("it is longer than 256 bytes"));
    }
    if source.chars().any(char::is_control) {
        return Err(EntryError::InvalidSource("it holds a control character"));
    }
    Ok(())
}

/// Serializes a metadata object to the JSON text stored on disk, checking its size.
pub fn metadata_to_json(metadata: &Map<String, Value>) -> Result<String, EntryError> {
    let text = serde_json::to_string(metadata)
        .map_err(|e| EntryError::InvalidMetadata(format!("cannot serialize: {e}")))?;
    if text.len() > MAX_METADATA_LEN {
        return Err(EntryError::InvalidMetadata(format!(
            "it is {} bytes as JSON, more than the limit of {MAX_METADATA_LEN}",
            text.len()
        )));
    }
    Ok(text)
}

/// Parses the metadata JSON text stored on disk; it must be an object.
pub fn metadata_from_json(text: &str) -> Result<Map<String, Value>, EntryError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(EntryError::InvalidMetadata(
            "it must be a JSON object".to_owned(),
        )),
        Err(e) => Err(EntryError::InvalidMetadata(format!("not valid JSON: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_allowed_alphabet_only() {
        assert!(ExecutionId::new("exec-1_a.b:c").is_ok());
        assert!(ExecutionId::new("a".repeat(128)).is_ok());
        for bad in ["", "has space", "slash/", "ü", &"a".repeat(129)] {
            let err = ExecutionId::new(bad).unwrap_err();
            assert!(err.to_string().contains("execution_id"), "{err}");
        }
        assert!(TaskId::new("t 1")
            .unwrap_err()
            .to_string()
            .contains("task_id"));
    }

    #[test]
    fn levels_are_ordered_and_parse_case_insensitively() {
        assert!(
            Level::Debug < Level::Info && Level::Info < Level::Warn && Level::Warn < Level::Error
        );
        assert_eq!("warning".parse::<Level>().unwrap(), Level::Warn);
        assert_eq!("Error".parse::<Level>().unwrap(), Level::Error);
        assert!("fatal".parse::<Level>().is_err());
        for l in Level::ALL {
            assert_eq!(Level::from_byte(l.to_byte()), Some(l));
        }
        assert_eq!(Level::from_byte(4), None);
    }

    #[test]
    fn json_shape_is_exact_and_round_trips() {
        let e = LogEntry::new(
            ExecutionId::new("e1").unwrap(),
            5,
            Level::Warn,
            "worker",
            "hi",
        )
        .with_task(TaskId::new("t1").unwrap());
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"execution_id":"e1","timestamp":5,"level":"WARN","source":"worker","message":"hi","task_id":"t1"}"#
        );
        assert_eq!(serde_json::from_str::<LogEntry>(&text).unwrap(), e);
        let spoof = r#"{"execution_id":"e1","timestamp":5,"level":"WARN","source":"s","message":"m","extra":1}"#;
        assert!(serde_json::from_str::<LogEntry>(spoof).is_err());
        let bad_meta = r#"{"execution_id":"e1","timestamp":5,"level":"INFO","source":"s","message":"m","metadata":[1]}"#;
        assert!(serde_json::from_str::<LogEntry>(bad_meta).is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let id = ExecutionId::new("e").unwrap();
        let e = LogEntry::new(id.clone(), 0, Level::Info, "", "m");
        assert!(e.validate().unwrap_err().to_string().contains("source"));
        let e = LogEntry::new(id, 0, Level::Info, "s", "x".repeat(MAX_MESSAGE_LEN + 1));
        assert!(matches!(
            e.validate(),
            Err(EntryError::MessageTooLong { .. })
        ));
    }

    #[test]
    fn terminal_state_needs_scheduler_source_and_a_final_state() {
        let id = ExecutionId::new("e").unwrap();
        let mut meta = Map::new();
        meta.insert("state".into(), Value::from("FAILED"));
        let e = LogEntry::new(id.clone(), 0, Level::Error, "scheduler", "done")
            .with_metadata(meta.clone());
        assert_eq!(e.terminal_state(), Some("FAILED"));
        let e =
            LogEntry::new(id.clone(), 0, Level::Error, "plugin:a/b.c", "done").with_metadata(meta);
        assert_eq!(e.terminal_state(), None);
        let mut meta = Map::new();
        meta.insert("state".into(), Value::from("RUNNING"));
        let e = LogEntry::new(id, 0, Level::Info, "scheduler", "x").with_metadata(meta);
        assert_eq!(e.terminal_state(), None);
    }
}
