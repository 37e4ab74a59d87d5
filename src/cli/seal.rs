//! `logstore seal`: seal every past day now and say what it did.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::{write_table, CmdResult, Out};

/// Arguments of `seal`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Rewrites every past day that is still in the live layout (segments + \
indexes) or in parts into one compressed YYYY-MM-DD.sealed file, turns today's closed segments \
into parts (and merges them when a day holds more than 8), waits until done, and prints per \
step: bytes before, bytes after, the ratio, entries, executions, the time taken and the step. \
Today's open segment is sealed after it rolls (at --part-mb). A running writer seals in the background \
on its own; this command needs the writer lock."
)]
pub struct Args {}

/// Seals the past days of the store at `dir`.
pub fn run(dir: &Path, _args: Args) -> CmdResult {
    let store = super::open_for_writing(dir)?;
    let sealed = store.seal()?;
    drop(store);
    let mut out = Out::stdout();
    if sealed.is_empty() {
        writeln!(out, "nothing left to seal")?;
    } else {
        let rows: Vec<Vec<String>> = sealed
            .iter()
            .map(|s| {
                vec![
                    s.day.to_string(),
                    s.segment_bytes.to_string(),
                    s.sealed_bytes.to_string(),
                    ratio(s.segment_bytes, s.sealed_bytes),
                    s.entries.to_string(),
                    s.executions.to_string(),
                    format!("{:.3}", s.elapsed.as_secs_f64()),
                    s.step.to_string(),
                ]
            })
            .collect();
        write_table(
            &mut out,
            &[
                "DAY",
                "BYTES_BEFORE",
                "BYTES_AFTER",
                "RATIO",
                "ENTRIES",
                "EXECUTIONS",
                "SECONDS",
                "STEP",
            ],
            &rows,
            &[1, 2, 3, 4, 5, 6],
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `before / after` with one decimal, as `12.3x`.
pub(crate) fn ratio(before: u64, after: u64) -> String {
    if after == 0 {
        return "-".to_owned();
    }
    #[allow(clippy::cast_precision_loss)]
    let r = before as f64 / after as f64;
    format!("{r:.1}x")
}
