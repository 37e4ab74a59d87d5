//! The pieces every command shares: opening the store, parsing times and ids, writing to
//! stdout without panicking on a closed pipe, escaping log text for a terminal, and the exit
//! codes.
//!
//! # Exit codes
//!
//! | code | meaning                                                                   |
//! |------|---------------------------------------------------------------------------|
//! | 0    | success (also when stdout was closed early, as by `logstore dump X \| head`) |
//! | 1    | an error: bad arguments, unknown execution, a bad import line, a held lock, I/O |
//! | 2    | `verify` found damage (the store could be read, but something in it is wrong) |
//!
//! `search` follows grep instead: 0 something matched, 1 nothing matched, 2 any error.
//!
//! Usage errors are exit code 1 too (clap's default would be 2, which scripts would mistake
//! for "verify found damage").

pub mod completions;
pub mod demo;
pub mod dump;
pub mod gc;
pub mod import;
pub mod list;
pub mod output;
pub mod run;
pub mod seal;
pub mod search;
pub mod serve;
mod sgr;
pub mod ship;
pub mod stats;
pub mod verify;

use std::error::Error;
use std::fmt::Write as _;
use std::io::{self, BufWriter, IsTerminal, StdoutLock, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use logstore::{LogStore, StoreError};

/// What a command returns: its exit code, or the error to print.
pub type CmdResult = Result<ExitCode, Box<dyn Error>>;

/// Exit code of a failed command.
pub const EXIT_ERROR: u8 = 1;
/// Exit code of `verify` when it found problems.
pub const EXIT_PROBLEMS: u8 = 2;

/// Opens the store for a reading command: no lock, so a running writer is never blocked.
pub fn open_for_reading(dir: &Path) -> Result<LogStore, StoreError> {
    LogStore::open_read_only(dir)
}

/// Opens the store for a writing command. A held lock comes back as
/// [`StoreError::Locked`], whose message names the holder's pid, after waiting up to
/// [`LOCK_WAIT`] for it: a writer killed a moment ago (so it never unlocked) leaves its lock
/// with any child it was forking at that instant, until that child executes.
pub fn open_for_writing(dir: &Path) -> Result<LogStore, StoreError> {
    let mut config = logstore::Config::default();
    if let Some(&bytes) = PART_BYTES.get() {
        config.part_bytes = bytes;
    }
    if let Some(&level) = DAY_LEVEL.get() {
        config.day_level = level;
    }
    let started = std::time::Instant::now();
    loop {
        match LogStore::open_with(dir, config.clone()) {
            Err(StoreError::Locked { .. }) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// How long a writing command waits for the writer lock before it reports who holds it.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The global `--part-mb`, in bytes, set once by `main` before any command runs.
pub static PART_BYTES: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// The global `--day-level`, set once by `main` before any command runs.
pub static DAY_LEVEL: std::sync::OnceLock<i32> = std::sync::OnceLock::new();

/// Whether `err` (or what caused it) is stdout closed by its reader: not a failure of ours,
/// the reader has all it wanted.
pub fn is_broken_pipe(err: &(dyn Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cur = e.source();
    }
    false
}

/// `error: what failed: caused by why: caused by ...`, escaped for the terminal.
///
/// A cause whose text the message before it already ends with is left out: some errors
/// (such as `StoreError::Io`) both print their source and return it from `source()`.
pub fn error_chain(err: &(dyn Error + 'static)) -> String {
    let mut text = format!("error: {err}");
    let mut previous = err.to_string();
    let mut cur = err.source();
    while let Some(cause) = cur {
        let msg = cause.to_string();
        if !previous.ends_with(&msg) {
            text.push_str(": caused by ");
            text.push_str(&msg);
        }
        previous = msg;
        cur = cause.source();
    }
    escape(&text).into_owned()
}

/// Buffered stdout. Every write returns `io::Result` (never `println!`, which panics on a
/// closed pipe); `main` turns `BrokenPipe` into a quiet exit.
pub struct Out {
    inner: BufWriter<StdoutLock<'static>>,
    /// Whether to use ANSI colours: stdout is a terminal and `NO_COLOR` is not set.
    pub color: bool,
}

impl Out {
    /// Locks stdout and decides on colour.
    pub fn stdout() -> Out {
        let stdout = io::stdout();
        let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Out {
            inner: BufWriter::new(stdout.lock()),
            color,
        }
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `s` with every character that could drive a terminal written as an escape: C0 controls
/// (`\n`, `\r`, `\t`, `\x1b`, ...), DEL (`\x7f`), C1 controls (`\u{9b}`, which some terminals
/// read as CSI), and the bidirectional overrides that reorder what is shown (`\u{202e}`).
/// Log text comes from plugins and processes we do not trust.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x80 && needs_escape(c) => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    // is_control covers C0, DEL and C1.
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Parses a time argument: Unix milliseconds (digits), RFC 3339 (`2026-11-25T12:00:00Z`,
/// seconds and zone optional), or a duration before now (`10m`, `2h 30m`, `1day`).
pub fn parse_time(s: &str) -> Result<i64, String> {
    parse_time_at(s, SystemTime::now())
}

fn parse_time_at(s: &str, now: SystemTime) -> Result<i64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<i64>()
            .map_err(|_| format!("{s:?} is too large for Unix milliseconds"));
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return unix_ms(t);
    }
    match humantime::parse_duration(s) {
        Ok(d) => unix_ms(now.checked_sub(d).unwrap_or(UNIX_EPOCH)),
        Err(_) => Err(format!(
            "{s:?} is not a time: expected RFC 3339 (2026-11-25T12:00:00Z), Unix milliseconds \
             (1795608000000) or a duration before now (10m, 2h, 1day)"
        )),
    }
}

fn unix_ms(t: SystemTime) -> Result<i64, String> {
    let ms = |d: Duration| i64::try_from(d.as_millis()).map_err(|_| "time out of range".to_owned());
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => ms(d),
        Err(e) => ms(e.duration()).map(|v| -v),
    }
}

/// Writes `rows` under `header` in columns two spaces apart; the columns in `right` (numbers)
/// are aligned right. Cells must already be escaped.
pub fn write_table(
    out: &mut impl Write,
    header: &[&str],
    rows: &[Vec<String>],
    right: &[usize],
) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            if right.contains(&i) {
                let _ = write!(line, "{cell:>w$}");
            } else {
                let _ = write!(line, "{cell:<w$}");
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_c0_del_c1_and_bidi() {
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
        assert_eq!(escape("a\x1b[31mb\r\n\t"), "a\\x1b[31mb\\r\\n\\t");
        assert_eq!(escape("\x7f\u{9b}\u{202e}"), "\\x7f\\u{9b}\\u{202e}");
    }

    #[test]
    fn times_parse_in_three_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_time_at("1795608000000", now), Ok(1_795_608_000_000));
        assert_eq!(
            parse_time_at("2026-11-25T12:00:00Z", now),
            Ok(1_795_608_000_000)
        );
        assert_eq!(parse_time_at("10m", now), Ok(1_000_000_000 - 600_000));
        assert!(parse_time_at("yesterday-ish", now).is_err());
    }
}
