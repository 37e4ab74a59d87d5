//! The `context.log` record: how a plugin gives a stderr line a level and metadata.
//!
//! A record is one stderr line framed as in RFC 7464 (JSON text sequences): the byte `0x1E`
//! (ASCII Record Separator), one JSON object, then `\n`:
//!
//! ```text
//! 0x1E {"level":"WARN","message":"disk almost full","metadata":{"free_mb":12}} 0x0A
//! ```
//!
//! * `level`: `DEBUG`, `INFO`, `WARN` or `ERROR`, any case (`WARNING` is read as WARN).
//! * `message`: a string.
//! * `metadata`: optional; a JSON object, or `null` for none.
//! * Any other key is ignored. In particular `execution_id`, `task_id`, `source` and
//!   `timestamp` are never taken from a plugin: the engine sets them, so a plugin cannot write
//!   into another execution's log or pose as the scheduler.
//!
//! A line that starts with `0x1E` but is not such a record is *malformed*: [`parse_line`] says
//! why, and the capture layer keeps the line as plain text (without the `0x1E`) rather than
//! dropping it.

use serde_json::{Map, Value};

use logstore_store::Level;

/// The RFC 7464 record separator that starts a record line.
pub const RECORD_SEPARATOR: u8 = 0x1E;

/// A well-formed `context.log` record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The level the plugin asked for.
    pub level: Level,
    /// The message text.
    pub message: String,
    /// The metadata object, if any.
    pub metadata: Option<Map<String, Value>>,
}

/// Why a line that starts with `0x1E` is not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedRecord {
    /// The bytes after `0x1E` are not JSON (or not UTF-8).
    #[error("not valid JSON: {0}")]
    NotJson(String),
    /// The JSON is not an object.
    #[error("the record must be a JSON object")]
    NotAnObject,
    /// `level` is missing, not a string, or not a known level.
    #[error("`level` must be one of DEBUG, INFO, WARN, ERROR")]
    BadLevel,
    /// `message` is missing or not a string.
    #[error("`message` must be a string")]
    BadMessage,
    /// `metadata` is present but neither an object nor null.
    #[error("`metadata` must be a JSON object")]
    BadMetadata,
    /// The line was longer than one entry, so it reached the parser in pieces.
    #[error("the record is longer than {max} bytes; it was stored as plain text")]
    TooLong {
        /// The longest record line, in bytes.
        max: usize,
    },
}

/// What a stderr line is.
#[derive(Debug, Clone, PartialEq)]
pub enum StderrLine<'a> {
    /// Plain output (console.error and the like).
    Plain(&'a [u8]),
    /// A `context.log` record.
    Record(Record),
    /// A line that starts with `0x1E` but is no record: the text after the `0x1E`, and why.
    Malformed(&'a [u8], MalformedRecord),
}

/// Classifies one complete stderr line (without its line ending).
pub fn parse_line(line: &[u8]) -> StderrLine<'_> {
    let Some(body) = line.strip_prefix(&[RECORD_SEPARATOR]) else {
        return StderrLine::Plain(line);
    };
    match parse_record(body) {
        Ok(record) => StderrLine::Record(record),
        Err(why) => StderrLine::Malformed(body, why),
    }
}

/// Parses the JSON after the `0x1E`.
pub fn parse_record(body: &[u8]) -> Result<Record, MalformedRecord> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| MalformedRecord::NotJson(e.to_string()))?;
    let Value::Object(mut object) = value else {
        return Err(MalformedRecord::NotAnObject);
    };
    let level = object
        .get("level")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Level>().ok())
        .ok_or(MalformedRecord::BadLevel)?;
    let message = match object.remove("message") {
        Some(Value::String(s)) => s,
        _ => return Err(MalformedRecord::BadMessage),
    };
    let metadata = match object.remove("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => return Err(MalformedRecord::BadMetadata),
    };
    Ok(Record {
        level,
        message,
        metadata,
    })
}

/// The level a record names before anything long, read from the start of its JSON: for a
/// record line too long to be parsed whole, whose parts should still carry its level. Only
/// keys whose values are strings, numbers, booleans or null are skipped on the way to `level`
/// (the SDK writes `level` first); anything else gives `None`.
pub fn leading_level(body: &[u8]) -> Option<Level> {
    let mut rest = skip_ws(body).strip_prefix(b"{")?;
    loop {
        rest = skip_ws(rest);
        let key_len = string_len(rest)?;
        let key: String = serde_json::from_slice(&rest[..key_len]).ok()?;
        rest = skip_ws(skip_ws(&rest[key_len..]).strip_prefix(b":")?);
        let value_len = match rest.first()? {
            b'"' => string_len(rest)?,
            b'{' | b'[' => return None,
            _ => rest.iter().position(|&b| b == b',' || b == b'}')?,
        };
        if key == "level" {
            let name: String = serde_json::from_slice(&rest[..value_len]).ok()?;
            return name.parse().ok();
        }
        rest = skip_ws(&rest[value_len..]).strip_prefix(b",")?;
    }
}

fn skip_ws(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

/// The length of the JSON string token at the start of `b`, quotes included.
fn string_len(b: &[u8]) -> Option<usize> {
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(line: &[u8]) -> Record {
        match parse_line(line) {
            StderrLine::Record(r) => r,
            other => panic!("not a record: {other:?}"),
        }
    }

    fn malformed(line: &[u8]) -> MalformedRecord {
        match parse_line(line) {
            StderrLine::Malformed(_, why) => why,
            other => panic!("not malformed: {other:?}"),
        }
    }

    #[test]
    fn plain_lines_are_plain() {
        assert_eq!(parse_line(b"oops"), StderrLine::Plain(b"oops"));
        assert_eq!(parse_line(b""), StderrLine::Plain(b""));
        // The separator counts only at the start.
        assert_eq!(
            parse_line(b"x\x1e{\"level\":\"INFO\",\"message\":\"m\"}"),
            StderrLine::Plain(b"x\x1e{\"level\":\"INFO\",\"message\":\"m\"}")
        );
    }

    #[test]
    fn record_with_level_message_and_metadata() {
        let r =
            record(b"\x1e{\"level\":\"warn\",\"message\":\"a\\nb\",\"metadata\":{\"k\":[1,2]}}");
        assert_eq!(r.level, Level::Warn);
        assert_eq!(r.message, "a\nb");
        assert_eq!(
            Value::Object(r.metadata.unwrap()),
            json!({"k": [1, 2]}),
            "metadata is kept as given"
        );
    }

    #[test]
    fn every_level_case_insensitively() {
        for (name, level) in [
            ("debug", Level::Debug),
            ("Info", Level::Info),
            ("WARN", Level::Warn),
            ("error", Level::Error),
        ] {
            let line = format!("\x1e{{\"level\":\"{name}\",\"message\":\"m\"}}");
            assert_eq!(record(line.as_bytes()).level, level);
        }
    }

    #[test]
    fn spoofed_fields_are_ignored() {
        let line = [
            &[RECORD_SEPARATOR][..],
            br#"{"level":"ERROR","message":"m","execution_id":"other","task_id":"t9","source":"scheduler","timestamp":1}"#,
        ]
        .concat();
        let r = record(&line);
        assert_eq!(
            r,
            Record {
                level: Level::Error,
                message: "m".into(),
                metadata: None
            }
        );
    }

    #[test]
    fn null_metadata_is_none() {
        assert_eq!(
            record(b"\x1e{\"level\":\"INFO\",\"message\":\"m\",\"metadata\":null}").metadata,
            None
        );
    }

    #[test]
    fn malformed_records_say_why() {
        assert!(matches!(
            malformed(b"\x1e{not json"),
            MalformedRecord::NotJson(_)
        ));
        assert!(matches!(
            malformed(b"\x1e\xff"),
            MalformedRecord::NotJson(_)
        ));
        assert_eq!(malformed(b"\x1e[1]"), MalformedRecord::NotAnObject);
        assert_eq!(
            malformed(b"\x1e{\"level\":\"FATAL\",\"message\":\"m\"}"),
            MalformedRecord::BadLevel
        );
        assert_eq!(
            malformed(b"\x1e{\"message\":\"m\"}"),
            MalformedRecord::BadLevel
        );
        assert_eq!(
            malformed(b"\x1e{\"level\":\"INFO\",\"message\":5}"),
            MalformedRecord::BadMessage
        );
        assert_eq!(
            malformed(b"\x1e{\"level\":\"INFO\",\"message\":\"m\",\"metadata\":[1]}"),
            MalformedRecord::BadMetadata
        );
        // Trailing garbage after the object is not a record either.
        assert!(matches!(
            malformed(b"\x1e{\"level\":\"INFO\",\"message\":\"m\"} x"),
            MalformedRecord::NotJson(_)
        ));
    }

    #[test]
    fn leading_level_reads_the_level_before_a_long_value() {
        let long = format!(r#"{{"level":"error","message":"{}"#, "x".repeat(100));
        assert_eq!(leading_level(long.as_bytes()), Some(Level::Error));
        assert_eq!(
            leading_level(
                br#" { "n": 1, "k": "a\"}", "ok": true, "level" : "WARNING", "message":"#
            ),
            Some(Level::Warn)
        );
        assert_eq!(
            leading_level(br#"{"message":"m"#),
            None,
            "cut before the level"
        );
        assert_eq!(leading_level(br#"{"metadata":{},"level":"INFO"}"#), None);
        assert_eq!(leading_level(br#"{"level":"FATAL","#), None);
        assert_eq!(leading_level(b"not json"), None);
    }

    #[test]
    fn malformed_keeps_the_text_after_the_separator() {
        assert!(matches!(
            parse_line(b"\x1ehello"),
            StderrLine::Malformed(b"hello", _)
        ));
    }
}
