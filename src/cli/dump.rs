//! `logstore dump`: one execution's entries, as text for people or NDJSON for programs,
//! optionally following new ones until the execution ends.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use logstore::{format_rfc3339_ms, ExecutionId, Filter, Level, LogEntry, LogStore, TaskId};

use super::{escape, parse_time, CmdResult, Out};

/// How often a follower looks for new entries.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Arguments of `dump`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Times (--since, --until) are RFC 3339 (2026-11-25T12:00:00Z), Unix \
milliseconds (1795608000000), or a duration before now (10m, 2h, 1day)."
)]
pub struct Args {
    /// The execution whose entries to print.
    #[arg(value_name = "EXECUTION_ID")]
    execution_id: ExecutionId,
    /// Print NDJSON, one `LogEntry` object per line, as `import` reads it.
    #[arg(long)]
    json: bool,
    /// Only entries at this level or above (DEBUG, INFO, WARN, ERROR).
    #[arg(long, value_name = "LEVEL")]
    level: Option<Level>,
    /// Only entries of this task.
    #[arg(long, value_name = "TASK_ID")]
    task: Option<TaskId>,
    /// Only entries whose source starts with this.
    #[arg(long, value_name = "PREFIX")]
    source: Option<String>,
    /// Only entries at or after this time.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<i64>,
    /// Only entries before this time.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<i64>,
    /// Only the last N matching entries (with --follow: of those already stored).
    #[arg(short = 'n', long, value_name = "N")]
    tail: Option<usize>,
    /// Keep printing new entries (polling every 200 ms) until the execution's terminal entry
    /// is stored. An execution with nothing stored yet is waited for (the store directory
    /// must exist).
    #[arg(short = 'f', long)]
    follow: bool,
    /// Read the execution from ClickHouse (as `logstore ship` stored it), not from the store:
    /// http://[user[:password]@]host[:port].
    #[arg(long, value_name = "URL", conflicts_with = "follow")]
    clickhouse: Option<String>,
    /// With --clickhouse: the database holding the `logs` table [default: logstore].
    #[arg(long, value_name = "NAME", requires = "clickhouse")]
    database: Option<String>,
}

impl Args {
    fn filter(&self) -> Filter {
        Filter {
            min_level: self.level,
            task_id: self.task.clone(),
            source_prefix: self.source.clone(),
            since_ms: self.since,
            until_ms: self.until,
            limit: None,
            tail: self.tail,
        }
    }
}

/// Prints the entries of one execution from the store at `dir`.
pub fn run(dir: &Path, args: Args) -> CmdResult {
    if let Some(url) = &args.clickhouse {
        return from_clickhouse(url, &args);
    }
    let store = super::open_for_reading(dir)?;
    let mut out = Out::stdout();
    if args.follow {
        follow(&store, &args, &mut out)?;
    } else {
        let filter = args.filter();
        if filter.tail.is_some() {
            for entry in store.query(&args.execution_id, &filter)? {
                write_entry(&mut out, &entry, args.json)?;
            }
        } else {
            // Streamed: an execution of any size is printed in constant memory.
            let mut written = Ok(());
            store.query_each(&args.execution_id, &filter, |entry| {
                written = write_entry(&mut out, &entry, args.json);
                written.is_ok()
            })?;
            written?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the execution as ClickHouse holds it, through the same printer as the store's.
fn from_clickhouse(url: &str, args: &Args) -> CmdResult {
    let ch = logstore::ship::ClickHouse::new(url)?;
    let database = args.database.as_deref().unwrap_or("logstore");
    let mut out = Out::stdout();
    let mut written = Ok(());
    logstore::ship::fleet::read_execution(
        &ch,
        database,
        &args.execution_id,
        &args.filter(),
        |entry| {
            written = write_entry(&mut out, &entry, args.json);
            written.is_ok()
        },
    )?;
    written?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Polls until the execution's terminal entry has been seen.
fn follow(store: &LogStore, args: &Args, out: &mut Out) -> CmdResult {
    let filter = Filter {
        tail: None,
        ..args.filter()
    };
    let mut follower = store.follow(&args.execution_id, filter);
    let mut tail = args.tail;
    loop {
        let mut entries = follower.poll()?;
        // --tail applies to what was already stored, so only to the first poll.
        if let Some(n) = tail.take() {
            let skip = entries.len().saturating_sub(n);
            entries.drain(..skip);
        }
        for entry in &entries {
            write_entry(out, entry, args.json)?;
        }
        // Each poll's entries are shown at once, not when the buffer fills.
        out.flush()?;
        if follower.is_finished() {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Writes one entry as NDJSON or as the human line.
pub fn write_entry(out: &mut Out, entry: &LogEntry, json: bool) -> io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, entry).map_err(io::Error::from)?;
        return writeln!(out);
    }
    let color = out.color;
    write_human(out, entry, color)
}

/// `2026-11-25T12:00:00.123Z INFO  scheduler [task] message {"k":1}`, every field escaped.
fn write_human(out: &mut impl Write, entry: &LogEntry, color: bool) -> io::Result<()> {
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
    write!(out, " {}", escape(&entry.message))?;
    if let Some(metadata) = &entry.metadata {
        // serde_json escapes C0 controls in strings but not DEL or C1: escape() does.
        let text = serde_json::to_string(metadata).map_err(io::Error::from)?;
        write!(out, " {}", escape(&text))?;
    }
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn colour_marks_the_level_only_and_content_stays_escaped() {
        let e = LogEntry::new(
            ExecutionId::new("e").unwrap(),
            0,
            Level::Error,
            "worker",
            "\x1b[0m\u{9b}2J",
        );
        let line = human(&e, true);
        assert!(line.contains("\x1b[31mERROR\x1b[0m"), "{line:?}");
        assert!(line.ends_with(" \\x1b[0m\\u{9b}2J\n"), "{line:?}");
    }
}
