//! Helpers of the `serve` tests: the `logstore serve` binary as a child process, an HTTP
//! client that returns error statuses instead of failing, and sample stores.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use logstore::{Level, LogEntry, LogStore, TaskId};

pub use crate::common::{id, terminal, BIN};

/// `logstore serve` on a free loopback port, killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
}

impl Server {
    pub fn start(dir: &Path, token: Option<&str>) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.arg("--dir")
            .arg(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("LOGSTORE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(t) = token {
            cmd.args(["--token", t]);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .trim_end_matches('/')
            .to_owned();
        Server { child, url }
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that hands back 4xx/5xx answers as answers.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// GET with optional headers: (status, body).
pub fn get(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = agent().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.call().unwrap();
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap();
    (status, body)
}

pub fn get_json(url: &str) -> serde_json::Value {
    let (status, body) = get(url, &[]);
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Reads events of an SSE body, one at a time.
pub struct SseReader {
    lines: std::io::Lines<BufReader<Box<dyn Read + Send>>>,
}

impl SseReader {
    pub fn open(url: &str, last_event_id: Option<&str>) -> SseReader {
        let mut req = agent().get(url).header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.call().unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let reader: Box<dyn Read + Send> = Box::new(resp.into_body().into_reader());
        SseReader {
            lines: BufReader::new(reader).lines(),
        }
    }

    /// The next event (comments such as keep-alives are skipped); None at the end of the body.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        let mut ev = SseEvent {
            id: None,
            event: None,
            data: String::new(),
        };
        let mut any = false;
        for line in self.lines.by_ref() {
            let line = line.unwrap();
            if line.is_empty() {
                if any {
                    return Some(ev);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            any = true;
            let (k, v) = line.split_once(':').unwrap_or((&line, ""));
            let v = v.strip_prefix(' ').unwrap_or(v).to_owned();
            match k {
                "id" => ev.id = Some(v),
                "event" => ev.event = Some(v),
                "data" => ev.data.push_str(&v),
                _ => {}
            }
        }
        None
    }
}

/// Now in Unix ms.
pub fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// The `i`-th entry of a varied execution: all levels, two tasks, some metadata, unicode.
pub fn varied(exec: &str, ts: i64, i: usize) -> LogEntry {
    let level = [Level::Info, Level::Debug, Level::Warn, Level::Error][i % 4];
    let mut e = LogEntry::new(
        id(exec),
        ts,
        level,
        if i.is_multiple_of(3) {
            "plugin:acme/http.get"
        } else {
            "worker"
        },
        format!("{exec} line {i} – ünïcode \u{1f600} \x1b[32mok\x1b[0m"),
    );
    if i.is_multiple_of(2) {
        e = e.with_task(TaskId::new(format!("task-{}", i % 5)).unwrap());
    }
    if i.is_multiple_of(7) {
        let meta = serde_json::json!({"i": i, "nested": {"k": [1, 2]}});
        e = e.with_metadata(meta.as_object().cloned().unwrap());
    }
    e
}

/// `logstore dump ID --json [args]` stdout.
pub fn dump_json(dir: &Path, exec: &str, args: &[&str]) -> String {
    let out = crate::common::logstore_output(dir, &[&["dump", exec, "--json"], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes `entries` into a new store at `dir` (flushed and synced when it returns).
pub fn write_store(dir: &Path, entries: impl IntoIterator<Item = LogEntry>) {
    let store = LogStore::open(dir).unwrap();
    for e in entries {
        store.append(&e).unwrap();
    }
    store.flush(logstore::Durability::Synced).unwrap();
}
