//! `logstore import`: NDJSON entries on stdin, through the normal write path.

use std::error::Error;
use std::io::{self, BufRead, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use logstore::{Durability, LogEntry, LogStore, MAX_MESSAGE_LEN, MAX_METADATA_LEN};

use super::{CmdResult, Out};

/// Longest line accepted: the largest valid entry even if every byte of its message and
/// metadata were written as a six-byte `\uXXXX` escape, plus room for the other fields.
/// A line past it is refused before it is held in memory whole.
const MAX_LINE_LEN: usize = 6 * (MAX_MESSAGE_LEN + MAX_METADATA_LEN) + 64 * 1024;

/// Arguments of `import`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each line of stdin is one JSON object with the keys execution_id, \
timestamp (Unix ms), level (DEBUG, INFO, WARN or ERROR), source, message, and optionally \
task_id and metadata (an object). Blank lines are skipped. At the first bad line the entries \
before it are synced to disk, the line is reported and the exit code is 1."
)]
pub struct Args {}

/// Imports stdin into the store at `dir`.
pub fn run(dir: &Path, _args: Args) -> CmdResult {
    let store = super::open_for_writing(dir)?;
    let stdin = io::stdin();
    let imported = import(&store, stdin.lock());
    // Whether the input was good or not, what was accepted is made durable before we report.
    let synced = store.flush(Durability::Synced);
    let stored = match (imported, synced) {
        (Ok(stored), Ok(())) => stored,
        (Ok(_), Err(e)) => return Err(e.into()),
        (Err(line), Ok(())) => return Err(line.into()),
        (Err(line), Err(e)) => {
            return Err(format!(
                "line {}: {}; and the {} entries before it may be lost: {e}",
                line.line, line.reason, line.stored
            )
            .into())
        }
    };
    let mut out = Out::stdout();
    writeln!(out, "stored {stored} entries")?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Why the import stopped at a line.
#[derive(Debug)]
struct LineError {
    line: u64,
    stored: u64,
    reason: Box<dyn Error>,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: {} (the {} entries before it are stored)",
            self.line, self.reason, self.stored
        )
    }
}

impl Error for LineError {}

/// Appends each line's entry; returns how many were appended, or the first bad line.
fn import(store: &LogStore, mut input: impl BufRead) -> Result<u64, LineError> {
    let mut line = Vec::new();
    let mut stored = 0u64;
    let mut number = 0u64;
    loop {
        number += 1;
        let fail = |reason: Box<dyn Error>| LineError {
            line: number,
            stored,
            reason,
        };
        line.clear();
        let limit = u64::try_from(MAX_LINE_LEN + 1).unwrap_or(u64::MAX);
        let n = (&mut input)
            .take(limit)
            .read_until(b'\n', &mut line)
            .map_err(|e| fail(format!("cannot read stdin: {e}").into()))?;
        if n == 0 {
            return Ok(stored);
        }
        if line.len() > MAX_LINE_LEN {
            return Err(fail(
                format!("longer than {MAX_LINE_LEN} bytes, too long for any valid entry").into(),
            ));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry: LogEntry =
            serde_json::from_slice(&line).map_err(|e| fail(json_reason(&e).into()))?;
        store.append(&entry).map_err(|e| fail(e.into()))?;
        stored += 1;
    }
}

/// serde_json's message, with its "at line 1 column N" (always line 1 here) turned into a
/// column so that it does not contradict the line number we report.
fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(reason) if e.column() > 0 => format!("{reason} (column {})", e.column()),
        Some(reason) => reason.to_owned(),
        None => text,
    }
}
