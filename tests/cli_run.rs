//! `logstore run` and `logstore demo` through the real binary, with real plugin processes.

use std::process::Command;

use serde_json::Value;

mod common;

use common::{children_max_rss, dump_json, logstore_output as logstore};

#[test]
fn run_captures_a_plugin_and_exits_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let script = "console.log('hello'); console.error('careful'); process.exit(7)";
    let out = logstore(
        dir.path(),
        &[
            "run",
            "--execution",
            "r1",
            "--task",
            "t",
            "--plugin",
            "ns/p.a",
            "--",
            "node",
            "-e",
            script,
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries = dump_json(dir.path(), "r1");
    let shape: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["level"].as_str().unwrap(),
                e["source"].as_str().unwrap(),
                e["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(shape[0].1, "scheduler");
    assert_eq!(shape[1].1, "worker");
    assert!(
        shape.contains(&("INFO", "plugin:ns/p.a", "hello")),
        "{shape:?}"
    );
    assert!(
        shape.contains(&("WARN", "plugin:ns/p.a", "careful")),
        "{shape:?}"
    );
    let last = entries.last().unwrap();
    assert_eq!(last["metadata"]["state"], "FAILED");
    assert_eq!(last["level"], "ERROR");
    assert!(last["message"].as_str().unwrap().contains("exit code 7"));
    assert!(entries.iter().all(|e| e["execution_id"] == "r1"));
}

#[test]
fn run_retries_a_failed_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let script = format!(
        "const fs=require('fs'); if (!fs.existsSync('{m}')) {{ fs.writeFileSync('{m}','1'); console.log('attempt one fails'); process.exit(1) }} console.log('attempt two works')",
        m = marker.display()
    );
    let out = logstore(
        dir.path(),
        &[
            "run",
            "--execution",
            "r2",
            "--plugin",
            "ns/p.a",
            "--retries",
            "2",
            "--",
            "node",
            "-e",
            &script,
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries = dump_json(dir.path(), "r2");
    let retries: Vec<&Value> = entries
        .iter()
        .filter(|e| e["metadata"]["event"] == "task_retry")
        .collect();
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0]["level"], "WARN");
    assert_eq!(retries[0]["metadata"]["attempt"], 2);
    assert_eq!(retries[0]["task_id"], "main");
    let starts = entries
        .iter()
        .filter(|e| e["metadata"]["event"] == "task_started")
        .count();
    assert_eq!(starts, 2);
    assert_eq!(entries.last().unwrap()["metadata"]["state"], "SUCCESS");
}

#[test]
fn run_timeout_cancels_the_execution() {
    let dir = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let out = logstore(
        dir.path(),
        &[
            "run",
            "--execution",
            "r3",
            "--plugin",
            "ns/p.a",
            "--timeout",
            "0.5",
            "--",
            "sh",
            "-c",
            "echo started; sleep 30",
        ],
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(124));
    let entries = dump_json(dir.path(), "r3");
    assert!(entries.iter().any(|e| e["message"] == "started"));
    let last = entries.last().unwrap();
    assert_eq!(last["metadata"]["state"], "CANCELLED");
    assert_eq!(last["level"], "WARN");
}

#[test]
fn run_without_an_id_makes_one_and_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = logstore(dir.path(), &["run", "--plugin", "ns/p.a", "--", "true"]);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let id = stderr
        .lines()
        .find_map(|l| l.strip_prefix("execution "))
        .expect("id printed on stderr");
    assert_eq!(
        dump_json(dir.path(), id).last().unwrap()["metadata"]["state"],
        "SUCCESS"
    );
}

#[test]
fn run_refuses_a_bad_plugin_id_before_running_anything() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let out = logstore(
        dir.path(),
        &[
            "run",
            "--plugin",
            "no-dot/here",
            "--",
            "touch",
            marker.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-dot/here"));
    assert!(!marker.exists());
}

#[test]
fn demo_runs_executions_and_dumps_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = logstore(dir.path(), &["demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for state in ["SUCCESS", "FAILED"] {
        assert!(stdout.contains(state), "{stdout}");
    }
    assert!(stdout.contains("plugin:acme/postgres.extract"), "{stdout}");
    let list = logstore(dir.path(), &["list", "--json"]);
    let execs: Vec<Value> = String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let docker_up = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    assert_eq!(execs.len(), if docker_up { 4 } else { 3 }, "{execs:?}");
    if !docker_up {
        common::skip_or_fail("demo's restricted-mode execution: no Docker engine answers");
    }
    let broken = execs
        .iter()
        .find(|e| e["execution_id"].as_str().unwrap().ends_with("-broken"))
        .unwrap();
    assert_eq!(broken["final_state"], "FAILED");
    let flaky = execs
        .iter()
        .find(|e| e["execution_id"].as_str().unwrap().ends_with("-flaky"))
        .unwrap();
    assert_eq!(flaky["final_state"], "SUCCESS");
    let verify = logstore(dir.path(), &["verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn capture_memory_stays_bounded_for_a_flood_and_a_huge_line() {
    // The bound covers every child this test binary has waited for (the demo's included), and
    // the runs come before anything big is held here: a child forked from a large parent
    // counts the parent's pages until it execs.
    const BOUND: u64 = 64 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let runs = [
        (
            "flood",
            "yes 'flood line of forty characters .......' | head -c 104857600",
        ),
        ("oneline", "head -c 52428800 /dev/zero | tr '\\0' x"),
    ];
    for (id, script) in runs {
        let out = logstore(
            dir.path(),
            &[
                "run",
                "--execution",
                id,
                "--plugin",
                "ns/p.a",
                "--",
                "sh",
                "-c",
                script,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rss = children_max_rss();
    assert!(
        rss < BOUND,
        "peak RSS {rss} bytes: capture of 150 MB of output is not bounded"
    );
    for (id, _) in runs {
        let count = logstore(dir.path(), &["dump", id]);
        let text = String::from_utf8_lossy(&count.stdout);
        let warn = text.lines().filter(|l| l.contains("truncated")).count();
        assert_eq!(warn, 1, "one truncation warning for {id}");
    }
}
