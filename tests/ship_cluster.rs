//! Shipping to a sharded ClickHouse cluster: two `clickhouse-server` processes on loopback (one
//! `remote_servers` config naming both as shards of `logs2`), `logs` a `Distributed` table over
//! each server's `logs_local`, inserts synchronous.
//!
//! `LOGSTORE_CLUSTER_TORTURE_KILLS=200 cargo test --release --test ship_cluster -- --nocapture`
//! runs a longer torture; `LOGSTORE_CLUSTER_TORTURE_SEED` replays one.

mod common;
#[path = "ship_support/clickhouse_server.rs"]
mod server;

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::ship::{engine, remote};
use common::{executions, id, kill9, local, ok};
use logstore::{Level, LogEntry, LogStore, ShipConfig, Shipper};
use server::Server;

const CLUSTER: &str = "logs2";

/// One cluster at a time: two clusters started at once by parallel tests could pick each
/// other's just-released ports, and one cluster's `remote_servers` would then name the other's
/// server.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cluster(test: &str) -> Option<(Vec<Server>, std::sync::MutexGuard<'static, ()>)> {
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    match Server::start_cluster(CLUSTER, 2) {
        Ok(s) => Some((s, turn)),
        Err(why) => {
            common::skip_or_fail(&format!(
                "{test}: cannot start a ClickHouse cluster: {why} (.ci/run installs clickhouse-server)"
            ));
            None
        }
    }
}

fn count(server: &Server, sql: &str) -> u64 {
    let n = server.query(sql);
    n.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {n:?}: {e}"))
}

fn shipper(dir: &Path, url: &str, node: &str, batch: u32) -> Child {
    common::logstore(dir)
        .args([
            "ship",
            "--clickhouse",
            url,
            "--cluster",
            CLUSTER,
            "--node",
            node,
            "--batch-entries",
            &batch.to_string(),
            "--batch-delay",
            "20ms",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Entry `n` of the engine writing executions `{prefix}{0..20}`: every level, a task on every
/// third entry, text that needs escaping.
fn cluster_entry(prefix: &'static str) -> impl Fn(u64) -> LogEntry + Send + 'static {
    move |n| {
        let mut e = LogEntry::new(
            id(&format!("{prefix}{}", n % 20)),
            1_795_608_000_000 + i64::try_from(n).unwrap(),
            Level::ALL[usize::try_from(n % 4).unwrap()],
            "plugin:acme/step.run",
            format!("entry {n} of {prefix}: it's a \\ test"),
        );
        if n.is_multiple_of(3) {
            e.task_id = Some(logstore::TaskId::new(format!("t{}", n % 5)).unwrap());
        }
        e
    }
}

/// `--init` against each server creates its shard table and the Distributed table; the layout
/// is then checked by the shipper and by `dump --cluster`.
fn init_everywhere(servers: &[Server], dir: &Path) {
    drop(LogStore::open(dir).unwrap());
    let mut shippers: Vec<Shipper> = servers
        .iter()
        .map(|s| {
            let mut config = ShipConfig::new(&s.url());
            config.cluster = Some(CLUSTER.to_owned());
            config.node = "init".to_owned();
            config.retry_for = Some(Duration::from_secs(10));
            Shipper::open(dir, config).unwrap()
        })
        .collect();
    for s in &mut shippers {
        s.init().unwrap();
    }
    // Only once every shard has its table does a read through the Distributed one work.
    for s in &mut shippers {
        s.check(None).unwrap();
    }
}

#[test]
fn three_stores_ship_to_two_shards_through_kills_and_a_shard_restart() {
    let Some((mut servers, _turn)) = cluster("ship_cluster_torture") else {
        return;
    };
    let kills: u32 = std::env::var("LOGSTORE_CLUSTER_TORTURE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let seed: u64 = std::env::var("LOGSTORE_CLUSTER_TORTURE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("cluster torture: {kills} kills, seed {seed} (LOGSTORE_CLUSTER_TORTURE_SEED={seed} replays the choices)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    init_everywhere(&servers, dirs[0].path());
    let urls: Vec<String> = servers.iter().map(Server::url).collect();
    // Store k ships through shard k % 2; it is read back through the other one.
    let entry_url = |k: usize| urls[k % 2].clone();
    let other_url = |k: usize| urls[(k + 1) % 2].clone();
    let prefixes = ["a", "b", "c"];
    let nodes = ["n0", "n1", "n2"];
    let stop = Arc::new(AtomicBool::new(false));
    let engines: Vec<_> = (0..3)
        .map(|k| {
            engine(
                dirs[k].path(),
                400,
                Arc::clone(&stop),
                cluster_entry(prefixes[k]),
            )
        })
        .collect();
    let mut shippers: Vec<Child> = (0..3)
        .map(|k| shipper(dirs[k].path(), &entry_url(k), nodes[k], rng.u32(50..2000)))
        .collect();
    let mut shard_restarts = 0;
    for k in 0..kills {
        std::thread::sleep(Duration::from_millis(rng.u64(50..500)));
        let victim = rng.usize(..3);
        kill9(&mut shippers[victim]);
        if k == kills / 2 {
            // A shard crashes under running shippers (inserts through either server need it)
            // and comes back.
            servers[1].kill();
            std::thread::sleep(Duration::from_millis(rng.u64(300..1500)));
            servers[1].start_again();
            shard_restarts += 1;
        }
        shippers[victim] = shipper(
            dirs[victim].path(),
            &entry_url(victim),
            nodes[victim],
            rng.u32(50..2000),
        );
    }
    stop.store(true, Ordering::Relaxed);
    for s in &mut shippers {
        kill9(s);
    }
    let mut written = 0;
    for (mut child, feeder) in engines {
        written += feeder.join().unwrap();
        assert!(child.wait().unwrap().success());
    }
    // Catch up, each through its own entry server.
    for k in 0..3 {
        ok(&common::logstore_output(
            dirs[k].path(),
            &[
                "ship",
                "--clickhouse",
                &entry_url(k),
                "--cluster",
                CLUSTER,
                "--node",
                nodes[k],
                "--once",
            ],
        ));
    }
    eprintln!("cluster torture: {written} entries written by 3 stores, {kills} shipper kills, {shard_restarts} shard restart");
    assert_eq!(shard_restarts, 1);
    let mut total = 0u64;
    for k in 0..3 {
        let dir = dirs[k].path();
        let mut store_total = 0u64;
        for exec in executions(dir) {
            let (l, r) = (local(dir, &exec), remote(&other_url(k), &exec));
            assert_eq!(l.len(), r.len(), "store {k}, execution {exec}: count");
            assert!(l == r, "store {k}, execution {exec}: content differs");
            store_total += u64::try_from(l.len()).unwrap();
        }
        let sql = format!(
            "SELECT count() FROM logstore.logs FINAL WHERE node = '{}'",
            nodes[k]
        );
        // FINAL counts, through either server, add up to the store's entries.
        for s in &servers {
            assert_eq!(count(s, &sql), store_total, "store {k} through {}", s.url());
        }
        total += store_total;
    }
    assert_eq!(total, written);
    assert_eq!(
        count(&servers[0], "SELECT count() FROM logstore.logs FINAL"),
        total
    );
    // Both shards hold rows, and no execution's rows are on both (sharded by its id).
    let shard_rows: Vec<u64> = servers
        .iter()
        .map(|s| count(s, "SELECT count() FROM logstore.logs_local"))
        .collect();
    assert!(shard_rows.iter().all(|&n| n > 0), "{shard_rows:?}");
    let on_shard = |s: &Server| -> std::collections::BTreeSet<String> {
        s.query("SELECT DISTINCT execution_id FROM logstore.logs_local")
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let (first, second) = (on_shard(&servers[0]), on_shard(&servers[1]));
    assert!(
        first.is_disjoint(&second),
        "an execution's rows are on one shard: {:?}",
        first.intersection(&second).collect::<Vec<_>>()
    );
    // The local dump and `dump --clickhouse ... --cluster` print the same bytes.
    let exec = executions(dirs[2].path()).into_iter().next().unwrap();
    let here = ok(&common::logstore_output(dirs[2].path(), &["dump", &exec]));
    let there = ok(&common::logstore_output(
        dirs[2].path(),
        &[
            "dump",
            "--clickhouse",
            &other_url(2),
            "--cluster",
            CLUSTER,
            &exec,
        ],
    ));
    assert_eq!(here, there);
}

#[test]
fn a_cluster_layout_is_checked_before_anything_is_sent() {
    let Some((servers, _turn)) = cluster("ship_cluster_checks") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    ok(&common::logstore_with_stdin(
        dir.path(),
        &["import"],
        &format!(
            "{}\n",
            serde_json::to_string(&LogEntry::new(id("x"), 1, Level::Info, "w", "m")).unwrap()
        ),
    ));
    let url = servers[0].url();
    let ship = |extra: &[&str]| {
        let mut args = vec!["ship", "--clickhouse", &url, "--node", "n1", "--once"];
        args.extend_from_slice(extra);
        common::logstore_output(dir.path(), &args)
    };
    let failed = |out: Output| {
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    // A cluster the servers do not know.
    let err = failed(ship(&["--cluster", "nope", "--init"]));
    assert!(
        err.contains("no cluster nope in its remote_servers"),
        "{err}"
    );
    // A plain table from shipping to one server is not silently taken for the Distributed one.
    ok(&ship(&["--init"]));
    let err = failed(ship(&["--cluster", CLUSTER, "--init"]));
    assert!(
        err.contains("logstore.logs is a ReplacingMergeTree table") && err.contains("logs_local"),
        "{err}"
    );
    let err = failed(ship(&["--cluster", CLUSTER]));
    assert!(
        err.contains("Distributed table logstore.logs over cluster logs2"),
        "{err}"
    );
    let err = failed(common::logstore_output(
        dir.path(),
        &["dump", "--clickhouse", &url, "--cluster", CLUSTER, "x"],
    ));
    assert!(err.contains("is a ReplacingMergeTree table"), "{err}");
    // Nothing was sent under the wrong layout's name: the cursor holds only the plain ship.
    assert_eq!(count(&servers[0], "SELECT count() FROM logstore.logs"), 1);
}
