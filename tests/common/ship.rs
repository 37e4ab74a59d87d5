//! Helpers of the shipping tests: an engine feeding a store at a steady rate from another
//! process, and reading an execution back from ClickHouse.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use logstore::ship::{fleet, ClickHouse};
use logstore::{Filter, LogEntry};

/// An engine in another process: `logstore import` fed `rate` entries/s, entry `n` being
/// `make(n)`, until `stop`. The feeder returns how many entries it wrote.
pub fn engine(
    dir: &Path,
    rate: u64,
    stop: Arc<AtomicBool>,
    make: impl Fn(u64) -> LogEntry + Send + 'static,
) -> (Child, JoinHandle<u64>) {
    let mut child = super::logstore(dir)
        .arg("import")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut n = 0u64;
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let due = u64::try_from(started.elapsed().as_millis()).unwrap() * rate / 1000;
            let mut chunk = String::new();
            while n < due {
                chunk.push_str(&serde_json::to_string(&make(n)).unwrap());
                chunk.push('\n');
                n += 1;
            }
            stdin.write_all(chunk.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
        n
    });
    (child, feeder)
}

/// Every entry of `exec` as the fleet reader reads them back from ClickHouse at `url`.
pub fn remote(url: &str, exec: &str) -> Vec<LogEntry> {
    let ch = ClickHouse::new(url).unwrap();
    let mut out = Vec::new();
    fleet::read_execution(&ch, "logstore", &super::id(exec), &Filter::default(), |e| {
        out.push(e);
        true
    })
    .unwrap();
    out
}
