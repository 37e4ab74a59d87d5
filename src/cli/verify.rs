//! `logstore verify`: check every record and index entry.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::{escape, CmdResult, Out, EXIT_PROBLEMS};

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit code 0 if the store is intact, 2 if damage was found (each \
problem is printed as `FILE at offset N: reason`), 1 if the store could not be read. Records a \
running writer has not indexed yet are not problems."
)]
pub struct Args {}

/// Verifies the store at `dir`.
pub fn run(dir: &Path, _args: Args) -> CmdResult {
    let store = super::open_for_reading(dir)?;
    let report = store.verify()?;
    let mut out = Out::stdout();
    writeln!(
        out,
        "checked {} days, {} records, {} index entries",
        report.days, report.records, report.index_entries
    )?;
    for problem in &report.problems {
        writeln!(out, "{}", escape(&problem.to_string()))?;
    }
    let code = if report.is_ok() {
        writeln!(out, "ok")?;
        ExitCode::SUCCESS
    } else {
        writeln!(out, "{} problems found", report.problems.len())?;
        ExitCode::from(EXIT_PROBLEMS)
    };
    out.flush()?;
    Ok(code)
}
