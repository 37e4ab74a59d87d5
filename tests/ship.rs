//! Shipping to a real ClickHouse (Debian's `clickhouse-server`, started by each test as its own
//! process): round trip, crash torture, errors that leave the cursor alone, `--status`, and
//! `gc` refusing unshipped days.
//!
//! `LOGSTORE_SHIP_TORTURE_KILLS=300 cargo test --release --test ship -- --nocapture torture`
//! runs a longer torture; `LOGSTORE_SHIP_TORTURE_SEED` replays one.

mod common;
#[path = "ship_support/clickhouse_server.rs"]
mod server;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::ship::{engine, remote};
use common::{executions, id, kill9, local, ok, terminal, NOON};
use logstore::ship::Cursor;
use logstore::{Clock, Level, LogEntry, LogStore, ManualClock, SystemClock, TaskId};
use logstore::{ShipConfig, Shipper};
use server::{Server, SHIPPER_PASSWORD};

const DAY_MS: i64 = 86_400_000;

fn logstore(dir: &Path, args: &[&str]) -> Output {
    common::logstore_output(dir, args)
}

/// A server for `test`, or `None` after `common::skip_or_fail` (which fails under CI).
fn server(test: &str) -> Option<Server> {
    match Server::start() {
        Ok(s) => Some(s),
        Err(why) => {
            common::skip_or_fail(&format!(
                "{test}: cannot start ClickHouse: {why} (.ci/run installs clickhouse-server)"
            ));
            None
        }
    }
}

fn ship(dir: &Path, url: &str, extra: &[&str]) -> Output {
    let mut args = vec!["ship", "--clickhouse", url, "--node", "n1"];
    args.extend_from_slice(extra);
    logstore(dir, &args)
}

fn failed(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Every execution of the store reads back from ClickHouse equal, and the table holds
/// exactly the store's entries (with FINAL).
fn assert_fleet_equals_store(dir: &Path, server: &Server) {
    let mut total = 0usize;
    for exec in executions(dir) {
        let (l, r) = (local(dir, &exec), remote(&server.url(), &exec));
        assert_eq!(l.len(), r.len(), "execution {exec}: count");
        assert!(l == r, "execution {exec}: content differs");
        total += l.len();
    }
    let final_count = server.query("SELECT count() FROM logstore.logs FINAL WHERE node = 'n1'");
    assert_eq!(
        final_count.trim(),
        total.to_string(),
        "rows in ClickHouse (FINAL)"
    );
}

fn meta(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().cloned().unwrap()
}

/// A store of two days (the first sealed), with every kind of field and awkward text.
fn varied_store(dir: &Path) {
    let clock = ManualClock::new(NOON - DAY_MS);
    let mut n = 0i64;
    for day in 0..2 {
        let store = LogStore::open_with(dir, common::manual(&clock)).unwrap();
        for i in 0..600 {
            let exec = format!("exec-{}", i % 9);
            let level = Level::ALL[usize::try_from(i % 4).unwrap()];
            let text = match i % 5 {
                0 => format!("plain line {i}"),
                1 => "quote ' backslash \\ tab \t newline \n nul \0 é 日本 \u{202e}".to_owned(),
                2 => "x".repeat(70_000 / 2),
                3 => String::new(),
                _ => format!("error: step {i} failed"),
            };
            let mut e = LogEntry::new(
                id(&exec),
                NOON + n,
                level,
                format!("plugin:acme/s{}.run", i % 3),
                text,
            );
            if i % 2 == 0 {
                e = e.with_task(TaskId::new(format!("task-{}", i % 4)).unwrap());
            }
            if i % 7 == 0 {
                e = e.with_metadata(meta(
                    serde_json::json!({"stack": ["a", "b'"], "n": i, "nested": {"k": null}}),
                ));
            }
            store.append(&e).unwrap();
            n += 1;
        }
        if day == 1 {
            store
                .append(&terminal("exec-0", NOON + n, "SUCCESS"))
                .unwrap();
            // The first day in the sealed layout (v2), the second live (v1).
            store.seal().unwrap();
        }
        drop(store);
        clock.advance(DAY_MS);
    }
}

#[test]
fn round_trip_every_execution_reads_back_as_the_local_dump() {
    let Some(server) = server("round_trip") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    varied_store(dir.path());
    let url = server.url();
    let sealed = common::files_with_ext(dir.path(), "sealed").len();
    assert_eq!(sealed, 1, "one sealed day, one live day");
    // Small batches: many inserts, runs of one execution split across them.
    let out = ok(&ship(
        dir.path(),
        &server.url(),
        &["--init", "--once", "--batch-entries", "97"],
    ));
    assert!(out.contains("shipped 1201 entries"), "{out}");
    for exec in executions(dir.path()) {
        for args in [
            vec!["dump", "--json", exec.as_str()],
            vec!["dump", exec.as_str()],
            vec![
                "dump",
                "--json",
                "--level",
                "warn",
                "--task",
                "task-2",
                exec.as_str(),
            ],
            vec![
                "dump",
                "--source",
                "plugin:acme/s1",
                "-n",
                "7",
                exec.as_str(),
            ],
            vec![
                "dump",
                "--since",
                "1795608000100",
                "--until",
                "1795608000900",
                exec.as_str(),
            ],
        ] {
            let here = ok(&logstore(dir.path(), &args));
            let mut fleet_args = args.clone();
            fleet_args.insert(1, "--clickhouse");
            fleet_args.insert(2, url.as_str());
            let there = ok(&logstore(dir.path(), &fleet_args));
            assert!(
                here == there,
                "{args:?} differs between the store and ClickHouse"
            );
        }
    }
    assert_fleet_equals_store(dir.path(), &server);
    // Shipping everything again from scratch stores every row twice and reads each once.
    std::fs::remove_file(Cursor::path(dir.path())).unwrap();
    ok(&ship(dir.path(), &server.url(), &["--once"]));
    assert_fleet_equals_store(dir.path(), &server);
    let raw = server.raw_rows();
    assert!(raw >= 1201, "{raw}");
    // An execution ClickHouse has never seen is an error that says so.
    let err = failed(&logstore(
        dir.path(),
        &["dump", "--clickhouse", &server.url(), "nope"],
    ));
    assert!(
        err.contains("no entries stored in ClickHouse") && err.contains("nope"),
        "{err}"
    );
}

fn cursor_text(dir: &Path) -> String {
    std::fs::read_to_string(Cursor::path(dir)).unwrap()
}

fn import(dir: &Path, lines: &str) {
    ok(&common::logstore_with_stdin(dir, &["import"], lines));
}

fn ndjson(execs: usize, count: usize, ts: i64, text: &str) -> String {
    let mut s = String::new();
    for i in 0..count {
        let e = LogEntry::new(
            id(&format!("e{}", i % execs)),
            ts,
            Level::Info,
            "worker",
            format!("{text} {i} {}", "p".repeat(100)),
        );
        s.push_str(&serde_json::to_string(&e).unwrap());
        s.push('\n');
    }
    s
}

/// A proxy in front of the server that passes `limit` bytes of each request and then cuts both
/// connections: a server that goes away in the middle of a batch.
fn cutting_proxy(upstream: u16, limit: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (mut c2, mut u2) = (client.try_clone().unwrap(), up.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut u2, &mut c2);
            });
            let mut passed = 0;
            let mut buf = [0u8; 8192];
            while passed < limit {
                let Ok(n) = client.read(&mut buf) else { break };
                if n == 0 {
                    break;
                }
                let n = n.min(limit - passed);
                if up.write_all(&buf[..n]).is_err() {
                    break;
                }
                passed += n;
            }
            let _ = up.shutdown(Shutdown::Both);
            let _ = client.shutdown(Shutdown::Both);
        }
    });
    port
}

#[test]
fn bad_url_credentials_table_and_a_vanishing_server_leave_the_cursor_alone() {
    let Some(server) = server("ship_errors") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let now = SystemClock.now_ms();
    import(dir.path(), &ndjson(5, 1000, now, "first"));
    ok(&ship(dir.path(), &server.url(), &["--init", "--once"]));
    let before = cursor_text(dir.path());
    import(dir.path(), &ndjson(5, 6000, now, "second"));

    let err = failed(&ship(dir.path(), "ftp://127.0.0.1:1", &["--once"]));
    assert!(
        err.contains("invalid ClickHouse URL") && err.contains("http://"),
        "{err}"
    );
    assert_eq!(cursor_text(dir.path()), before);

    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = failed(&ship(
        dir.path(),
        &format!("http://127.0.0.1:{closed}"),
        &["--once", "--retry-for", "1s"],
    ));
    assert!(
        err.contains("cannot reach ClickHouse at http://127.0.0.1"),
        "{err}"
    );
    assert_eq!(cursor_text(dir.path()), before);

    let err = failed(&ship(
        dir.path(),
        &server.url_as("shipper", "wrong-password"),
        &["--once"],
    ));
    assert!(
        err.contains("refused the credentials of user \"shipper\"")
            && !err.contains("wrong-password"),
        "{err}"
    );
    assert_eq!(cursor_text(dir.path()), before);

    server.query("RENAME TABLE logstore.logs TO logstore.logs_away");
    let err = failed(&ship(dir.path(), &server.url(), &["--once"]));
    assert!(
        err.contains("has no table") && err.contains("logstore ship --init"),
        "{err}"
    );
    assert_eq!(cursor_text(dir.path()), before);
    server.query("RENAME TABLE logstore.logs_away TO logstore.logs");

    // The new batch is ~700 KB of rows: the proxy cuts it after 64 KiB, every time.
    let proxy = cutting_proxy(server.http_port, 64 << 10);
    let err = failed(&ship(
        dir.path(),
        &format!("http://127.0.0.1:{proxy}"),
        &["--once", "--retry-for", "2s"],
    ));
    assert!(
        err.contains("went away during an insert of 6000 entries")
            && err.contains("gave up after retrying"),
        "{err}"
    );
    assert_eq!(cursor_text(dir.path()), before);

    // With everything right again, the same batch goes through, once.
    ok(&ship(
        dir.path(),
        &server.url_as("shipper", SHIPPER_PASSWORD),
        &["--once"],
    ));
    assert_ne!(cursor_text(dir.path()), before);
    assert_fleet_equals_store(dir.path(), &server);
}

#[test]
fn status_prints_the_lag_in_entries_and_seconds() {
    let Some(server) = server("ship_status") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let now = SystemClock.now_ms();
    import(dir.path(), &ndjson(3, 300, now - 5_000, "old"));
    let out = ok(&logstore(dir.path(), &["ship", "--status"]));
    assert!(
        out.contains("nothing shipped yet") && out.contains("lag: 300 entries"),
        "{out}"
    );
    ok(&ship(dir.path(), &server.url(), &["--init", "--once"]));
    let out = ok(&logstore(dir.path(), &["ship", "--status"]));
    assert!(
        out.contains("300 entries acknowledged") && out.contains("lag: 0 entries, 0.0 s"),
        "{out}"
    );
    import(dir.path(), &ndjson(3, 250, now - 40_000, "late"));
    let out = ok(&logstore(dir.path(), &["ship", "--status"]));
    let lag = out.lines().find(|l| l.starts_with("lag: ")).unwrap();
    let secs: f64 = lag
        .trim_start_matches("lag: 250 entries, ")
        .trim_end_matches(" s")
        .parse()
        .unwrap_or_else(|_| panic!("{out}"));
    assert!((40.0..120.0).contains(&secs), "{out}");
}

#[test]
fn gc_refuses_a_day_the_shipper_has_not_finished() {
    let Some(server) = server("ship_gc") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Four days, ending three days ago.
    let today = SystemClock.now_ms().div_euclid(DAY_MS) * DAY_MS + DAY_MS / 2;
    let clock = ManualClock::new(today - 6 * DAY_MS);
    for d in 0..4 {
        let store = LogStore::open_with(dir.path(), common::manual(&clock)).unwrap();
        store
            .append(&common::entry(&format!("d{d}"), clock.now_ms(), "x"))
            .unwrap();
        drop(store);
        clock.advance(DAY_MS);
    }
    // Before any shipping there is no cursor: gc works as it always did.
    // (Nothing is deleted here: keep 10 days.)
    ok(&logstore(dir.path(), &["gc", "--keep-days", "10"]));
    ok(&ship(dir.path(), &server.url(), &["--init", "--once"]));
    // The newest day may still grow, so it is not finished: days through the third are.
    let err = failed(&logstore(dir.path(), &["gc", "--keep-days", "0"]));
    assert!(
        err.contains("has not shipped yet") && err.contains("gc --force"),
        "{err}"
    );
    assert_eq!(executions(dir.path()).len(), 4, "nothing deleted");
    // Keeping the newest day, the three shipped ones go.
    let out = ok(&logstore(dir.path(), &["gc", "--keep-days", "3"]));
    assert_eq!(
        out.lines().filter(|l| l.starts_with("deleted")).count(),
        3,
        "{out}"
    );
    let out = ok(&logstore(
        dir.path(),
        &["gc", "--keep-days", "0", "--force"],
    ));
    assert_eq!(
        out.lines().filter(|l| l.starts_with("deleted")).count(),
        1,
        "{out}"
    );
}

#[test]
fn torture_sigkills_and_server_restarts_lose_and_duplicate_nothing() {
    let Some(mut server) = server("ship_torture") else {
        return;
    };
    let kills: u32 = std::env::var("LOGSTORE_SHIP_TORTURE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let seed: u64 = std::env::var("LOGSTORE_SHIP_TORTURE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("ship torture: {kills} kills, seed {seed} (LOGSTORE_SHIP_TORTURE_SEED={seed} replays the choices)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().unwrap();
    import(dir.path(), &ndjson(40, 400, 1_795_600_000_000, "before"));
    ok(&ship(dir.path(), &server.url(), &["--init", "--once"]));
    let stop = Arc::new(AtomicBool::new(false));
    let (mut engine_proc, feeder) = engine(dir.path(), 2_000, Arc::clone(&stop), |n| {
        LogEntry::new(
            id(&format!("t{}", n % 40)),
            NOON + i64::try_from(n).unwrap(),
            Level::Info,
            "worker",
            format!("entry {n}"),
        )
    });
    let mut restarts = 0;
    let mut progress = Vec::new();
    for k in 0..kills {
        let batch = rng.u32(50..4000).to_string();
        let mut shipper = common::logstore(dir.path())
            .args([
                "ship",
                "--clickhouse",
                &server.url(),
                "--node",
                "n1",
                "--batch-entries",
                &batch,
                "--batch-delay",
                "20ms",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if k % 8 == 7 {
            // The server goes away under a running shipper and comes back.
            std::thread::sleep(Duration::from_millis(rng.u64(50..300)));
            // Crashes, and one clean shutdown (which waits ~15 s for the shipper's connection).
            if restarts != 1 {
                server.kill();
            } else {
                server.stop();
            }
            std::thread::sleep(Duration::from_millis(rng.u64(100..800)));
            server.start_again();
            restarts += 1;
        }
        std::thread::sleep(Duration::from_millis(rng.u64(20..600)));
        kill9(&mut shipper);
        if let Ok(Some(c)) = Cursor::load(dir.path()) {
            progress.push(c.shipped);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let written = feeder.join().unwrap();
    assert!(engine_proc.wait().unwrap().success());
    // Catch up, then compare.
    ok(&ship(dir.path(), &server.url(), &["--once"]));
    eprintln!("ship torture: {written} entries written, {kills} shipper kills, {restarts} server restarts, cursor progress {progress:?}");
    assert!(restarts >= 4);
    assert!(
        progress.windows(2).filter(|w| w[1] > w[0]).count() >= usize::try_from(kills / 3).unwrap(),
        "the shipper made progress between kills: {progress:?}"
    );
    let total: usize = executions(dir.path())
        .iter()
        .map(|e| local(dir.path(), e).len())
        .sum();
    assert_eq!(u64::try_from(total).unwrap(), written + 400);
    assert_fleet_equals_store(dir.path(), &server);
}

fn shipper(dir: &Path, server: &Server, batch: usize) -> Shipper {
    let mut config = ShipConfig::new(&server.url());
    config.node = "n1".to_owned();
    config.max_batch_entries = batch;
    Shipper::open(dir, config).unwrap()
}

/// A day sealed while it is being shipped: the shipper goes on from the sealed file without
/// sending again what it sent from the live-layout files; after a crash, its cursor's floor skips all
/// but at most one flush batch of it, and FINAL still shows every entry once.
#[test]
fn a_day_sealed_mid_ship_is_shipped_once() {
    let Some(server) = server("ship_sealed") else {
        return;
    };
    for crash in [false, true] {
        server.query("DROP TABLE IF EXISTS logstore.logs");
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(NOON);
        let store = LogStore::open_with(dir.path(), common::manual(&clock)).unwrap();
        for i in 0..3000 {
            store
                .append(&common::entry(
                    &format!("x{}", i % 10),
                    NOON + i,
                    &format!("line {i}"),
                ))
                .unwrap();
        }
        store.flush(logstore::Durability::Written).unwrap();
        let mut s = shipper(dir.path(), &server, 500);
        s.init().unwrap();
        for _ in 0..3 {
            assert!(s.ship_one().unwrap().is_some());
        }
        // A crash forgets everything but the cursor file.
        let mut s = if crash {
            drop(s);
            None
        } else {
            Some(s)
        };
        // The day rolls and is sealed: its live-layout files are deleted.
        clock.advance(DAY_MS);
        store
            .append(&common::entry("x0", NOON + DAY_MS, "next day"))
            .unwrap();
        store.flush(logstore::Durability::Written).unwrap();
        let sealed = store.seal().unwrap();
        assert_eq!(sealed.len(), 1);
        assert!(!dir.path().join("segments/2026-11-25.000001.log").exists());
        let mut s = s
            .take()
            .unwrap_or_else(|| shipper(dir.path(), &server, 500));
        let shipped = s.ship_available().unwrap();
        drop(store);
        assert_fleet_equals_store(dir.path(), &server);
        let raw = server.raw_rows();
        if crash {
            // The cursor's floor (every entry numbered below it was shipped) skips what was
            // sent from the segment, less at most one flush batch (100 entries here), sent
            // again and collapsed by FINAL.
            assert!((1501..=1601).contains(&shipped.entries), "{shipped:?}");
            assert_eq!(raw, 1500 + shipped.entries);
        } else {
            // Only the rest of the day, then the next day.
            assert_eq!(shipped.entries, 1501, "{shipped:?}");
            assert_eq!(raw, 3001, "nothing sent twice");
        }
        let c = Cursor::load(dir.path()).unwrap().unwrap();
        assert_eq!(c.done_through.as_deref(), Some("2026-11-25"));
    }
}

/// Today in parts is shipped during the day, part by part, while segments roll, parts merge
/// and the day ends in one sealed file: every entry reaches ClickHouse once (raw rows, not
/// only FINAL), with the keys a local dump gives.
#[test]
fn today_in_parts_ships_during_the_day_and_once() {
    let Some(server) = server("ship_parts") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let config = logstore::Config {
        part_bytes: 4096,
        ..common::manual(&clock)
    };
    let store = LogStore::open_with(dir.path(), config).unwrap();
    let mut s = shipper(dir.path(), &server, 400);
    s.init().unwrap();
    let mut written = 0u64;
    let mut shipped = 0u64;
    let mut segments = 0u64;
    for round in 0..6 {
        for i in 0..800 {
            store
                .append(&common::entry(
                    &format!("x{}", i % 7),
                    NOON + round * 1000 + i,
                    &format!("round {round} line {i}"),
                ))
                .unwrap();
        }
        written += 800;
        store.flush(logstore::Durability::Written).unwrap();
        // Closed segments become parts (and merge past 8).
        store.seal().unwrap();
        let got = s.ship_available().unwrap().entries as u64;
        shipped += got;
        assert!(got > 0, "round {round}: today's parts were not shipped");
        segments = segments.max(highest_segment(dir.path()));
        // Everything is shipped, the open segment included (read live after the parts).
        let final_rows = server.query("SELECT count() FROM logstore.logs FINAL");
        assert_eq!(final_rows.trim(), written.to_string(), "round {round}");
    }
    // The day ends: its last segment becomes a part, then the parts one sealed file.
    clock.advance(DAY_MS);
    store
        .append(&common::entry("x0", NOON + DAY_MS, "next day"))
        .unwrap();
    store.flush(logstore::Durability::Written).unwrap();
    store.seal().unwrap();
    shipped += s.ship_available().unwrap().entries as u64;
    drop(store);
    assert_fleet_equals_store(dir.path(), &server);
    // A segment shipped live and then read again as a part sends again only what its floor
    // cannot tell apart: at most the last flush batch (100 entries here) read from it.
    let doubled = shipped - (written + 1);
    eprintln!("today in parts: {written} entries in {segments} segments, {doubled} sent twice");
    assert!(doubled <= segments * 100, "{doubled} sent twice");
}

/// The highest segment number in the store's file names (`YYYY-MM-DD.NNNNNN.*`).
fn highest_segment(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.split('.').nth(1)?.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0)
}

/// A store written before sequence numbers and shipped under the old row key (no `seq`
/// column; key `(execution_id, day, node, ordinal)`), then upgraded: `ship --init` migrates the
/// table, and shipping the whole store again from scratch (the worst case: no cursor) doubles
/// nothing, old entries or new.
#[test]
fn a_table_shipped_under_the_old_key_migrates_without_doubling() {
    let Some(server) = server("ship_migrate") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The old store: one version-1 segment of a past day (frames of the old scheme).
    let day = logstore::Day::from_unix_ms(NOON - DAY_MS);
    let segs = dir.path().join("segments");
    std::fs::create_dir_all(&segs).unwrap();
    let mut seg = b"LOGSTSEG\x01\0\0\0\0\0\0\0".to_vec();
    let mut old: Vec<LogEntry> = Vec::new();
    for i in 0..300i64 {
        let e = common::entry(
            &format!("old{}", i % 3),
            NOON - DAY_MS + i,
            &format!("before numbers {i}"),
        );
        logstore::format::encode(&e, &mut seg).unwrap();
        old.push(e);
    }
    std::fs::write(segs.join(format!("{day}.000001.log")), &seg).unwrap();
    // The table as the old shipper created it, holding what it shipped: every old entry under
    // its old key (its position among its execution's entries of the day).
    server.query("CREATE DATABASE IF NOT EXISTS logstore");
    server.query(
        "CREATE TABLE logstore.logs (node String, day Date, execution_id String, ordinal UInt32, \
         timestamp_ms Int64, Timestamp DateTime MATERIALIZED toDateTime(intDiv(timestamp_ms, 1000)), \
         SeverityText String, SeverityNumber UInt8, source String, task_id String, Body String, \
         Attributes String) ENGINE = ReplacingMergeTree() PARTITION BY day \
         ORDER BY (execution_id, day, node, ordinal)",
    );
    let mut values = Vec::new();
    let mut ordinal = std::collections::HashMap::new();
    for e in &old {
        let n = ordinal.entry(e.execution_id.clone()).or_insert(0u32);
        values.push(format!(
            "('n1', '{day}', '{}', {n}, {}, 'INFO', 9, '{}', '', '{}', '')",
            e.execution_id.as_str(),
            e.timestamp,
            e.source,
            e.message
        ));
        *n += 1;
    }
    server.query(&format!(
        "INSERT INTO logstore.logs (node, day, execution_id, ordinal, timestamp_ms, SeverityText, \
         SeverityNumber, source, task_id, Body, Attributes) VALUES {}",
        values.join(", ")
    ));
    assert_eq!(server.raw_rows(), 300);

    // The upgrade: the new writer opens the old store (and seals its past day), new entries
    // get numbers.
    let store = LogStore::open(dir.path()).unwrap();
    store.seal().unwrap();
    for i in 0..200i64 {
        store
            .append(&common::entry(
                &format!("old{}", i % 3),
                SystemClock.now_ms() + i,
                &format!("numbered {i}"),
            ))
            .unwrap();
    }
    store.flush(logstore::Durability::Synced).unwrap();
    drop(store);
    // A shipper of the new version refuses the old table until it is migrated.
    let refused = failed(&ship(dir.path(), &server.url(), &["--once"]));
    assert!(refused.contains("column seq"), "{refused}");
    ok(&ship(dir.path(), &server.url(), &["--init", "--once"]));
    // Shipped again from nothing: no cursor, every entry sent.
    std::fs::remove_file(Cursor::path(dir.path())).unwrap();
    ok(&ship(dir.path(), &server.url(), &["--once"]));
    assert_fleet_equals_store(dir.path(), &server);
    assert_eq!(
        server
            .query("SELECT count() FROM logstore.logs_before_seq")
            .trim(),
        "300",
        "the old table is kept"
    );
    // Old entries kept their old keys (seq 0); new ones are keyed by their numbers.
    let by_kind = server.query(
        "SELECT countIf(seq = 0), countIf(seq > 0 AND ordinal = 0) FROM logstore.logs FINAL",
    );
    assert_eq!(
        by_kind.split_whitespace().collect::<Vec<_>>(),
        ["300", "200"]
    );
}

/// Two executions whose ids share a 64-bit FNV-1a hash (the index key), interleaved on one day
/// with small segments, shipped while segments become parts and merge, then the day sealed and
/// the whole store shipped again without a cursor: every entry once, each execution exactly
/// its own. (With the old key, the live layout counted ordinals per hash and the sealed one
/// per execution, so such a pair was shipped twice.) The pair was found offline by a cycle
/// search over `x -> fnv1a(id(x))`; the test checks it collides.
/// Two execution ids with the same FNV-1a 64 (0x20c1a1b61e4a3f1a).
const COLLIDING: (&str, &str) = ("cxn5i4vxiiy0bm", "cogjvvhpsf5q0i");

#[test]
fn two_executions_on_one_hash_ship_exactly_once() {
    const A: &str = COLLIDING.0;
    const B: &str = COLLIDING.1;
    assert_ne!(A, B);
    assert_eq!(
        logstore::format::exec_hash(A),
        logstore::format::exec_hash(B)
    );
    let Some(server) = server("ship_collision") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let config = logstore::Config {
        part_bytes: 4096,
        ..common::manual(&clock)
    };
    let store = LogStore::open_with(dir.path(), config).unwrap();
    let mut s = shipper(dir.path(), &server, 150);
    s.init().unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..1200i64 {
        let (exec, list) = if i % 3 == 0 { (B, &mut b) } else { (A, &mut a) };
        let e = common::entry(exec, NOON + i, &format!("{exec} line {i}"));
        store.append(&e).unwrap();
        list.push(e);
        if i == 39 {
            // While the day is one live segment: shipped from the segment, whose reader
            // counted positions per hash under the old key.
            store.flush(logstore::Durability::Written).unwrap();
            assert_eq!(s.ship_available().unwrap().entries, 40);
        }
        if i % 200 == 199 {
            store.flush(logstore::Durability::Written).unwrap();
            store.seal().unwrap();
            s.ship_available().unwrap();
        }
    }
    assert_eq!(common::all_of(&store, A), a);
    assert_eq!(common::all_of(&store, B), b);
    // The day ends and is sealed; then everything is sent again from scratch.
    clock.advance(DAY_MS);
    store
        .append(&common::entry(A, NOON + DAY_MS, "next day"))
        .unwrap();
    a.push(common::entry(A, NOON + DAY_MS, "next day"));
    store.flush(logstore::Durability::Written).unwrap();
    store.seal().unwrap();
    s.ship_available().unwrap();
    drop(s);
    drop(store);
    std::fs::remove_file(Cursor::path(dir.path())).unwrap();
    let mut again = shipper(dir.path(), &server, 150);
    again.ship_available().unwrap();
    assert_eq!(remote(&server.url(), A), a);
    assert_eq!(remote(&server.url(), B), b);
    // (Not `assert_fleet_equals_store`: `list` aggregates by hash and shows such a pair as one
    // execution, a bug of its own that this test found; see the closing note of issue 17.)
    let rows = server.query("SELECT count() FROM logstore.logs FINAL WHERE node = 'n1'");
    assert_eq!(rows.trim(), (a.len() + b.len()).to_string());
}

/// A power cut takes back entries that were flushed (not fsynced) and already shipped: the
/// entries the writer stores next get new numbers (never the lost ones'), and the shipper, whose
/// cursor had gone past the end the segment now has, ships them all, once.
#[test]
fn a_power_cut_after_shipping_loses_and_doubles_nothing_that_follows() {
    let Some(server) = server("ship_power_cut") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), common::manual(&clock)).unwrap();
    let mut kept = Vec::new();
    for i in 0..50 {
        let e = common::entry("p", NOON + i, &format!("synced {i}"));
        store.append(&e).unwrap();
        kept.push(e);
    }
    store.flush(logstore::Durability::Synced).unwrap();
    let seg = common::last_segment(dir.path());
    let synced_len = std::fs::metadata(&seg).unwrap().len();
    let mut lost = Vec::new();
    for i in 0..30 {
        let e = common::entry("p", NOON + 100 + i, &format!("lost {i}"));
        store.append(&e).unwrap();
        lost.push(e);
    }
    store.flush(logstore::Durability::Written).unwrap();
    let mut s = shipper(dir.path(), &server, 1000);
    s.init().unwrap();
    assert_eq!(s.ship_available().unwrap().entries, 80);
    drop(s);
    drop(store);
    // The power cut: the unsynced records never reached the disk.
    common::truncate(&seg, synced_len);
    let store = LogStore::open_with(dir.path(), common::manual(&clock)).unwrap();
    let mut fresh = Vec::new();
    for i in 0..30 {
        let e = common::entry("p", NOON + 200 + i, &format!("after {i}"));
        store.append(&e).unwrap();
        fresh.push(e);
    }
    store.flush(logstore::Durability::Synced).unwrap();
    let local_now = common::all_of(&store, "p");
    assert_eq!(local_now, [kept.clone(), fresh.clone()].concat());
    drop(store);
    let mut s = shipper(dir.path(), &server, 1000);
    s.ship_available().unwrap();
    // ClickHouse keeps the lost entries it was sent (they existed once), and has every entry of
    // the store exactly once, the ones after the cut included.
    let remote_now = remote(&server.url(), "p");
    assert_eq!(remote_now, [kept, lost, fresh].concat());
}
