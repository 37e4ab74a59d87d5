//! Shipping to an OpenTelemetry receiver over OTLP/HTTP, checked by a receiver no one here
//! wrote: `tests/otlp_support/receiver.py` decodes every request with the official Python
//! `opentelemetry-proto` package (PyPI; `.ci/run` installs it) and writes every field out.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ship::engine;
use common::{id, kill9, ok};
use logstore::ship::Cursor;
use logstore::{Filter, Level, LogEntry, LogStore, TaskId};
use serde_json::{json, Value};

/// The receiver process and where it writes.
struct Receiver {
    child: Child,
    out: tempfile::TempDir,
    port: u16,
}

impl Receiver {
    /// Starts one answering `script` first; `None` after `skip_or_fail` when Python or the
    /// package is missing.
    fn start(script: &str) -> Option<Receiver> {
        let out = tempfile::tempdir().unwrap();
        let spawned = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otlp_support/receiver.py"))
            .arg(out.path())
            .args(["--script", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                common::skip_or_fail(&format!("otlp: cannot run python3: {e}"));
                return None;
            }
        };
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(port) = line
            .strip_prefix("port ")
            .and_then(|p| p.trim().parse().ok())
        else {
            let _ = child.kill();
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
            common::skip_or_fail(&format!(
                "otlp: the receiver did not start (pip install opentelemetry-proto): {err}"
            ));
            return None;
        };
        Some(Receiver { child, out, port })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.out.path().join(name)
    }

    /// Every record received, in arrival order.
    fn records(&self) -> Vec<Value> {
        jsonl(&self.file("records.jsonl"))
    }

    fn requests(&self) -> Vec<Value> {
        jsonl(&self.file("requests.jsonl"))
    }

    /// What it refused as malformed (must stay empty).
    fn errors(&self) -> String {
        std::fs::read_to_string(self.file("errors.log")).unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ship(dir: &Path, url: &str, extra: &[&str]) -> Output {
    let mut args = vec!["ship", "--otlp", url, "--node", "n1"];
    args.extend_from_slice(extra);
    common::logstore_output(dir, &args)
}

/// A store with every kind of field: levels, tasks, metadata of every JSON type, awkward text.
fn varied_store(dir: &Path) -> usize {
    let store = LogStore::open(dir).unwrap();
    let mut n = 0;
    for i in 0..500i64 {
        let exec = format!("exec-{}", i % 7);
        let text = match i % 4 {
            0 => format!("plain line {i}"),
            1 => "quote ' backslash \\ tab \t nul \0 é 日本 \u{202e}".to_owned(),
            2 => String::new(),
            _ => "x".repeat(5000),
        };
        let mut e = LogEntry::new(
            id(&exec),
            1_795_600_000_000 + i,
            Level::ALL[usize::try_from(i % 4).unwrap()],
            format!("plugin:acme/s{}.run", i % 3),
            text,
        );
        if i % 2 == 0 {
            e = e.with_task(TaskId::new(format!("task-{}", i % 4)).unwrap());
        }
        if i % 5 == 0 {
            let meta = json!({"n": i, "big": u64::MAX, "x": 1.5, "ok": true, "none": null,
                              "list": ["a", 2], "nested": {"k": "v"}});
            e = e.with_metadata(meta.as_object().unwrap().clone());
        }
        store.append(&e).unwrap();
        n += 1;
    }
    n
}

/// A received attribute value back as the JSON it came from (the receiver's typed form).
fn to_json(v: &Value) -> Value {
    match v {
        Value::Null | Value::String(_) => v.clone(),
        Value::Object(o) => {
            let (kind, inner) = o.iter().next().unwrap();
            match kind.as_str() {
                "bool" | "int" => inner.clone(),
                "double" => inner.clone(),
                "array" => Value::Array(inner.as_array().unwrap().iter().map(to_json).collect()),
                "kvlist" => Value::Object(
                    inner
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|kv| (kv[0].as_str().unwrap().to_owned(), to_json(&kv[1])))
                        .collect(),
                ),
                other => panic!("unexpected value kind {other}"),
            }
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn every_field_reaches_the_official_decoder() {
    let Some(rx) = Receiver::start("") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let total = varied_store(dir.path());
    let out = ok(&ship(
        dir.path(),
        &rx.url(),
        &[
            "--once",
            "--service-name",
            "engine-prod",
            "--header",
            "X-Api-Key=s3cret",
            "--batch-entries",
            "100",
        ],
    ));
    assert!(
        out.contains(&format!("shipped {total} entries in 5 batches")),
        "{out}"
    );
    assert_eq!(rx.errors(), "");
    let requests = rx.requests();
    // The start-up check (an empty export), then five batches.
    let sizes: Vec<_> = requests
        .iter()
        .map(|r| r["records"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [0, 100, 100, 100, 100, 100]);
    assert!(requests.iter().all(
        |r| r["headers"]["x-api-key"] == "s3cret" && r["headers"]["content-encoding"] == "gzip"
    ));
    let records = rx.records();
    assert_eq!(records.len(), total);
    // Per execution, in order, every field equals the store's entry.
    let mut by_exec: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    let mut uids = std::collections::HashSet::new();
    for r in &records {
        assert_eq!(r["resource"]["service.name"], "engine-prod");
        assert_eq!(r["resource"]["host.name"], "n1");
        assert_eq!(r["scope"][0], "logstore");
        assert_eq!(r["trace_id"], "");
        let a = &r["attributes"];
        assert!(uids.insert(a["log.record.uid"].as_str().unwrap().to_owned()));
        by_exec
            .entry(a["logstore.execution_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(r);
    }
    let store = LogStore::open_read_only(dir.path()).unwrap();
    for (exec, got) in &by_exec {
        let stored = store.query_each_stored_vec(exec);
        assert_eq!(stored.len(), got.len(), "{exec}");
        for ((seq, e), r) in stored.iter().zip(got) {
            let a = &r["attributes"];
            let ns = u64::try_from(e.timestamp).unwrap() * 1_000_000;
            assert_eq!(r["time_unix_nano"], ns);
            assert_eq!(r["observed_time_unix_nano"], ns);
            assert_eq!(r["severity_text"], e.level.as_str());
            let number = match e.level {
                Level::Debug => 5,
                Level::Info => 9,
                Level::Warn => 13,
                Level::Error => 17,
            };
            assert_eq!(r["severity_number"], number);
            assert_eq!(r["body"], e.message.as_str());
            assert_eq!(a["logstore.source"], e.source.as_str());
            assert_eq!(a["logstore.seq"], json!({ "int": seq }));
            assert_eq!(a["log.record.uid"], format!("n1/{seq}"));
            match &e.task_id {
                Some(t) => assert_eq!(a["logstore.task_id"], t.as_str()),
                None => assert!(a.get("logstore.task_id").is_none()),
            }
            match &e.metadata {
                Some(m) => {
                    let mut want = Value::Object(m.clone());
                    // u64::MAX has no int64: it travels as a double.
                    want["big"] = json!(u64::MAX as f64);
                    assert_eq!(to_json(&a["logstore.metadata"]), want, "{exec}");
                }
                None => assert!(a.get("logstore.metadata").is_none()),
            }
        }
    }
    assert_eq!(by_exec.len(), 7);
    // The target has its own cursor and retention hold; the ClickHouse one is untouched.
    let cursor = Cursor::load_of(dir.path(), Some("otlp")).unwrap().unwrap();
    assert_eq!(cursor.shipped, u64::try_from(total).unwrap());
    assert!(Cursor::load(dir.path()).unwrap().is_none());
    assert!(dir.path().join("holds/ship-otlp").exists());
    let status = ok(&common::logstore_output(dir.path(), &["ship", "--status"]));
    assert!(
        status.contains(&format!(
            "target otlp node n1: {total} entries acknowledged"
        )),
        "{status}"
    );
    assert!(status.contains("lag: 0 entries"), "{status}");
}

/// The store's entries of `exec` with their numbers.
trait StoredVec {
    fn query_each_stored_vec(&self, exec: &str) -> Vec<(u64, LogEntry)>;
}

impl StoredVec for LogStore {
    fn query_each_stored_vec(&self, exec: &str) -> Vec<(u64, LogEntry)> {
        let mut out = Vec::new();
        self.query_each_stored(&id(exec), &Filter::default(), |s| {
            out.push((s.seq.unwrap(), s.entry));
            true
        })
        .unwrap();
        out
    }
}

#[test]
fn a_busy_throttling_or_vanishing_receiver_leaves_the_cursor_alone() {
    // 500, 503, 429 with Retry-After 1, a connection dropped mid-request: all retried, then
    // 200.
    let Some(rx) = Receiver::start("500,503,429:1,close") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let total = varied_store(dir.path());
    let started = Instant::now();
    let out = ship(dir.path(), &rx.url(), &["--once"]);
    ok(&out);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for said in [
        "HTTP 500",
        "HTTP 503",
        "HTTP 429",
        "Retry-After 1s",
        "went away",
    ] {
        assert!(stderr.contains(said), "{said}: {stderr}");
    }
    // Nothing was accepted before the 200, so nothing arrived twice.
    assert_eq!(rx.records().len(), total);
    assert_eq!(rx.requests().len(), 2, "the check, then the one batch");

    // A permanent refusal: exit 1 with the receiver's message, the cursor byte for byte where
    // it was.
    let Some(rx) = Receiver::start("400") else {
        return;
    };
    let path = Cursor::path_of(dir.path(), Some("otlp"));
    let before = std::fs::read(&path).unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    for i in 0..50 {
        let text = format!("late {i} {}", "y".repeat(i * 7));
        store
            .append(&LogEntry::new(id("late"), 1, Level::Info, "w", text))
            .unwrap();
    }
    drop(store);
    let out = ship(dir.path(), &rx.url(), &["--once"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refused the batch with HTTP 400: bad batch (scripted)"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // A receiver that stays busy: given up after --retry-for, cursor unchanged.
    let Some(rx) = Receiver::start(&"503,".repeat(100)) else {
        return;
    };
    let out = ship(dir.path(), &rx.url(), &["--once", "--retry-for", "1s"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 503"));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(rx.records().is_empty());

    // Bad configuration is refused before anything is read or sent.
    for (args, says) in [
        (vec!["https://c:4318"], "starts with http://"),
        (
            vec![&rx.url() as &str, "--header", "bad header=x"],
            "header name",
        ),
    ] {
        let mut all = vec!["ship", "--node", "n1", "--once", "--otlp"];
        all.extend(args);
        let out = common::logstore_output(dir.path(), &all);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{out:?}"
        );
    }
}

#[test]
fn sigkills_under_load_lose_nothing_and_double_at_most_a_batch_each() {
    let Some(rx) = Receiver::start("") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    drop(LogStore::open(dir.path()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let (mut writer, feeder) = engine(dir.path(), 2_000, Arc::clone(&stop), |n| {
        LogEntry::new(
            id(&format!("t{}", n % 10)),
            1_795_608_000_000 + i64::try_from(n).unwrap(),
            Level::Info,
            "worker",
            format!("entry {n}"),
        )
    });
    let batch = 300;
    let kills = 12;
    for k in 0..kills {
        let mut shipper = common::logstore(dir.path())
            .args(["ship", "--otlp", &rx.url(), "--node", "n1"])
            .args([
                "--batch-entries",
                &batch.to_string(),
                "--batch-delay",
                "20ms",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100 + 37 * k));
        kill9(&mut shipper);
    }
    stop.store(true, Ordering::Relaxed);
    let written = feeder.join().unwrap();
    assert!(writer.wait().unwrap().success());
    ok(&ship(dir.path(), &rx.url(), &["--once"]));
    assert_eq!(rx.errors(), "");
    let mut seen: HashMap<String, u32> = HashMap::new();
    for r in rx.records() {
        *seen
            .entry(
                r["attributes"]["log.record.uid"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
            .or_default() += 1;
    }
    // At least once: every entry arrived.
    assert_eq!(u64::try_from(seen.len()).unwrap(), written);
    let doubled: u32 = seen.values().map(|n| n - 1).sum();
    eprintln!("otlp kills: {written} entries, {kills} kills, {doubled} records sent twice");
    assert!(
        u64::from(doubled) <= kills * batch,
        "at most one batch is sent again per crash: {doubled}"
    );
}
