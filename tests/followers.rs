//! A thousand live followers on one `logstore serve`: every entry arrives, in order, each
//! stream ends with `event: end`, and the server holds them all on a bounded number of threads
//! (followers are woken tasks, not polling threads). The writer is another process, so the
//! server learns of flushes through the store's watcher (inotify).
//!
//! `LOGSTORE_FOLLOWERS=5000 cargo test --release --test followers -- --nocapture` holds more.

mod common;
mod serve_util;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serve_util::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Threads of a process, from `/proc/PID/status`.
fn threads(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// What one follower saw.
#[derive(Debug, Default)]
struct Seen {
    /// The `n` of each entry, in arrival order.
    numbers: Vec<u64>,
    /// Event ids (cursors), in arrival order.
    ids: Vec<u64>,
    ended: bool,
    /// Delivery delays (receipt minus the entry's timestamp), ms.
    delays: Vec<i64>,
}

/// Follows `exec` over one HTTP/1.0 connection (the body is the raw event stream, closed by
/// the server after `event: end`).
async fn follow(addr: String, exec: String, connected: Arc<AtomicU32>) -> Seen {
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "GET /api/executions/{exec}/follow HTTP/1.0\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut lines = BufReader::new(stream).lines();
    let status = lines.next_line().await.unwrap().unwrap();
    assert!(status.contains(" 200 "), "{exec}: {status}");
    connected.fetch_add(1, Ordering::Relaxed);
    let mut seen = Seen::default();
    let mut event: Option<String> = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(id) = line
            .strip_prefix("id: ")
            .or_else(|| line.strip_prefix("id:"))
        {
            seen.ids.push(id.trim().parse().unwrap());
        } else if let Some(e) = line
            .strip_prefix("event: ")
            .or_else(|| line.strip_prefix("event:"))
        {
            event = Some(e.trim().to_owned());
        } else if let Some(data) = line
            .strip_prefix("data: ")
            .or_else(|| line.strip_prefix("data:"))
        {
            match event.take().as_deref() {
                Some("end") => {
                    seen.ended = true;
                    break;
                }
                Some(other) => panic!("{exec}: event {other}: {data}"),
                None => {
                    let v: serde_json::Value = serde_json::from_str(data).unwrap();
                    let msg = v["message"].as_str().unwrap();
                    // `line N`, or the terminal entry's `execution SUCCESS`.
                    let n = msg
                        .strip_prefix("line ")
                        .map_or(u64::MAX, |n| n.parse().unwrap());
                    seen.numbers.push(n);
                    // Line 0 was written before the follower connected.
                    if n > 0 {
                        seen.delays
                            .push(now_ms() - v["timestamp"].as_i64().unwrap());
                    }
                }
            }
        }
    }
    seen
}

#[test]
fn a_thousand_followers_get_every_entry_in_order_on_few_threads() {
    let followers: usize = std::env::var("LOGSTORE_FOLLOWERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let per_execution = 20u64;
    let dir = tempfile::tempdir().unwrap();
    let execs: Vec<String> = (0..followers).map(|i| format!("f{i:05}")).collect();
    // Every execution exists before it is followed (an unknown one is a 404).
    write_store(
        dir.path(),
        execs.iter().map(|e| common::entry(e, now_ms(), "line 0")),
    );
    let server = Server::start(dir.path(), None);
    let addr = server.url.trim_start_matches("http://").to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let connected = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = execs
        .iter()
        .map(|e| runtime.spawn(follow(addr.clone(), e.clone(), Arc::clone(&connected))))
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while (connected.load(Ordering::Relaxed) as usize) < followers {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {followers} followers connected within 60 s",
            connected.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let idle_threads = threads(server.pid());
    // The writer: another process appending 20 entries to each execution over about a
    // second, one round at a time, then each execution's terminal entry.
    let mut writer = Command::new(BIN)
        .arg("--dir")
        .arg(dir.path())
        .arg("import")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    let mut busy_threads = 0;
    for n in 1..per_execution {
        let mut chunk = String::new();
        for e in &execs {
            let entry = common::entry(e, now_ms(), &format!("line {n}"));
            chunk.push_str(&serde_json::to_string(&entry).unwrap());
            chunk.push('\n');
        }
        stdin.write_all(chunk.as_bytes()).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        busy_threads = busy_threads.max(threads(server.pid()));
    }
    let mut chunk = String::new();
    for e in &execs {
        let end = terminal(e, now_ms(), "SUCCESS");
        chunk.push_str(&serde_json::to_string(&end).unwrap());
        chunk.push('\n');
    }
    stdin.write_all(chunk.as_bytes()).unwrap();
    drop(stdin);
    assert!(writer.wait().unwrap().success());
    let mut delays = Vec::new();
    for (exec, task) in execs.iter().zip(tasks) {
        let seen = runtime.block_on(task).unwrap();
        assert!(seen.ended, "{exec}: no `event: end`");
        // Every entry, in order: line 0 .. line 19, then the terminal entry (not a number).
        let want: Vec<u64> = (0..per_execution).collect();
        assert_eq!(seen.numbers[..want.len()], want[..], "{exec}");
        assert_eq!(
            seen.numbers.len(),
            want.len() + 1,
            "{exec}: {:?}",
            seen.numbers
        );
        assert!(
            seen.ids.windows(2).all(|w| w[0] < w[1]),
            "{exec}: ids {:?}",
            seen.ids
        );
        delays.extend(seen.delays);
    }
    delays.sort_unstable();
    let p99 = delays[delays.len() * 99 / 100];
    eprintln!(
        "{followers} followers: server threads {idle_threads} idle, {busy_threads} at most while \
         {} entries/s were written; delivery p50 {} ms, p99 {p99} ms (a figure, not a test: see \
         examples/serve_bench.rs)",
        followers as u64 * per_execution,
        delays[delays.len() / 2]
    );
    assert!(
        busy_threads <= 64,
        "{busy_threads} threads for {followers} followers"
    );
}
