//! Helpers shared by the integration tests: entries and configs, the `logstore` binary, and (for
//! the reliability tests: recovery, torture, property, disk-full, concurrency) finding a store's
//! files, walking the frames of a segment, damaging files, and the deterministic entry generator
//! the crash checker recomputes byte-exact.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use logstore::format::SEGMENT_HEADER_LEN;
use logstore::{
    CommitPolicy, Config, ExecutionId, Filter, Level, LogEntry, LogStore, ManualClock, StoreError,
    TaskId,
};

/// 2026-11-25T12:00:00Z
pub const NOON: i64 = 1_795_608_000_000;

pub fn id(s: &str) -> ExecutionId {
    ExecutionId::new(s).unwrap()
}

pub fn entry(exec: &str, ts: i64, msg: &str) -> LogEntry {
    LogEntry::new(id(exec), ts, Level::Info, "worker", msg)
}

pub fn task_entry(exec: &str, task: &str, ts: i64, level: Level, msg: &str) -> LogEntry {
    LogEntry::new(id(exec), ts, level, "worker", msg).with_task(TaskId::new(task).unwrap())
}

pub fn terminal(exec: &str, ts: i64, state: &str) -> LogEntry {
    let meta = serde_json::json!({"state": state})
        .as_object()
        .cloned()
        .unwrap();
    LogEntry::new(
        id(exec),
        ts,
        Level::Info,
        "scheduler",
        format!("execution {state}"),
    )
    .with_metadata(meta)
}

/// A config on a manual clock, with a flush thread that can only flush when the test moves it.
pub fn manual(clock: &ManualClock) -> Config {
    Config {
        commit: CommitPolicy::default(),
        clock: Arc::new(clock.clone()),
        part_bytes: logstore::DEFAULT_PART_BYTES,
        tail_bytes: logstore::DEFAULT_TAIL_BYTES,
        day_level: logstore::DEFAULT_DAY_LEVEL,
    }
}

pub fn manual_with(clock: &ManualClock, batch: usize, delay_ms: u64) -> Config {
    Config {
        commit: CommitPolicy {
            max_batch_entries: batch,
            max_batch_delay: Duration::from_millis(delay_ms),
            ..CommitPolicy::default()
        },
        clock: Arc::new(clock.clone()),
        part_bytes: logstore::DEFAULT_PART_BYTES,
        tail_bytes: logstore::DEFAULT_TAIL_BYTES,
        day_level: logstore::DEFAULT_DAY_LEVEL,
    }
}

/// A test that cannot run here (no Docker engine, no root for a tmpfs): with `CI=true` (as
/// `.ci/run` sets it) the test FAILS, naming `why`; elsewhere it prints `SKIPPED: <why>` and the
/// caller returns. Either way the line is appended to `$LOGSTORE_SKIP_LOG` when that is set, so
/// `.ci/run` can count skips that `cargo test` would otherwise hide.
pub fn skip_or_fail(why: &str) {
    let line = format!("SKIPPED: {why}");
    if let Some(path) = std::env::var_os("LOGSTORE_SKIP_LOG") {
        let logged = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = logged {
            eprintln!("cannot append to LOGSTORE_SKIP_LOG: {e}");
        }
    }
    let ci = std::env::var("CI").ok();
    if skipping_fails(ci.as_deref()) {
        panic!("CI={ci:?}: this test must run here but cannot: {why}");
    }
    eprintln!("{line}");
}

/// Whether a value of `CI` makes a skip a failure: any value but empty, `0` and `false`.
pub fn skipping_fails(ci: Option<&str>) -> bool {
    ci.is_some_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The `logstore` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_logstore");

/// `logstore --dir DIR`, unaffected by the caller's `LOGSTORE_DIR` and `NO_COLOR`: every run of
/// the binary in the tests starts here.
pub fn logstore(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--dir")
        .arg(dir)
        .env_remove("LOGSTORE_DIR")
        .env_remove("NO_COLOR");
    cmd
}

/// Runs `logstore --dir DIR ARGS` (stdin empty) and collects everything.
pub fn logstore_output(dir: &Path, args: &[&str]) -> Output {
    logstore(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("logstore runs")
}

/// Runs `logstore --dir DIR ARGS` with `stdin` and collects everything.
pub fn logstore_with_stdin(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = logstore(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("logstore runs");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_owned();
    // A separate thread: a child that writes before it has read all of stdin cannot deadlock.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// `logstore --dir DIR run --execution ID --task t --plugin PLUGIN EXTRA.. -- sh -c SCRIPT`.
pub fn run_sh(dir: &Path, id: &str, plugin: &str, extra: &[&str], script: &str) -> Command {
    let mut cmd = logstore(dir);
    cmd.args(["run", "--execution", id, "--task", "t", "--plugin", plugin])
        .args(extra)
        .args(["--", "sh", "-c", script]);
    cmd
}

/// `logstore --dir DIR dump --json ID`, parsed: one JSON object per entry.
pub fn dump_json(dir: &Path, id: &str) -> Vec<serde_json::Value> {
    ndjson_of(dir, &["dump", "--json", id])
}

/// Runs `logstore --dir DIR ARGS`, which must succeed, and parses its stdout as NDJSON.
pub fn ndjson_of(dir: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let out = logstore_output(dir, args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Peak resident memory of the largest child this test process has waited for, in bytes. (A
/// child forked from a large parent counts the parent's pages until it execs: measure before
/// holding anything big.)
pub fn children_max_rss() -> u64 {
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    u64::try_from(usage.max_rss()).unwrap() * 1024 // Linux reports KiB
}

// Reliability tests: a store's files and frames, damage, generated entries.

/// The files of the store's segments directory with this extension, sorted by name.
pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

/// The newest segment (`.log`) of the store in `dir`.
pub fn last_segment(dir: &Path) -> PathBuf {
    files_with_ext(dir, "log")
        .pop()
        .expect("the store has a segment")
}

/// The live index beside a segment.
pub fn index_of(segment: &Path) -> PathBuf {
    segment.with_extension("idx")
}

/// `(offset, frame length, execution id, message)` of every whole frame from the header on,
/// stopping at the first frame that does not decode.
pub fn frames(segment: &Path) -> Vec<(u64, usize, String, String)> {
    let bytes = std::fs::read(segment).unwrap();
    let mut pos = usize::try_from(SEGMENT_HEADER_LEN).unwrap();
    let kind = logstore::format::frame_kind(&bytes[..pos]);
    let mut out = Vec::new();
    while pos < bytes.len() {
        let Ok((p, n)) = logstore::format::decode_as(&bytes[pos..], kind, pos as u64) else {
            break;
        };
        out.push((
            pos as u64,
            n,
            p.execution_id.to_owned(),
            p.message.to_owned(),
        ));
        pos += n;
    }
    out
}

/// Cuts `path` to `len` bytes.
pub fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Flips bit `bit` of the byte at `offset`.
pub fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[usize::try_from(offset).unwrap()] ^= 1 << (bit % 8);
    std::fs::write(path, bytes).unwrap();
}

/// Appends `extra` to the end of `path`.
pub fn append_bytes(path: &Path, extra: &[u8]) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes.extend_from_slice(extra);
    std::fs::write(path, bytes).unwrap();
}

/// Copies the store in `from` (its `segments/` directory; not the lock) into `to`.
pub fn copy_store(from: &Path, to: &Path) {
    let seg = to.join("segments");
    std::fs::create_dir_all(&seg).unwrap();
    for e in std::fs::read_dir(from.join("segments")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), seg.join(e.file_name())).unwrap();
    }
}

/// A config on a manual clock at `ms`.
pub fn clock_config(ms: i64) -> (ManualClock, Config) {
    let clock = ManualClock::new(ms);
    let config = manual(&clock);
    (clock, config)
}

/// Every entry stored for `exec`, or none if the store knows nothing of it.
pub fn all_of(store: &LogStore, exec: &str) -> Vec<LogEntry> {
    match store.query(&id(exec), &Filter::default()) {
        Ok(v) => v,
        Err(StoreError::UnknownExecution(_)) => Vec::new(),
        Err(e) => panic!("query {exec}: {e}"),
    }
}

/// Entry `seq` of execution `exec` in the crash tests: every field derives from `(exec, seq)`
/// so a checker recomputes it byte-exact; `seq == total` is the terminal entry.
pub fn generated_entry(exec: &str, seq: u64, total: u64) -> LogEntry {
    let ts = NOON + i64::try_from(seq).unwrap();
    if seq == total {
        return terminal(exec, ts, "SUCCESS");
    }
    let h = logstore::format::exec_hash(exec) ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let level = Level::ALL[usize::try_from(h % 4).unwrap()];
    // Varying lengths (some multi-line, some unicode) so frames cross batch and page edges.
    let pad = "é".repeat(usize::try_from(h % 23).unwrap());
    let mut e = LogEntry::new(
        id(exec),
        ts,
        level,
        "worker",
        format!("{exec} line {seq}\n{pad}"),
    );
    if h.is_multiple_of(3) {
        e = e.with_task(TaskId::new(format!("t{}", seq % 5)).unwrap());
    }
    if h.is_multiple_of(5) {
        let meta = serde_json::json!({"seq": seq, "exec": exec})
            .as_object()
            .cloned()
            .unwrap();
        e = e.with_metadata(meta);
    }
    e
}

/// Seq number parsed back out of a generated entry's message (`None` for the terminal entry).
pub fn generated_seq(e: &LogEntry) -> Option<u64> {
    let first = e.message.lines().next()?;
    first.rsplit(' ').next()?.parse().ok()
}

pub mod ship;

/// The stdout of a command that must have succeeded; its whole output in the failure.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Kills `child` with SIGKILL (no chance to clean up: what a crash leaves) and reaps it.
pub fn kill9(child: &mut std::process::Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
}

/// The ids of every execution of the store at `dir`, as a read-only reader lists them.
pub fn executions(dir: &Path) -> Vec<String> {
    LogStore::open_read_only(dir)
        .unwrap()
        .list()
        .unwrap()
        .into_iter()
        .map(|s| s.execution_id.as_str().to_owned())
        .collect()
}

/// Every entry of `exec` in the store at `dir`, as a read-only reader reads them.
pub fn local(dir: &Path, exec: &str) -> Vec<LogEntry> {
    LogStore::open_read_only(dir)
        .unwrap()
        .query(&id(exec), &Filter::default())
        .unwrap()
}
