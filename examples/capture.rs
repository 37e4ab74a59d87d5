//! Capture overhead: a Node.js plugin printing N lines with `console.log`, run (a) with stdout
//! on `/dev/null` and (b) captured by logstore into a store (every line an entry, the 10 MB cap
//! raised so nothing is dropped), alternating, median of R runs each.
//!
//! ```text
//! cargo run --release --example capture -- [--lines 1000000] [--runs 5] [--json]
//! ```
//!
//! The target (docs/PERFORMANCE.md): (b) takes less than 1.25x the wall time of (a).

use std::error::Error;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logstore::capture::{
    run_plugin, CancelSignal, CaptureConfig, CaptureContext, PluginCommand, PluginId,
};
use logstore::{Durability, ExecutionId, Filter, LogStore, TaskId};

fn script(lines: u64) -> String {
    format!("for (let i = 0; i < {lines}; i++) console.log('line ' + i + ' of the capture benchmark, a typical plugin log line');")
}

fn devnull(lines: u64) -> Result<Duration, Box<dyn Error>> {
    let t = Instant::now();
    let status = Command::new("node")
        .args(["-e", &script(lines)])
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("node failed: {status}").into());
    }
    Ok(t.elapsed())
}

fn captured(
    lines: u64,
    run: usize,
    rt: &tokio::runtime::Runtime,
) -> Result<Duration, Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(LogStore::open(dir.path())?);
    let exec = ExecutionId::new(format!("capture-{run}"))?;
    let ctx = CaptureContext::new(
        exec.clone(),
        TaskId::new("t")?,
        PluginId::parse("bench/node.print")?,
    );
    let cmd = PluginCommand::trusted("node", ["-e".to_owned(), script(lines)]);
    let cfg = CaptureConfig {
        max_output_bytes: u64::MAX,
        ..CaptureConfig::default()
    };
    let t = Instant::now();
    let outcome = rt.block_on(run_plugin(&ctx, &cmd, &cfg, &*store, CancelSignal::never()))?;
    store.flush(Durability::Written)?;
    let took = t.elapsed();
    if !outcome.succeeded() {
        return Err(format!("plugin ended {:?}", outcome.end).into());
    }
    let stored = store.count(&exec, &Filter::default())?;
    if stored != lines {
        return Err(format!("stored {stored} entries, expected {lines}").into());
    }
    Ok(took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("capture: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let (mut lines, mut runs, mut json) = (1_000_000u64, 5usize, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--lines" => lines = args.next().ok_or("--lines needs a value")?.parse()?,
            "--runs" => runs = args.next().ok_or("--runs needs a value")?.parse()?,
            "--json" => json = true,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: capture [--lines N] [--runs R] [--json]"
                )
                .into())
            }
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (mut base, mut cap) = (Vec::new(), Vec::new());
    for run in 0..runs.max(1) {
        base.push(devnull(lines)?);
        cap.push(captured(lines, run, &rt)?);
    }
    let (b, c) = (median(base), median(cap));
    let ratio = c.as_secs_f64() / b.as_secs_f64();
    if json {
        println!(
            "{{\"lines\":{lines},\"devnull_s\":{:.3},\"captured_s\":{:.3},\"ratio\":{ratio:.3},\"captured_lines_per_s\":{:.0}}}",
            b.as_secs_f64(),
            c.as_secs_f64(),
            lines as f64 / c.as_secs_f64()
        );
    } else {
        println!("node printing {lines} lines with console.log, median of {runs} alternating runs");
        println!("  stdout on /dev/null         {:>8.3} s", b.as_secs_f64());
        println!(
            "  captured into a logstore    {:>8.3} s   ({:.0} lines/s stored)",
            c.as_secs_f64(),
            lines as f64 / c.as_secs_f64()
        );
        println!("  ratio                       {ratio:>8.3}x   (target < 1.25x)");
    }
    Ok(())
}
