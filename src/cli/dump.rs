//! `logstore dump`: one execution's entries, as text for people or NDJSON for programs,
//! optionally following new ones until the execution ends.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use logstore::{ExecutionId, Filter, Level, LogEntry, LogStore, Stored, TaskId};

use super::output::{write_entry, write_entry_with_seq};
use super::sgr::ColorWhen;
use super::{parse_time, CmdResult, Out};

/// How often a follower looks without a wake-up (a lost inotify event, or none available:
/// the store's watcher then looks every 100 ms itself).
const POLL_INTERVAL: Duration = Duration::from_secs(1);

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
    /// Print NDJSON, one `LogEntry` object per line, as `import` reads it (messages exactly
    /// as stored, colour codes included).
    #[arg(long)]
    json: bool,
    /// With --json: add each entry's sequence number, `"seq"` (unique store-wide, increasing
    /// in append order; `null` for entries written before numbers existed).
    #[arg(long, requires = "json", conflicts_with = "clickhouse")]
    seq: bool,
    /// Colours in the text output: the level, and the plugins' own ANSI colour (SGR) codes,
    /// which are stripped when off. `auto`: on when stdout is a terminal and NO_COLOR is unset.
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = ColorWhen::Auto)]
    color: ColorWhen,
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
    /// Only the entries of this attempt of a task (their metadata holds `"attempt": N`): task
    /// start, the plugin's lines, capture warnings, completion. Attempts count per task, so
    /// combine with --task when the execution has several.
    #[arg(long, value_name = "N")]
    attempt: Option<u64>,
    /// Only the last N matching entries (with --follow: of those already stored).
    #[arg(short = 'n', long, value_name = "N")]
    tail: Option<usize>,
    /// Keep printing new entries (woken by the store's files changing) until the execution's terminal entry
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
    /// With --clickhouse: read through the Distributed table over this cluster, from whichever
    /// of its servers the URL names (checked, so a wrong server is an error, not a partial
    /// answer).
    #[arg(long, value_name = "NAME", requires = "clickhouse")]
    cluster: Option<String>,
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

    /// Prints one stored entry as asked: NDJSON (with its number under --seq) or a line.
    fn write(&self, out: &mut Out, s: &Stored) -> std::io::Result<()> {
        if self.seq {
            write_entry_with_seq(out, &s.entry, s.seq)
        } else {
            write_entry(out, &s.entry, self.json)
        }
    }

    /// The filter that the store does not know: the attempt.
    fn keeps(&self, entry: &LogEntry) -> bool {
        self.attempt.is_none_or(|n| {
            entry
                .metadata
                .as_ref()
                .and_then(|m| m.get("attempt"))
                .and_then(serde_json::Value::as_u64)
                == Some(n)
        })
    }
}

/// Prints the entries of one execution from the store at `dir`.
pub fn run(dir: &Path, args: Args) -> CmdResult {
    if let Some(url) = &args.clickhouse {
        return from_clickhouse(url, &args);
    }
    let store = super::open_for_reading(dir)?;
    let mut out = Out::stdout();
    out.color = args.color.resolve(out.color);
    if args.follow {
        follow(&store, &args, &mut out)?;
    } else {
        // One pass, streamed: an execution of any size is printed in constant memory; with
        // --tail only the last n are held. (The store's own tail would count entries that
        // --attempt then drops, so the tail is kept here.)
        let filter = args.filter();
        let tail = filter.tail;
        let mut last = std::collections::VecDeque::new();
        let mut written = Ok(());
        store.query_each_stored(
            &args.execution_id,
            &Filter {
                tail: None,
                ..filter
            },
            |s| {
                if !args.keeps(&s.entry) {
                    return true;
                }
                match tail {
                    Some(n) => {
                        if last.len() == n {
                            last.pop_front();
                        }
                        if n > 0 {
                            last.push_back(s);
                        }
                    }
                    None => written = args.write(&mut out, &s),
                }
                written.is_ok()
            },
        )?;
        written?;
        for s in &last {
            args.write(&mut out, s)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the execution as ClickHouse holds it, through the same printer as the store's.
fn from_clickhouse(url: &str, args: &Args) -> CmdResult {
    let ch = logstore::ship::ClickHouse::new(url)?;
    let database = args.database.as_deref().unwrap_or("logstore");
    if let Some(cluster) = &args.cluster {
        logstore::ship::cluster::check_cluster(&ch, cluster)?;
        logstore::ship::cluster::check_distributed(&ch, database, cluster)?;
    }
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
    // Woken when the execution may have new entries (inotify on the store's files); the
    // interval only guards against a lost wake-up.
    let wake = store.wake_of(&args.execution_id);
    let mut tail = args.tail;
    loop {
        let generation = wake.generation();
        let mut entries = follower.poll_stored()?;
        entries.retain(|s| args.keeps(&s.entry));
        // --tail applies to what was already stored, so only to the first poll.
        if let Some(n) = tail.take() {
            let skip = entries.len().saturating_sub(n);
            entries.drain(..skip);
        }
        for s in &entries {
            args.write(out, s)?;
        }
        // Each poll's entries are shown at once, not when the buffer fills.
        out.flush()?;
        if follower.is_finished() {
            return Ok(ExitCode::SUCCESS);
        }
        wake.wait(generation, POLL_INTERVAL);
    }
}
