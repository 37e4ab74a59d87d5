//! How commands print entries: the human line (`dump`, `search`) and NDJSON (`--json`), so
//! that every command prints an entry the same way.

use std::io::{self, Write};
use std::ops::Range;

use logstore::{format_rfc3339_ms, Level, LogEntry};

use super::{escape, sgr, Out};

/// Writes one entry as NDJSON or as the human line.
pub fn write_entry(out: &mut Out, entry: &LogEntry, json: bool) -> io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, entry).map_err(io::Error::from)?;
        return writeln!(out);
    }
    let color = out.color;
    write_human(out, entry, color)
}

/// Writes one entry as NDJSON with its sequence number first: `{"seq":N,...}` (`null` for an
/// entry written before entries had one); the rest of the object is exactly what
/// [`write_entry`] writes.
pub fn write_entry_with_seq(out: &mut Out, entry: &LogEntry, seq: Option<u64>) -> io::Result<()> {
    #[derive(serde::Serialize)]
    struct WithSeq<'a> {
        seq: Option<u64>,
        #[serde(flatten)]
        entry: &'a LogEntry,
    }
    serde_json::to_writer(&mut *out, &WithSeq { seq, entry }).map_err(io::Error::from)?;
    writeln!(out)
}

/// `2026-11-25T12:00:00.123Z INFO  scheduler [task] message {"k":1}`, every field escaped; the
/// message's own SGR colour codes kept with `color`, stripped without ([`sgr::show`]).
pub fn write_human(out: &mut impl Write, entry: &LogEntry, color: bool) -> io::Result<()> {
    write_human_marked(out, entry, color, &[])
}

/// [`write_human`], with the byte ranges `marks` of the message highlighted when `color` is
/// on (search shows its matched words so). Each piece is escaped on its own, which gives the
/// same text as escaping the whole message: escaping works character by character.
pub fn write_human_marked(
    out: &mut impl Write,
    entry: &LogEntry,
    color: bool,
    marks: &[Range<usize>],
) -> io::Result<()> {
    let (on, off) = match (color, entry.level) {
        (false, _) | (true, Level::Info) => ("", ""),
        (true, Level::Error) => ("\x1b[31m", "\x1b[0m"),
        (true, Level::Warn) => ("\x1b[33m", "\x1b[0m"),
        (true, Level::Debug) => ("\x1b[2m", "\x1b[0m"),
    };
    write!(
        out,
        "{} {on}{:<5}{off} {}",
        format_rfc3339_ms(entry.timestamp),
        entry.level.as_str(),
        escape(&entry.source)
    )?;
    if let Some(task) = &entry.task_id {
        write!(out, " [{}]", escape(task.as_str()))?;
    }
    write!(out, " ")?;
    write_marked(out, &entry.message, color, if color { marks } else { &[] })?;
    if let Some(metadata) = &entry.metadata {
        // serde_json escapes C0 controls in strings but not DEL or C1: escape() does.
        let text = serde_json::to_string(metadata).map_err(io::Error::from)?;
        write!(out, " {}", escape(&text))?;
    }
    writeln!(out)
}

/// Bold red, as grep marks a match.
const MARK_ON: &str = "\x1b[1;31m";
const MARK_OFF: &str = "\x1b[0m";

fn write_marked(
    out: &mut impl Write,
    text: &str,
    color: bool,
    marks: &[Range<usize>],
) -> io::Result<()> {
    let mut at = 0;
    for m in marks {
        let (Some(before), Some(marked)) = (text.get(at..m.start), text.get(m.clone())) else {
            continue;
        };
        write!(
            out,
            "{}{MARK_ON}{}{MARK_OFF}",
            sgr::show(before, color),
            sgr::show(marked, color)
        )?;
        at = m.end;
    }
    write!(
        out,
        "{}",
        sgr::show(text.get(at..).unwrap_or_default(), color)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use logstore::{ExecutionId, TaskId};

    fn human(entry: &LogEntry, color: bool) -> String {
        let mut buf = Vec::new();
        write_human(&mut buf, entry, color).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn human_line_has_every_field_in_order() {
        let meta = serde_json::json!({"k": 1}).as_object().cloned().unwrap();
        let e = LogEntry::new(
            ExecutionId::new("e").unwrap(),
            1_795_608_000_123,
            Level::Info,
            "scheduler",
            "started",
        )
        .with_task(TaskId::new("t1").unwrap())
        .with_metadata(meta);
        assert_eq!(
            human(&e, false),
            "2026-11-25T12:00:00.123Z INFO  scheduler [t1] started {\"k\":1}\n"
        );
    }

    #[test]
    fn colour_marks_the_level_and_keeps_only_sgr_of_the_content() {
        let e = LogEntry::new(
            ExecutionId::new("e").unwrap(),
            0,
            Level::Error,
            "worker",
            "\x1b[0m\u{9b}2J\x1b[2J",
        );
        let line = human(&e, true);
        assert!(line.contains("\x1b[31mERROR\x1b[0m"), "{line:?}");
        assert!(
            line.ends_with(" \x1b[0m\\u{9b}2J\\x1b[2J\x1b[0m\n"),
            "{line:?}"
        );
        let line = human(&e, false);
        assert!(line.ends_with(" \\u{9b}2J\\x1b[2J\n"), "{line:?}");
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn marks_highlight_the_ranges_and_stay_escaped() {
        let e = LogEntry::new(
            ExecutionId::new("e").unwrap(),
            0,
            Level::Info,
            "s",
            "a\tERROR b",
        );
        let mut buf = Vec::new();
        write_human_marked(&mut buf, &e, true, &[2..7]).unwrap();
        let line = String::from_utf8(buf).unwrap();
        assert!(
            line.ends_with(" a\\t\x1b[1;31mERROR\x1b[0m b\n"),
            "{line:?}"
        );
        let mut plain = Vec::new();
        write_human_marked(&mut plain, &e, false, &[2..7]).unwrap();
        assert!(String::from_utf8(plain)
            .unwrap()
            .ends_with(" a\\tERROR b\n"));
    }
}
