//! The metrics an embedding engine gets (`logstore::observe`, through the `metrics` facade,
//! here into a debugging recorder), and `/metrics` of a real `logstore serve`.

mod common;
mod serve_util;

use std::collections::HashMap;
use std::time::Duration;

use common::entry;
use logstore::{Clock, Durability, LogStore, ManualClock};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serve_util::terminal;
use serve_util::{agent, now_ms, Server};

/// Counters by name (labels joined into the name), histograms by sample count.
fn snapshot(s: &metrics_util::debugging::Snapshotter) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for (key, _, _, value) in s.snapshot().into_vec() {
        let k = key.key();
        let mut name = k.name().to_owned();
        for l in k.labels() {
            name.push_str(&format!("{{{}={}}}", l.key(), l.value()));
        }
        let v = match value {
            DebugValue::Counter(n) => n as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(h) => h.len() as f64,
        };
        *out.entry(name).or_insert(0.0) += v;
    }
    out
}

#[test]
fn an_embedding_engine_gets_the_store_counters_and_serve_exposes_metrics() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    logstore::observe::describe();

    // The writer: 250 entries, one finished execution (an fsync), a past day sealed.
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(common::NOON);
    {
        let store = LogStore::open_with(dir.path(), common::manual(&clock)).unwrap();
        for i in 0..249 {
            store
                .append(&entry("m1", common::NOON + i, "line"))
                .unwrap();
        }
        store
            .append(&terminal("m1", common::NOON + 300, "SUCCESS"))
            .unwrap();
        store.flush(Durability::Synced).unwrap();
    }
    clock.advance(86_400_000);
    {
        let store = LogStore::open_with(dir.path(), common::manual(&clock)).unwrap();
        store
            .append(&entry("m2", clock.now_ms(), "next day"))
            .unwrap();
        store.seal().unwrap();
    }
    let got = snapshot(&snapshotter);
    assert_eq!(got["logstore_entries_appended_total"], 251.0, "{got:?}");
    assert!(got["logstore_bytes_appended_total"] > 251.0 * 20.0);
    assert!(got["logstore_flushes_total"] >= 3.0, "{got:?}");
    assert!(got["logstore_flush_seconds"] >= 3.0, "{got:?}");
    assert!(got["logstore_fsyncs_total"] >= 1.0, "{got:?}");
    assert!(
        got["logstore_seal_input_bytes_total{step=day}"] > 0.0,
        "{got:?}"
    );

    // Damage a record of the live segment, then read it.
    let seg = common::last_segment(dir.path());
    let frames = common::frames(&seg);
    drop(LogStore::open_read_only(dir.path()).unwrap());
    common::flip_bit(&seg, frames[0].0 + 20, 3);
    let ro = LogStore::open_read_only(dir.path()).unwrap();
    let _ = ro.query(&common::id("m2"), &logstore::Filter::default());
    let got = snapshot(&snapshotter);
    assert!(
        got.get("logstore_damage_found_total")
            .copied()
            .unwrap_or(0.0)
            >= 1.0,
        "{got:?}"
    );

    // `logstore serve`: a follower, a page, a search, and a shipper's lag, at /metrics.
    let live = tempfile::tempdir().unwrap();
    serve_util::write_store(live.path(), [entry("s1", now_ms(), "hello there")]);
    logstore::ship::Cursor::new("n1", "logstore")
        .save(live.path())
        .unwrap();
    let server = Server::start(live.path(), None);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let follow = {
        let url = format!("{}/api/executions/s1/follow", server.url);
        std::thread::spawn(move || {
            let mut sse = serve_util::SseReader::open(&url, None);
            let first = sse.next_event();
            // The follower is counted once it delivered its first entry.
            let _ = ready_tx.send(());
            // Stay connected until the scrape is done.
            let _ = done_rx.recv();
            first
        })
    };
    ready_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the follower got its first entry");
    let a = agent();
    a.get(format!("{}/api/executions/s1/logs", server.url))
        .call()
        .unwrap();
    a.get(format!("{}/api/search?q=hello", server.url))
        .call()
        .unwrap();
    let text = a
        .get(format!("{}/metrics", server.url))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
    };
    assert_eq!(value("logstore_followers "), 1.0);
    assert_eq!(value("logstore_page_seconds_count "), 1.0);
    assert_eq!(value("logstore_search_seconds_count "), 1.0);
    assert_eq!(value("logstore_ship_lag_entries{target=\"default\"} "), 1.0);
    assert_eq!(value("logstore_days{state=\"live\"} "), 1.0);
    assert!(
        text.contains("# TYPE logstore_page_seconds histogram"),
        "{text}"
    );
    drop(done_tx);
    assert!(
        follow.join().unwrap().is_some(),
        "the follower got its entry"
    );
    drop(server);

    // With a token, /metrics needs it too.
    let server = Server::start(live.path(), Some("t0ken"));
    let (status, _) = serve_util::get(&format!("{}/metrics", server.url), &[]);
    assert_eq!(status, 401);
    let (status, body) = serve_util::get(
        &format!("{}/metrics", server.url),
        &[("Authorization", "Bearer t0ken")],
    );
    assert_eq!(status, 200);
    assert!(body.contains("logstore_parts"), "{body}");
}
