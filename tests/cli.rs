//! The `logstore` binary as operators and scripts use it: the real executable on real
//! directories, one test per promise of the command-line contract.
//!
//! Child processes: stdin is written from a separate thread while the output is collected, so
//! neither pipe can fill and deadlock; long-running children (`dump -f`) are held in a
//! [`KillOnDrop`] so that a failed assertion never leaves one behind.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use logstore::{
    CommitPolicy, Config, Day, Durability, Level, LogEntry, LogStore, ManualClock, TaskId,
};

const DAY_MS: i64 = 86_400_000;

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn ndjson(entries: &[LogEntry]) -> String {
    entries
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect()
}

fn import(dir: &Path, entries: &[LogEntry]) {
    let out = logstore_with_stdin(dir, &["import"], &ndjson(entries));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("stored {} entries\n", entries.len()));
}

/// The messages of `dump --json` output, in order.
fn messages(out: &Output) -> Vec<String> {
    assert!(out.status.success(), "{}", stderr(out));
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str::<LogEntry>(l).unwrap().message)
        .collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files
}

/// Days with a segment or a sealed file.
fn stored_days(dir: &Path) -> usize {
    let mut days: Vec<String> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let stem = name.strip_suffix(".log").or(name.strip_suffix(".sealed"))?;
            Some(stem.to_owned())
        })
        .collect();
    days.sort();
    days.dedup();
    days.len()
}

fn now_ms() -> i64 {
    logstore::Clock::now_ms(&logstore::SystemClock)
}

/// Kills and reaps the child when dropped, so a failing test leaves no process behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn import_then_dump_json_is_a_byte_exact_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let meta = serde_json::json!({"a": [1, 2.5, null], "nested": {"k": "v"}, "z": true})
        .as_object()
        .cloned()
        .unwrap();
    let mut entries = Vec::new();
    for (i, level) in Level::ALL.into_iter().enumerate() {
        let ts = NOON + i64::try_from(i).unwrap();
        let e = LogEntry::new(
            id("exec-1"),
            ts,
            level,
            "plugin:ns/p.a",
            format!("ünïcödé ✓ 日本 {level} \"quoted\" \\ tab\t"),
        );
        entries.push(match i {
            0 => e.with_task(TaskId::new("task-1").unwrap()),
            1 => e.with_metadata(meta.clone()),
            2 => e
                .with_task(TaskId::new("t:2").unwrap())
                .with_metadata(meta.clone()),
            _ => e,
        });
    }
    // A line as a script would write it, to pin the shape (not just our own serialization).
    let literal = r#"{"execution_id":"exec-1","timestamp":1795608000009,"level":"INFO","source":"scheduler","message":"done","metadata":{"state":"SUCCESS"}}"#;
    let input = ndjson(&entries) + literal + "\n";
    let out = logstore_with_stdin(dir.path(), &["import"], &input);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "stored 5 entries\n");

    let out = logstore_with_stdin(dir.path(), &["dump", "exec-1", "--json"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), input);
}

#[test]
fn import_stops_at_a_bad_line_keeping_the_lines_before() {
    let too_long = "x".repeat(logstore::MAX_MESSAGE_LEN + 1);
    let bad_lines = [
        ("not json", "expected"),
        (
            r#"{"execution_id":"bad id","timestamp":1,"level":"INFO","source":"s","message":"m"}"#,
            "execution_id",
        ),
        (
            r#"{"execution_id":"e","timestamp":1,"level":"info","source":"s","message":"m"}"#,
            "unknown variant",
        ),
        (
            r#"{"execution_id":"e","timestamp":1,"level":"INFO","source":"s","message":"m","extra":1}"#,
            "unknown field",
        ),
        (
            &format!(
                r#"{{"execution_id":"e","timestamp":1,"level":"INFO","source":"s","message":"{too_long}"}}"#
            ),
            "message is",
        ),
    ];
    for (bad, reason) in bad_lines {
        let dir = tempfile::tempdir().unwrap();
        let before = ndjson(&[
            entry("exec-1", NOON, "one"),
            entry("exec-1", NOON + 1, "two"),
        ]);
        let after = ndjson(&[entry("exec-2", NOON + 2, "after")]);
        // Lines: 1 and 2 good, 3 blank, 4 bad, 5 good.
        let input = format!("{before}\n{bad}\n{after}");
        let out = logstore_with_stdin(dir.path(), &["import"], &input);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let err = stderr(&out);
        assert!(err.starts_with("error: line 4: "), "{err}");
        assert!(err.contains(reason), "{err}");
        assert!(!err.contains("panicked"), "{err}");

        let dumped = logstore_with_stdin(dir.path(), &["dump", "exec-1", "--json"], "");
        assert_eq!(messages(&dumped), ["one", "two"]);
        let later = logstore_with_stdin(dir.path(), &["dump", "exec-2"], "");
        assert_eq!(later.status.code(), Some(1));
    }
}

#[test]
fn dump_of_an_unknown_execution_exits_1_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    import(dir.path(), &[entry("exec-1", NOON, "one")]);

    let out = logstore_with_stdin(dir.path(), &["dump", "nope"], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).starts_with("error: no entries stored for execution nope"),
        "{}",
        stderr(&out)
    );

    let out = logstore_with_stdin(dir.path(), &["dump", "no/pe"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(r#"invalid execution_id "no/pe""#));

    let missing = dir.path().join("missing");
    let out = logstore_with_stdin(&missing, &["dump", "exec-1"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a logstore directory"));
}

#[test]
fn human_output_escapes_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let meta = serde_json::json!({"k": "\u{9b}2J\u{7f}"})
        .as_object()
        .cloned()
        .unwrap();
    // A colour (SGR) is stripped off a terminal (`dump --color`); a screen clear is escaped.
    let e = entry("exec-1", NOON + 123, "\x1b[31mred\x1b[2J\rover\nnext")
        .with_task(TaskId::new("t1").unwrap())
        .with_metadata(meta);
    import(dir.path(), &[e]);

    let out = logstore_with_stdin(dir.path(), &["dump", "exec-1"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!out.stdout.contains(&0x1b), "raw ESC in {:?}", stdout(&out));
    assert!(!out.stdout.contains(&b'\r'));
    assert!(!stdout(&out).contains('\u{9b}'));
    assert_eq!(
        stdout(&out),
        "2026-11-25T12:00:00.123Z INFO  worker [t1] red\\x1b[2J\\rover\\nnext {\"k\":\"\\u{9b}2J\\x7f\"}\n"
    );
}

#[test]
fn dump_filters_by_level_task_source_time_and_tail() {
    let dir = tempfile::tempdir().unwrap();
    let a = TaskId::new("a").unwrap();
    let b = TaskId::new("b").unwrap();
    let x = id("exec-1");
    import(
        dir.path(),
        &[
            LogEntry::new(x.clone(), NOON, Level::Debug, "worker", "d0").with_task(a.clone()),
            LogEntry::new(x.clone(), NOON + 1000, Level::Info, "scheduler", "i1"),
            LogEntry::new(x.clone(), NOON + 2000, Level::Warn, "plugin:ns/p.a", "w2")
                .with_task(b.clone()),
            LogEntry::new(x.clone(), NOON + 3000, Level::Error, "plugin:ns/q.b", "e3").with_task(a),
            LogEntry::new(x, NOON + 4000, Level::Info, "worker", "i4").with_task(b),
        ],
    );
    let dump = |args: &[&str]| {
        let mut all = vec!["dump", "exec-1", "--json"];
        all.extend_from_slice(args);
        messages(&logstore_with_stdin(dir.path(), &all, ""))
    };
    assert_eq!(dump(&[]), ["d0", "i1", "w2", "e3", "i4"]);
    assert_eq!(dump(&["--level", "warn"]), ["w2", "e3"]);
    assert_eq!(dump(&["--level", "ERROR"]), ["e3"]);
    assert_eq!(dump(&["--task", "a"]), ["d0", "e3"]);
    assert_eq!(dump(&["--source", "plugin:"]), ["w2", "e3"]);
    assert_eq!(dump(&["--source", "plugin:ns/q"]), ["e3"]);
    assert_eq!(
        dump(&[
            "--since",
            "2026-11-25T12:00:01Z",
            "--until",
            "1795608003000"
        ]),
        ["i1", "w2"]
    );
    assert_eq!(
        dump(&["--since", "3650days"]),
        ["d0", "i1", "w2", "e3", "i4"]
    );
    assert_eq!(dump(&["--tail", "2"]), ["e3", "i4"]);
    assert_eq!(dump(&["-n", "1", "--level", "warn"]), ["e3"]);
    assert_eq!(
        dump(&["--task", "b", "--level", "info", "-n", "5"]),
        ["w2", "i4"]
    );

    let out = logstore_with_stdin(dir.path(), &["dump", "exec-1", "--since", "soon"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not a time"), "{}", stderr(&out));
    let out = logstore_with_stdin(dir.path(), &["dump", "exec-1", "--level", "fatal"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown level"), "{}", stderr(&out));
}

#[test]
fn list_shows_ids_counts_and_final_state() {
    let dir = tempfile::tempdir().unwrap();
    let old = NOON - 30 * DAY_MS;
    let mut failed = task_entry("exec-fail", "t1", old + 1, Level::Error, "boom");
    failed.source = "worker".into();
    import(
        dir.path(),
        &[
            entry("exec-ok", old, "one"),
            task_entry("exec-ok", "t1", old + 5, Level::Error, "oops"),
            terminal("exec-ok", old + 10, "SUCCESS"),
            failed,
            terminal("exec-fail", old + 20, "FAILED"),
            entry("exec-open", old + 30, "never finished"),
        ],
    );

    let out = logstore_with_stdin(dir.path(), &["list"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let cols = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        cols(lines[0]),
        ["EXECUTION", "FIRST", "LAST", "ENTRIES", "ERRORS", "STATE"]
    );
    assert_eq!(
        cols(lines[1]),
        [
            "exec-ok",
            "2026-10-26T12:00:00.000Z",
            "2026-10-26T12:00:00.010Z",
            "3",
            "1",
            "SUCCESS"
        ]
    );
    assert_eq!(cols(lines[2])[0], "exec-fail");
    assert_eq!(cols(lines[2])[3..], ["2", "1", "FAILED"]);
    assert_eq!(cols(lines[3])[0], "exec-open");
    assert_eq!(cols(lines[3])[3..], ["1", "0", "-"]);
    // The table is aligned: every ENTRIES cell ends in the same column as its header.
    let end = lines[0].find("ENTRIES").unwrap() + "ENTRIES".len();
    for l in &lines[1..] {
        assert_eq!(
            &l[end - 1..end],
            cols(l)[3].chars().last().unwrap().to_string()
        );
    }

    let out = logstore_with_stdin(dir.path(), &["list", "--json"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        rows[0],
        serde_json::json!({"execution_id": "exec-ok", "first_timestamp": old,
            "last_timestamp": old + 10, "entries": 3, "errors": 1, "final_state": "SUCCESS"})
    );
    assert_eq!(rows[2]["final_state"], serde_json::Value::Null);
}

#[test]
fn list_marks_a_recent_unfinished_execution_as_running() {
    let dir = tempfile::tempdir().unwrap();
    import(dir.path(), &[entry("exec-live", now_ms(), "working")]);
    let out = logstore_with_stdin(dir.path(), &["list"], "");
    assert!(stdout(&out).lines().nth(1).unwrap().ends_with("RUNNING?"));
}

#[test]
fn stats_reports_each_day_and_totals() {
    let dir = tempfile::tempdir().unwrap();
    import(
        dir.path(),
        &[
            entry("e1", NOON, "a"),
            entry("e2", NOON, "b"),
            entry("e1", NOON, "c"),
        ],
    );
    let out = logstore_with_stdin(dir.path(), &["stats", "--json"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let stats: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let days = stats["days"].as_array().unwrap();
    assert_eq!(days.len(), 1);
    let today = Day::from_unix_ms(now_ms()).to_string();
    assert_eq!(days[0]["day"], today.as_str());
    assert_eq!(days[0]["sealed"], false);
    assert_eq!(days[0]["entries"], 3);
    assert_eq!(days[0]["executions"], 2);
    let segment_len = std::fs::metadata(&segment_files(dir.path())[0])
        .unwrap()
        .len();
    assert_eq!(days[0]["segment_bytes"], segment_len);
    assert_eq!(stats["total"]["entries"], 3);
    assert_eq!(stats["total"]["executions"], 2);

    let out = logstore_with_stdin(dir.path(), &["stats"], "");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("DAY"), "{text}");
    assert!(lines[1].starts_with(&format!("{today}  live")), "{text}");
    assert!(lines[2].starts_with("total"), "{text}");
    let disk = days[0]["disk_bytes"].as_u64().unwrap();
    assert!(disk > segment_len);
    assert!(lines[2].contains(&disk.to_string()), "{text}");
}

#[test]
fn verify_exits_0_on_a_good_store_and_2_on_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<LogEntry> = (0..50)
        .map(|i| entry("exec-1", NOON + i, &format!("message number {i}")))
        .collect();
    import(dir.path(), &entries);

    let out = logstore_with_stdin(dir.path(), &["verify"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("checked 1 days, 50 records, 1 index entries"),
        "{}",
        stdout(&out)
    );

    let segment = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&segment, bytes).unwrap();

    let out = logstore_with_stdin(dir.path(), &["verify"], "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("{} at offset ", segment.display())),
        "{text}"
    );
    assert!(text.contains("problems found"), "{text}");
}

#[test]
fn gc_deletes_days_older_than_keep_days() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    // The day of a segment is the day it was written: write on old days with a manual clock.
    for (days_ago, exec) in [(10, "exec-old"), (1, "exec-recent")] {
        let then = now - days_ago * DAY_MS;
        let config = Config {
            commit: CommitPolicy::default(),
            clock: Arc::new(ManualClock::new(then)),
            part_bytes: logstore::DEFAULT_PART_BYTES,
            tail_bytes: logstore::DEFAULT_TAIL_BYTES,
            day_level: logstore::DEFAULT_DAY_LEVEL,
        };
        let store = LogStore::open_with(dir.path(), config).unwrap();
        store.append(&entry(exec, then, "x")).unwrap();
        store.flush(Durability::Synced).unwrap();
    }
    // The old day may be sealed by now (`.sealed`) or not yet (`.log`): count days.
    assert_eq!(stored_days(dir.path()), 2);

    let out = logstore_with_stdin(dir.path(), &["gc", "--keep-days", "3"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let old_day = Day::from_unix_ms(now - 10 * DAY_MS);
    assert_eq!(stdout(&out), format!("deleted {old_day}\n"));
    assert_eq!(stored_days(dir.path()), 1);
    assert_eq!(
        logstore_with_stdin(dir.path(), &["dump", "exec-old"], "")
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        messages(&logstore_with_stdin(
            dir.path(),
            &["dump", "exec-recent", "--json"],
            ""
        )),
        ["x"]
    );

    let out = logstore_with_stdin(dir.path(), &["gc", "--keep-days", "3"], "");
    assert!(out.status.success());
    assert_eq!(stdout(&out), "no day older than 3 days to delete\n");
}

#[test]
fn dump_follow_prints_new_entries_and_stops_after_the_terminal_entry() {
    let dir = tempfile::tempdir().unwrap();
    // This process is the writer; the CLI child reads without the lock.
    let store = LogStore::open(dir.path()).unwrap();
    let mut child = KillOnDrop(
        logstore(dir.path())
            .args(["dump", "-f", "exec-1", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    let pipe = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || {
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        serde_json::from_str::<LogEntry>(&line).unwrap().message
    };

    // Nothing stored yet for the execution: the follower waits instead of failing.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "follower exited early"
    );

    store.append(&entry("exec-1", NOON, "first")).unwrap();
    store.flush(Durability::Written).unwrap();
    assert_eq!(next(), "first");

    store.append(&entry("exec-1", NOON + 1, "second")).unwrap();
    store
        .append(&entry("exec-other", NOON + 1, "not mine"))
        .unwrap();
    store.flush(Durability::Written).unwrap();
    assert_eq!(next(), "second");
    assert!(child.0.try_wait().unwrap().is_none());

    store
        .append(&terminal("exec-1", NOON + 2, "SUCCESS"))
        .unwrap();
    store.finish_execution(&id("exec-1")).unwrap();
    assert_eq!(next(), "execution SUCCESS");

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "follower did not stop by itself");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(rx.try_recv().is_err(), "nothing after the terminal entry");
}

#[test]
fn a_second_writer_is_refused_with_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let _writer = LogStore::open(dir.path()).unwrap();
    let out = logstore_with_stdin(
        dir.path(),
        &["import"],
        &ndjson(&[entry("exec-1", NOON, "x")]),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("already opened for writing"), "{err}");
    assert!(
        err.contains(&format!("process {}", std::process::id())),
        "{err}"
    );
    let out = logstore_with_stdin(dir.path(), &["gc", "--keep-days", "1"], "");
    assert_eq!(out.status.code(), Some(1));

    // Readers are not blocked by the writer.
    assert!(logstore_with_stdin(dir.path(), &["list"], "")
        .status
        .success());
}

#[test]
fn dump_into_a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    // Far more than a pipe buffer (64 KiB), so the child is still writing when we close.
    let entries: Vec<LogEntry> = (0..3000)
        .map(|i| entry("exec-1", NOON + i, &format!("{i:0>120}")))
        .collect();
    import(dir.path(), &entries);
    for json in [false, true] {
        let mut cmd = logstore(dir.path());
        cmd.args(["dump", "exec-1"]);
        if json {
            cmd.arg("--json");
        }
        let mut child = KillOnDrop(
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut reader = BufReader::new(child.0.stdout.take().unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        assert!(first.contains("000000"), "{first}");
        drop(reader); // `| head -1`
        let mut err = String::new();
        child
            .0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.0.wait().unwrap();
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err, "");
        assert!(status.success(), "{status:?}");
    }
}

#[test]
fn dir_defaults_to_the_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    import(dir.path(), &[entry("exec-1", NOON, "via env")]);
    let out = Command::new(BIN)
        .args(["dump", "exec-1", "--json"])
        .env("LOGSTORE_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(messages(&out), ["via env"]);
}

#[test]
fn a_day_level_below_the_parts_level_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    drop(LogStore::open(dir.path()).unwrap());
    for level in ["1", "2", "23"] {
        let out = Command::new(BIN)
            .args(["--day-level", level, "stats"])
            .arg("--dir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "--day-level {level} must be refused"
        );
        let err = stderr(&out);
        assert!(
            err.contains("--day-level") && err.contains(level) && err.contains("3..=22"),
            "the error names the flag, the value and the range: {err}"
        );
    }
    // 3, the parts' level, is taken.
    let out = Command::new(BIN)
        .args(["--day-level", "3", "stats"])
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `logstore completions SHELL` prints a script that the shell itself completes with: bash
/// and fish complete subcommands and flags from it, zsh parses it.
#[test]
fn completions_complete_subcommands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = |shell: &str| {
        let out = common::logstore_output(dir.path(), &["completions", shell]);
        assert!(out.status.success(), "{out:?}");
        let path = dir.path().join(format!("logstore.{shell}"));
        std::fs::write(&path, &out.stdout).unwrap();
        path
    };
    let run = |shell: &str, code: &str| -> Option<String> {
        match std::process::Command::new(shell)
            .args(["-c", code])
            .output()
        {
            Ok(out) => {
                assert!(out.status.success(), "{shell}: {out:?}");
                Some(String::from_utf8(out.stdout).unwrap())
            }
            Err(e) => {
                common::skip_or_fail(&format!(
                    "completions: no {shell} ({e}); .ci/run installs it"
                ));
                None
            }
        }
    };
    let bash = script("bash");
    let complete = |words: &str| {
        run(
            "bash",
            &format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); \
                 _logstore logstore \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                bash.display()
            ),
        )
    };
    if let Some(got) = complete("logstore sh") {
        assert_eq!(got.lines().collect::<Vec<_>>(), ["ship"], "{got}");
    }
    if let Some(got) = complete("logstore ship --cl") {
        let mut got: Vec<_> = got.lines().collect();
        got.sort_unstable();
        assert_eq!(got, ["--clickhouse", "--cluster"]);
    }
    let fish = script("fish");
    if let Some(got) = run(
        "fish",
        &format!(
            "source {}; complete -C 'logstore dump --cl'",
            fish.display()
        ),
    ) {
        let flags: Vec<_> = got.lines().map(|l| l.split('\t').next().unwrap()).collect();
        assert_eq!(flags, ["--clickhouse", "--cluster"], "{got}");
    }
    let zsh = script("zsh");
    if let Some(got) = run("zsh", &format!("zsh -n {} && echo parsed", zsh.display())) {
        assert_eq!(got.trim(), "parsed");
    }
    assert!(std::fs::read_to_string(&zsh).unwrap().contains("--otlp"));
}

/// `list -n N` gives the newest N, newest first; the filters (state, time range, id prefix)
/// narrow both forms.
#[test]
fn list_newest_with_state_time_and_prefix_filters() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    for i in 0..6i64 {
        let exec = format!("job-{}-{i}", if i % 2 == 0 { "a" } else { "b" });
        store.append(&entry(&exec, NOON + i * 1000, "x")).unwrap();
        if i % 3 == 0 {
            store
                .append(&terminal(&exec, NOON + i * 1000 + 1, "FAILED"))
                .unwrap();
        }
    }
    drop(store);
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["list", "--json"];
        all.extend_from_slice(args);
        let out = logstore_output(dir.path(), &all);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["execution_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(ids(&["-n", "2"]), ["job-b-5", "job-a-4"]);
    assert_eq!(
        ids(&["--prefix", "job-a"]),
        ["job-a-0", "job-a-2", "job-a-4"]
    );
    assert_eq!(ids(&["--state", "failed"]), ["job-a-0", "job-b-3"]);
    assert_eq!(
        ids(&["-n", "5", "--state", "running"]),
        ["job-b-5", "job-a-4", "job-a-2", "job-b-1"]
    );
    let since = (NOON + 2000).to_string();
    let until = (NOON + 4000).to_string();
    assert_eq!(
        ids(&["--since", &since, "--until", &until]),
        ["job-a-2", "job-b-3"]
    );
    let out = logstore_output(dir.path(), &["list", "--state", "done"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a state"),
        "{out:?}"
    );
}
