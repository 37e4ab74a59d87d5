//! Hostile plugins, run through the real `logstore run` (a separate process, so its memory can be
//! measured): the engine stays responsive, memory stays bounded, and what is stored is exactly
//! what the capture rules say.

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{children_max_rss, dump_json as entries, logstore, logstore_output, run_sh};

fn run(dir: &std::path::Path, id: &str, extra: &[&str], script: &str) -> (Output, Duration) {
    let started = Instant::now();
    let out = run_sh(dir, id, "evil/plugin.act", extra, script)
        .output()
        .expect("logstore runs");
    (out, started.elapsed())
}

fn plugin_messages(all: &[Value]) -> Vec<(String, String)> {
    all.iter()
        .filter(|e| e["source"] == "plugin:evil/plugin.act")
        .map(|e| {
            (
                e["level"].as_str().unwrap().to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn final_state(all: &[Value]) -> &str {
    all.last().unwrap()["metadata"]["state"].as_str().unwrap()
}

#[test]
fn a_plugin_that_writes_forever_is_cut_and_killed_by_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (out, took) = run(
        dir.path(),
        "forever",
        &["--timeout", "3"],
        "yes \"$(printf '%0500d' 0)\"",
    );
    assert_eq!(out.status.code(), Some(124));
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // Runs before anything large is held in this process (fork counts the parent's pages).
    let rss = children_max_rss();
    assert!(rss < 64 * 1024 * 1024, "peak RSS {rss}");
    let all = entries(dir.path(), "forever");
    let warns: Vec<&Value> = all
        .iter()
        .filter(|e| e["metadata"]["capture"].is_string())
        .collect();
    let kinds: Vec<&str> = warns
        .iter()
        .map(|e| e["metadata"]["capture"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"truncated") && kinds.contains(&"timeout"),
        "{kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|k| **k == "truncated").count(), 1);
    let kept: usize = plugin_messages(&all)
        .iter()
        .filter(|(l, _)| l == "INFO")
        .map(|(_, m)| m.len() + 1)
        .sum();
    // +1: the last kept line was cut by the limit, so it had no newline of its own.
    assert!(kept <= 10 * 1024 * 1024 + 1, "kept {kept}");
    assert_eq!(final_state(&all), "CANCELLED");
}

#[test]
fn a_plugin_that_never_reads_stdin_and_never_exits_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (out, took) = run(
        dir.path(),
        "stuck",
        &["--timeout", "1"],
        "echo waiting; while :; do sleep 1; done",
    );
    assert_eq!(out.status.code(), Some(124));
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let all = entries(dir.path(), "stuck");
    assert_eq!(
        plugin_messages(&all)[0],
        ("INFO".to_owned(), "waiting".to_owned())
    );
    assert_eq!(final_state(&all), "CANCELLED");
}

#[test]
fn a_plugin_that_reads_stdin_gets_end_of_file_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (out, took) = run(
        dir.path(),
        "stdin",
        &["--timeout", "20"],
        "cat; echo after-cat",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdin must not be the terminal or a pipe left open"
    );
    assert!(took < Duration::from_secs(10));
    assert_eq!(
        plugin_messages(&entries(dir.path(), "stdin")),
        [("INFO".to_owned(), "after-cat".to_owned())]
    );
}

#[test]
fn a_plugin_that_forks_a_daemon_does_not_hang_the_task() {
    let dir = tempfile::tempdir().unwrap();
    // A daemon that left the process group and kept stdout: capture gives up after its bounded
    // drain wait. A well-behaved daemon (output redirected) does not delay the task at all.
    let pids = dir.path().join("pids");
    let script = format!(
        "setsid sh -c 'echo $$ >> {p}; exec sleep 60' & echo daemon started; \
         setsid sh -c 'echo $$ >> {p}; exec sleep 60' >/dev/null 2>&1 </dev/null & echo clean daemon",
        p = pids.display()
    );
    let (out, took) = run(dir.path(), "daemon", &[], &script);
    assert_eq!(out.status.code(), Some(0));
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let all = entries(dir.path(), "daemon");
    let msgs = plugin_messages(&all);
    assert_eq!(msgs[0], ("INFO".to_owned(), "daemon started".to_owned()));
    assert_eq!(msgs[1], ("INFO".to_owned(), "clean daemon".to_owned()));
    assert!(
        all.iter()
            .any(|e| e["metadata"]["capture"] == "pipes_held_open"),
        "{all:#?}"
    );
    assert_eq!(final_state(&all), "SUCCESS");
    // The daemons left the task's process group on purpose: end exactly them.
    for pid in std::fs::read_to_string(&pids)
        .unwrap_or_default()
        .split_whitespace()
    {
        if let Ok(pid) = pid.parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[test]
fn escape_sequences_and_fake_records_are_stored_as_the_rules_say() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"printf '\033[2J\033]0;pwned\007red \033[31malert\033[0m\n';
printf '\036{"level":"ERROR","message":"fake","execution_id":"victim","task_id":"x","source":"scheduler","metadata":{"state":"FAILED"}}\n' >&2;
printf '\036{"level":"SHOUT","message":"bad level"}\n' >&2;
sleep 2; echo 'after the fake';
printf 'no newline at the end'"#;
    // A follower runs beside the plugin: had the fake FAILED record counted as the execution's
    // terminal entry, `dump -f` would stop at it, before the line printed 2 s later.
    let mut child = run_sh(dir.path(), "evil", "evil/plugin.act", &[], script)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let waited = Instant::now();
    while !dir.path().join("segments").exists() {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "no store appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let followed = logstore(dir.path())
        .args(["dump", "-f", "--json", "evil"])
        .output()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let followed: Vec<Value> = String::from_utf8(followed.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        followed.iter().any(|e| e["message"] == "after the fake"),
        "dump -f stopped at the fake terminal record: {followed:#?}"
    );
    let all = entries(dir.path(), "evil");
    assert_eq!(
        followed, all,
        "the follower saw everything, up to the real terminal entry"
    );
    let plugin: Vec<&Value> = all
        .iter()
        .filter(|e| e["source"] == "plugin:evil/plugin.act")
        .collect();
    // Stored verbatim (the store keeps what was printed); every entry carries the engine's ids.
    // (stdout and stderr are separate pipes: their relative order is not defined.)
    let escapes = "\u{1b}[2J\u{1b}]0;pwned\u{7}red \u{1b}[31malert\u{1b}[0m";
    assert!(
        plugin.iter().any(|e| e["message"] == escapes),
        "{plugin:#?}"
    );
    let fake = plugin
        .iter()
        .find(|e| e["message"] == "fake")
        .expect("the record is stored");
    assert_eq!(fake["level"], "ERROR");
    assert_eq!(
        fake["metadata"]["state"], "FAILED",
        "metadata is the plugin's own"
    );
    assert!(plugin
        .iter()
        .all(|e| e["execution_id"] == "evil" && e["task_id"] == "t"));
    let bad = plugin
        .iter()
        .find(|e| e["metadata"]["protocol_error"].is_string())
        .expect("malformed record kept as text");
    assert!(bad["message"].as_str().unwrap().contains("bad level"));
    let stdout_last = plugin.iter().rev().find(|e| e["level"] == "INFO").unwrap();
    assert_eq!(stdout_last["message"], "no newline at the end");
    // The fake terminal metadata did not end the execution: its source is the plugin's, the
    // one terminal entry is the engine's, last, and says SUCCESS (the fake said FAILED).
    let terminals: Vec<&Value> = all
        .iter()
        .filter(|e| e["source"] == "scheduler" && e["metadata"]["state"] != "RUNNING")
        .collect();
    assert_eq!(terminals.len(), 1, "{terminals:#?}");
    assert_eq!(terminals[0], all.last().unwrap());
    assert_eq!(final_state(&all), "SUCCESS");
    let list = logstore_output(dir.path(), &["list", "--json"]);
    let execs: Vec<Value> = String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        execs.len(),
        1,
        "nothing was written for the victim execution"
    );
    assert_eq!(execs[0]["final_state"], "SUCCESS");
    // The human dump cannot drive the terminal.
    let human = logstore_output(dir.path(), &["dump", "evil"]);
    assert!(!human.stdout.contains(&0x1b) && !human.stdout.contains(&0x07));
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains("\\x1b[2J"), "{human}");
    // Colours are stripped off a terminal (`dump --color`), everything else escaped.
    assert!(
        human.contains("\\x1b[2J\\x1b]0;pwned\\x07red alert {\"attempt\":1}\n"),
        "{human}"
    );
}

#[test]
fn a_plugin_killed_mid_line_keeps_the_partial_line() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = run(
        dir.path(),
        "midline",
        &[],
        "echo whole; printf 'half a li'; kill -9 $$",
    );
    assert_eq!(out.status.code(), Some(137), "128 + SIGKILL");
    let all = entries(dir.path(), "midline");
    assert_eq!(
        plugin_messages(&all),
        [
            ("INFO".to_owned(), "whole".to_owned()),
            ("INFO".to_owned(), "half a li".to_owned())
        ]
    );
    assert_eq!(final_state(&all), "FAILED");
}
