//! `logstore stats`: sizes and counts per day, and totals.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use logstore::DayStats;
use serde::Serialize;

use super::{write_table, CmdResult, Out};

/// Arguments of `stats`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "--json prints one object: {\"days\": [...], \"total\": {...}}. The \
total of executions counts each execution once, however many days it spans."
)]
pub struct Args {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// One day, or the total, in `stats --json`.
#[derive(Serialize, Default)]
struct JsonDay {
    #[serde(skip_serializing_if = "Option::is_none")]
    day: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sealed: Option<bool>,
    segment_bytes: u64,
    index_bytes: u64,
    entries: u64,
    runs: u64,
    executions: u64,
}

#[derive(Serialize)]
struct JsonStats {
    days: Vec<JsonDay>,
    total: JsonDay,
}

/// Prints the statistics of the store at `dir`.
pub fn run(dir: &Path, args: Args) -> CmdResult {
    let store = super::open_for_reading(dir)?;
    let days = store.stats()?;
    let executions = u64::try_from(store.list()?.len())?;
    let total = JsonDay {
        day: None,
        sealed: None,
        segment_bytes: days.iter().map(|d| d.segment_bytes).sum(),
        index_bytes: days.iter().map(|d| d.index_bytes).sum(),
        entries: days.iter().map(|d| d.entries).sum(),
        runs: days.iter().map(|d| d.runs).sum(),
        executions,
    };
    let mut out = Out::stdout();
    if args.json {
        let stats = JsonStats {
            days: days.iter().map(json_day).collect(),
            total,
        };
        serde_json::to_writer(&mut out, &stats)?;
        writeln!(out)?;
    } else {
        let mut rows: Vec<Vec<String>> = days.iter().map(row).collect();
        rows.push(vec![
            "total".to_owned(),
            String::new(),
            total.segment_bytes.to_string(),
            total.index_bytes.to_string(),
            total.entries.to_string(),
            total.runs.to_string(),
            total.executions.to_string(),
        ]);
        write_table(
            &mut out,
            &[
                "DAY",
                "STATE",
                "SEGMENT_BYTES",
                "INDEX_BYTES",
                "ENTRIES",
                "RUNS",
                "EXECUTIONS",
            ],
            &rows,
            &[2, 3, 4, 5, 6],
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn state(d: &DayStats) -> &'static str {
    if d.sealed {
        "sealed"
    } else {
        "live"
    }
}

fn json_day(d: &DayStats) -> JsonDay {
    JsonDay {
        day: Some(d.day.to_string()),
        sealed: Some(d.sealed),
        segment_bytes: d.segment_bytes,
        index_bytes: d.index_bytes,
        entries: d.entries,
        runs: d.runs,
        executions: d.executions,
    }
}

fn row(d: &DayStats) -> Vec<String> {
    vec![
        d.day.to_string(),
        state(d).to_owned(),
        d.segment_bytes.to_string(),
        d.index_bytes.to_string(),
        d.entries.to_string(),
        d.runs.to_string(),
        d.executions.to_string(),
    ]
}
