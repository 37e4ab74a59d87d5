//! Restricted mode: the same capture through `docker run`, with an image built locally (no pull):
//! a `FROM scratch`-like rootfs holding `node`, the shared libraries `ldd` lists, and the SDK at
//! `/sdk/context.js`, imported with `docker import`.
//!
//! If no Docker engine answers, each test prints `SKIPPED: ...` to stderr and returns; with
//! `CI=true` it fails instead (`common::skip_or_fail`).

mod common;

use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use logstore::capture::{
    run_plugin, CancelSignal, CaptureConfig, CaptureContext, PluginCommand, PluginEnd, PluginId,
    PluginOutcome, Restricted,
};
use logstore::{ExecutionId, Level, LogEntry, TaskId};
use parking_lot::Mutex;
use serde_json::{json, Value};

const IMAGE: &str = "logstore-test-node:latest";
const SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sdk/context.js");
const MIB: u64 = 1024 * 1024;

/// Builds the test image once per test binary; `Err` says why Docker cannot be used.
fn image() -> Result<&'static str, String> {
    static BUILT: OnceLock<Result<&'static str, String>> = OnceLock::new();
    BUILT.get_or_init(build_image).clone()
}

fn build_image() -> Result<&'static str, String> {
    let sdk = std::fs::read(SDK).map_err(|e| e.to_string())?;
    logstore::capture::build_node_image(IMAGE, &sdk).map_err(|e| e.to_string())?;
    Ok(IMAGE)
}

/// The image, or `None` after printing why the test is skipped (under `CI=true`: a failure).
fn image_or_skip() -> Option<&'static str> {
    match image() {
        Ok(image) => Some(image),
        Err(why) => {
            common::skip_or_fail(&format!("docker tests: {why}"));
            None
        }
    }
}

#[test]
fn under_ci_a_skip_is_a_failure() {
    for ci in ["true", "1", "yes"] {
        assert!(common::skipping_fails(Some(ci)), "{ci}");
    }
    for ci in [None, Some(""), Some("0"), Some("false")] {
        assert!(!common::skipping_fails(ci), "{ci:?}");
    }
}

fn ctx(task: &str) -> CaptureContext {
    CaptureContext::new(
        ExecutionId::new("exec-docker").unwrap(),
        TaskId::new(task).unwrap(),
        PluginId::parse("acme/sandboxed.run").unwrap(),
    )
}

fn node_in(image: &str, script: &str) -> PluginCommand {
    PluginCommand::trusted("/usr/bin/node", ["-e", script]).restricted(Restricted::new(image))
}

async fn run(task: &str, cmd: PluginCommand, cfg: CaptureConfig) -> (PluginOutcome, Vec<LogEntry>) {
    let sink = Mutex::new(Vec::new());
    let outcome = run_plugin(&ctx(task), &cmd, &cfg, &sink, CancelSignal::never())
        .await
        .expect("plugin runs");
    (outcome, sink.into_inner())
}

fn meta(e: &LogEntry) -> Value {
    Value::Object(e.metadata.clone().unwrap_or_default())
}

/// Containers whose name contains `part`, running or not.
fn containers_named(part: &str) -> String {
    let out = Command::new("docker")
        .args(["ps", "-a", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|n| n.contains(part))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn restricted_plugin_stdout_stderr_and_context_log() {
    let Some(image) = image_or_skip() else { return };
    let (outcome, entries) = run(
        "docker-capture",
        node_in(
            image,
            r#"const { context } = require("/sdk/context.js");
               console.log("out one\nout two");
               context.debug("d", { n: 1 });
               context.info("i");
               console.error("plain stderr");
               context.warn("w", { k: "v" });
               context.error("e");
               process.stderr.write("\x1e" + JSON.stringify({ level: "INFO", message: "spoof",
                 execution_id: "other", task_id: "other", source: "scheduler" }) + "\n");
               process.exitCode = 4;"#,
        ),
        CaptureConfig::default(),
    )
    .await;
    assert_eq!(outcome.end, PluginEnd::Exited(4));
    for e in &entries {
        assert_eq!(e.execution_id.as_str(), "exec-docker");
        assert_eq!(e.task_id.as_ref().unwrap().as_str(), "docker-capture");
        assert_eq!(e.source, "plugin:acme/sandboxed.run");
    }
    let (stdout, stderr): (Vec<&LogEntry>, Vec<&LogEntry>) =
        entries.iter().partition(|e| e.message.starts_with("out "));
    let got = |v: &[&LogEntry]| -> Vec<(Level, String)> {
        v.iter().map(|e| (e.level, e.message.clone())).collect()
    };
    assert_eq!(
        got(&stdout),
        [
            (Level::Info, "out one".into()),
            (Level::Info, "out two".into())
        ]
    );
    assert_eq!(
        got(&stderr),
        [
            (Level::Debug, "d".into()),
            (Level::Info, "i".into()),
            (Level::Warn, "plain stderr".into()),
            (Level::Warn, "w".into()),
            (Level::Error, "e".into()),
            (Level::Info, "spoof".into()),
        ]
    );
    assert_eq!(meta(stderr[0]), json!({"n": 1}));
    assert_eq!(meta(stderr[3]), json!({"k": "v"}));
    assert_eq!(stderr[5].metadata, None);
    assert!(
        containers_named("docker-capture").is_empty(),
        "--rm removed it"
    );
}

#[tokio::test]
async fn restricted_plugin_has_no_network_runs_as_nobody_on_a_read_only_root() {
    let Some(image) = image_or_skip() else { return };
    let (outcome, entries) = run(
        "docker-sandbox",
        node_in(
            image,
            r#"const fs = require("fs"), net = require("net"), os = require("os");
               console.log("uid=" + process.getuid() + " gid=" + process.getgid());
               console.log("interfaces=" + Object.keys(os.networkInterfaces()).sort().join(","));
               try { fs.writeFileSync("/root-write", "x"); console.log("root write ok"); }
               catch (e) { console.log("root write " + e.code); }
               fs.writeFileSync("/tmp/scratch", "x"); console.log("tmp write ok");
               const s = net.connect({ host: "1.1.1.1", port: 53, timeout: 2000 });
               s.on("connect", () => { console.log("network reachable"); s.destroy(); });
               s.on("timeout", () => { console.log("network timeout"); s.destroy(); });
               s.on("error", (e) => console.log("network " + e.code));"#,
        ),
        CaptureConfig::default(),
    )
    .await;
    assert_eq!(outcome.end, PluginEnd::Exited(0), "{entries:#?}");
    let lines: Vec<&str> = entries.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        lines,
        [
            "uid=65534 gid=65534",
            "interfaces=lo",
            "root write EROFS",
            "tmp write ok",
            "network ENETUNREACH",
        ]
    );
}

#[tokio::test]
async fn restricted_plugin_from_a_read_only_mount_with_env() {
    let Some(image) = image_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plugin.js"),
        r#"const { context } = require("/sdk/context.js");
           context.info("hello " + process.env.GREETING, { cwd: process.cwd() });"#,
    )
    .unwrap();
    let mut restricted = Restricted::new(image);
    restricted
        .read_only_mounts
        .push((dir.path().to_owned(), "/plugin".into()));
    let mut cmd =
        PluginCommand::trusted("/usr/bin/node", ["/plugin/plugin.js"]).restricted(restricted);
    cmd.env.push(("GREETING".into(), "from the engine".into()));
    cmd.cwd = Some("/plugin".into());
    let (outcome, entries) = run("docker-mount", cmd, CaptureConfig::default()).await;
    assert_eq!(outcome.end, PluginEnd::Exited(0));
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].level, Level::Info);
    assert_eq!(entries[0].message, "hello from the engine");
    assert_eq!(meta(&entries[0]), json!({"cwd": "/plugin"}));
}

#[tokio::test]
async fn restricted_plugin_output_is_truncated_at_the_cap() {
    let Some(image) = image_or_skip() else { return };
    let (outcome, entries) = run(
        "docker-flood",
        node_in(
            image,
            r#"const line = Buffer.alloc(1024, "z"); line[1023] = 10;
               const block = Buffer.concat(Array(1024).fill(line));
               for (let i = 0; i < 12; i++) process.stdout.write(block);"#,
        ),
        CaptureConfig::default(),
    )
    .await;
    assert_eq!(outcome.end, PluginEnd::Exited(0));
    assert_eq!(
        (outcome.bytes_captured, outcome.bytes_dropped),
        (10 * MIB, 2 * MIB)
    );
    let (warning, lines) = entries.split_last().unwrap();
    assert_eq!(lines.len(), 10 * 1024);
    assert_eq!(warning.level, Level::Warn);
    assert_eq!(
        meta(warning),
        json!({"capture": "truncated", "limit_bytes": 10 * MIB, "captured_bytes": 10 * MIB, "dropped_bytes": 2 * MIB})
    );
}

#[tokio::test]
async fn restricted_timeout_kills_and_removes_the_container() {
    let Some(image) = image_or_skip() else { return };
    let cfg = CaptureConfig {
        timeout: Some(Duration::from_millis(1500)),
        ..CaptureConfig::default()
    };
    let started = Instant::now();
    let (outcome, entries) = run(
        "docker-timeout",
        node_in(
            image,
            r#"console.log("started"); setInterval(() => {}, 1000);"#,
        ),
        cfg,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outcome.end, PluginEnd::TimedOut);
    assert_eq!(entries[0].message, "started");
    assert_eq!(meta(entries.last().unwrap())["capture"], json!("timeout"));
    assert!(
        containers_named("docker-timeout").is_empty(),
        "container left behind: {}",
        containers_named("docker-timeout")
    );
}

#[tokio::test]
async fn restricted_cancel_kills_and_removes_the_container() {
    let Some(image) = image_or_skip() else { return };
    let (handle, signal) = CancelSignal::new();
    let sink = Mutex::new(Vec::new());
    let cmd = node_in(
        image,
        r#"console.log("started"); setInterval(() => {}, 1000);"#,
    );
    let cfg = CaptureConfig::default();
    let c = ctx("docker-cancel");
    let (outcome, ()) = tokio::join!(run_plugin(&c, &cmd, &cfg, &sink, signal), async {
        // Wait for the container to print, so the cancel hits a running container.
        for _ in 0..200 {
            if !sink.lock().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        handle.cancel();
    });
    assert_eq!(outcome.unwrap().end, PluginEnd::Cancelled);
    let entries = sink.into_inner();
    assert_eq!(entries[0].message, "started");
    assert_eq!(meta(entries.last().unwrap())["capture"], json!("cancelled"));
    assert!(containers_named("docker-cancel").is_empty());
}

// ---- Issue 9, fault 2: restricted mode leaks into the docker CLI ------------------------------

/// The plugin's environment reaches the container and only the container: keys that would
/// reconfigure the `docker` CLI itself (DOCKER_HOST, DOCKER_CONFIG, PATH) are plain variables
/// of the plugin, and values keep their spaces, `=` and quotes.
#[tokio::test]
async fn restricted_env_reaches_the_container_only() {
    let Some(image) = image_or_skip() else { return };
    let mut cmd = node_in(
        image,
        r#"for (const k of ["DOCKER_HOST", "DOCKER_CONFIG", "PATH", "ODD"]) console.log(k + "=" + process.env[k]);"#,
    );
    let odd = r#"a value with spaces, = signs, 'quotes' and "double" ones "#;
    cmd.env = vec![
        ("DOCKER_HOST".into(), "tcp://127.0.0.1:9".into()),
        ("DOCKER_CONFIG".into(), "/nonexistent/docker-config".into()),
        ("PATH".into(), "/nonexistent/bin".into()),
        ("ODD".into(), odd.into()),
    ];
    let (outcome, entries) = run("docker-env", cmd, CaptureConfig::default()).await;
    assert_eq!(outcome.end, PluginEnd::Exited(0), "{entries:#?}");
    let lines: Vec<&str> = entries.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        lines,
        [
            "DOCKER_HOST=tcp://127.0.0.1:9",
            "DOCKER_CONFIG=/nonexistent/docker-config",
            "PATH=/nonexistent/bin",
            &format!("ODD={odd}"),
        ]
    );
}

/// A value docker's env-file cannot carry (a line break) is refused by name before anything
/// runs, rather than cut or passed on the command line.
#[tokio::test]
async fn restricted_env_value_with_a_line_break_is_refused_by_name() {
    let Some(image) = image_or_skip() else { return };
    let mut cmd = node_in(image, "");
    cmd.env.push(("MULTI".into(), "one\ntwo".into()));
    let sink = Mutex::new(Vec::new());
    let err = run_plugin(
        &ctx("docker-env-nl"),
        &cmd,
        &CaptureConfig::default(),
        &sink,
        CancelSignal::never(),
    )
    .await
    .expect_err("refused");
    assert!(err.to_string().contains("MULTI"), "{err}");
}

/// A comma in a mount's host path cannot add mount options: `<dir>/d,readonly=false` is
/// mounted as itself, read-only (with the old string concatenation, docker mounted `<dir>/d`
/// writable).
#[tokio::test]
async fn restricted_mount_path_with_a_comma_cannot_inject_options() {
    use std::os::unix::fs::PermissionsExt;
    let Some(image) = image_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (name, which) in [("d", "plain"), ("d,readonly=false", "comma")] {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("which"), which).unwrap();
        // Writable by the container's user, so only the mount can refuse a write.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let mut restricted = Restricted::new(image);
    restricted
        .read_only_mounts
        .push((dir.path().join("d,readonly=false"), "/plugin".into()));
    let cmd = PluginCommand::trusted(
        "/usr/bin/node",
        [
            "-e",
            r#"const fs = require("fs");
               console.log(fs.readFileSync("/plugin/which", "utf8"));
               try { fs.writeFileSync("/plugin/new", "x"); console.log("write ok"); }
               catch (e) { console.log("write " + e.code); }"#,
        ],
    )
    .restricted(restricted);
    let (outcome, entries) = run("docker-comma", cmd, CaptureConfig::default()).await;
    let lines: Vec<&str> = entries.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(outcome.end, PluginEnd::Exited(0), "{lines:?}");
    assert_eq!(lines, ["comma", "write EROFS"]);
    assert!(
        !dir.path().join("d/new").exists() && !dir.path().join("d,readonly=false/new").exists()
    );
}

/// A missing image is never pulled: the run fails before starting, with an error that names
/// the image.
#[tokio::test]
async fn restricted_missing_image_is_a_clear_error_naming_it() {
    let Some(_) = image_or_skip() else { return };
    let missing = "logstore-test-no-such-image:never";
    let sink = Mutex::new(Vec::new());
    let result = run_plugin(
        &ctx("docker-missing"),
        &node_in(missing, "console.log(1)"),
        &CaptureConfig::default(),
        &sink,
        CancelSignal::never(),
    )
    .await;
    let err = result.expect_err("a missing image is an error, not a pull");
    let text = err.to_string();
    assert!(
        text.contains(missing) && text.contains("not present"),
        "{text}"
    );
    assert!(sink.lock().is_empty(), "nothing ran: {:?}", sink.lock());
}
