//! `logstore stats`: sizes and counts per day, and totals.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use logstore::DayStats;
use serde::Serialize;

use super::seal::ratio;
use super::{write_table, CmdResult, Out};

/// Arguments of `stats`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "STATE is `sealed` (one compressed .sealed file), `parts` (today: closed \
segments sealed into PARTS parts, the open segment live), `sealed-v1` (a \
segment with its sorted index, written by an older version; the next writer open rewrites it) \
or `live`. RAW_BYTES is the size of the day in the live layout, segment and index (for a sealed \
day, of the files it was sealed from), DISK_BYTES what its files take now, RATIO the first over the \
second. --json prints one object: {\"days\": [...], \"total\": {...}}. The total of executions \
counts each execution once, however many days it spans."
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
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
    raw_bytes: u64,
    disk_bytes: u64,
    segment_bytes: u64,
    index_bytes: u64,
    entries: u64,
    runs: u64,
    blocks: u64,
    executions: u64,
    parts: u64,
    segments: u64,
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
        raw_bytes: days.iter().map(|d| d.raw_bytes).sum(),
        disk_bytes: days.iter().map(|d| d.disk_bytes).sum(),
        segment_bytes: days.iter().map(|d| d.segment_bytes).sum(),
        index_bytes: days.iter().map(|d| d.index_bytes).sum(),
        entries: days.iter().map(|d| d.entries).sum(),
        runs: days.iter().map(|d| d.runs).sum(),
        blocks: days.iter().map(|d| d.blocks).sum(),
        executions,
        parts: days.iter().map(|d| d.parts).sum(),
        segments: days.iter().map(|d| d.segments).sum(),
        ..JsonDay::default()
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
            total.raw_bytes.to_string(),
            total.disk_bytes.to_string(),
            ratio(total.raw_bytes, total.disk_bytes),
            total.entries.to_string(),
            total.executions.to_string(),
            total.parts.to_string(),
        ]);
        write_table(
            &mut out,
            &[
                "DAY",
                "STATE",
                "RAW_BYTES",
                "DISK_BYTES",
                "RATIO",
                "ENTRIES",
                "EXECUTIONS",
                "PARTS",
            ],
            &rows,
            &[2, 3, 4, 5, 6, 7],
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn state(d: &DayStats) -> &'static str {
    match (d.version, d.sealed, d.parts) {
        (2, true, _) => "sealed",
        (_, _, p) if p > 0 => "parts",
        (_, true, _) => "sealed-v1",
        _ => "live",
    }
}

fn json_day(d: &DayStats) -> JsonDay {
    JsonDay {
        day: Some(d.day.to_string()),
        sealed: Some(d.sealed),
        state: Some(state(d)),
        raw_bytes: d.raw_bytes,
        disk_bytes: d.disk_bytes,
        segment_bytes: d.segment_bytes,
        index_bytes: d.index_bytes,
        entries: d.entries,
        runs: d.runs,
        blocks: d.blocks,
        executions: d.executions,
        parts: d.parts,
        segments: d.segments,
    }
}

fn row(d: &DayStats) -> Vec<String> {
    vec![
        d.day.to_string(),
        state(d).to_owned(),
        d.raw_bytes.to_string(),
        d.disk_bytes.to_string(),
        ratio(d.raw_bytes, d.disk_bytes),
        d.entries.to_string(),
        d.executions.to_string(),
        d.parts.to_string(),
    ]
}
