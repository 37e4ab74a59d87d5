//! `logstore list`: the executions in the store, with counts and final state.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use logstore::{format_rfc3339_ms, ExecutionSummary};

use super::{escape, write_table, CmdResult, Out};

/// An execution without a terminal entry whose last entry is younger than this is shown as
/// `RUNNING?`; an older one as `-` (it ended without saying so, or its engine died).
const RECENT_MS: i64 = 60 * 60 * 1000;

/// Arguments of `list`.
#[derive(Debug, Default, clap::Args)]
#[command(
    after_help = "STATE is SUCCESS, FAILED or CANCELLED once the execution's terminal \
entry (source `scheduler`, metadata {\"state\": ...}) is stored; RUNNING? if it is not and the \
last entry is less than an hour old; - otherwise."
)]
pub struct Args {
    /// Print NDJSON, one object per execution.
    #[arg(long)]
    json: bool,
    /// Only the newest N executions (by first entry), newest first. Without it, every
    /// execution, oldest first.
    #[arg(short = 'n', long = "newest", value_name = "N")]
    newest: Option<usize>,
    /// Only executions in this state: SUCCESS, FAILED, CANCELLED, or RUNNING (no terminal
    /// entry stored).
    #[arg(long, value_name = "STATE", value_parser = logstore::ListFilter::parse_state)]
    state: Option<String>,
    /// Only executions with an entry at or after T (RFC 3339, Unix ms, or a duration ago such
    /// as 2h).
    #[arg(long, value_name = "T", value_parser = super::parse_time)]
    since: Option<i64>,
    /// Only executions with an entry before T.
    #[arg(long, value_name = "T", value_parser = super::parse_time)]
    until: Option<i64>,
    /// Only executions whose id starts with PREFIX.
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,
}

/// Lists the executions of the store at `dir`.
pub fn run(dir: &Path, args: Args) -> CmdResult {
    let store = super::open_for_reading(dir)?;
    let filter = logstore::ListFilter {
        state: args.state.clone(),
        since_ms: args.since,
        until_ms: args.until,
        prefix: args.prefix.clone(),
        after: None,
        limit: args.newest,
    };
    let executions = if args.newest.is_some() {
        store.executions(&filter)?.executions
    } else {
        let mut all = store.list()?;
        all.retain(|s| filter.matches(s));
        all
    };
    let mut out = Out::stdout();
    if args.json {
        for s in &executions {
            serde_json::to_writer(&mut out, s)?;
            writeln!(out)?;
        }
    } else {
        let now = now_ms();
        let rows: Vec<Vec<String>> = executions.iter().map(|s| row(s, now)).collect();
        write_table(
            &mut out,
            &["EXECUTION", "FIRST", "LAST", "ENTRIES", "ERRORS", "STATE"],
            &rows,
            &[3, 4],
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn row(s: &ExecutionSummary, now: i64) -> Vec<String> {
    let state = match &s.final_state {
        Some(state) => escape(state).into_owned(),
        None if now.saturating_sub(s.last_ts) < RECENT_MS => "RUNNING?".to_owned(),
        None => "-".to_owned(),
    };
    vec![
        escape(s.execution_id.as_str()).into_owned(),
        format_rfc3339_ms(s.first_ts),
        format_rfc3339_ms(s.last_ts),
        s.entries.to_string(),
        s.errors.to_string(),
        state,
    ]
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
