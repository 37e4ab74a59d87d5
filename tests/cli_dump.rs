//! `logstore dump` options for one attempt of a task (`--attempt`) and for colours (`--color`),
//! on executions written by the real `logstore run`.

mod common;

use common::{dump_json, ndjson_of, run_sh};
use serde_json::Value;

/// `logstore run` of `script` under `sh -c` as execution `id`, with `extra` flags.
fn run(dir: &std::path::Path, id: &str, extra: &[&str], script: &str) {
    let out = run_sh(dir, id, "acme/x.y", extra, script).output().unwrap();
    assert!(out.status.code().is_some(), "{out:?}");
}

/// `(attempt, source, event or message)` of each dumped entry.
fn summary(entries: &[Value]) -> Vec<(u64, String, String)> {
    entries
        .iter()
        .map(|e| {
            let meta = &e["metadata"];
            let what = meta["event"]
                .as_str()
                .or(meta["capture"].as_str())
                .unwrap_or_else(|| e["message"].as_str().unwrap());
            (
                meta["attempt"].as_u64().expect("attempt"),
                e["source"].as_str().unwrap().to_owned(),
                what.to_owned(),
            )
        })
        .collect()
}

#[test]
fn dump_attempt_shows_one_attempt_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    run(
        dir.path(),
        "retried",
        &["--retries", "2"],
        "echo \"try at $$\"; echo oops >&2; exit 1",
    );
    let all = dump_json(dir.path(), "retried");
    assert_eq!(
        all.len(),
        2 + 3 * 4 + 2,
        "start, 3 attempts, 2 retries, end"
    );
    let second = ndjson_of(dir.path(), &["dump", "--json", "--attempt", "2", "retried"]);
    let plugin = "plugin:acme/x.y".to_owned();
    let got: Vec<(u64, String, String)> = summary(&second)
        .into_iter()
        .map(|(a, s, w)| {
            (
                a,
                s,
                if w.starts_with("try at") {
                    "try".into()
                } else {
                    w
                },
            )
        })
        .collect();
    let worker = |w: &str| (2, "worker".to_owned(), w.to_owned());
    assert_eq!(got.len(), 5, "{got:#?}");
    assert_eq!(
        [&got[0], &got[1], &got[4]],
        [
            &worker("task_retry"),
            &worker("task_started"),
            &worker("task_completed")
        ]
    );
    // stdout and stderr lines: their relative order is not defined.
    let mut lines = got[2..4].to_vec();
    lines.sort();
    assert_eq!(
        lines,
        [
            (2, plugin.clone(), "oops".to_owned()),
            (2, plugin, "try".to_owned())
        ]
    );
    // The same entries, in the order of the whole dump.
    let from_all: Vec<&Value> = all
        .iter()
        .filter(|e| e["metadata"]["attempt"] == 2)
        .collect();
    assert_eq!(second.iter().collect::<Vec<_>>(), from_all);
    // --tail counts the attempt's entries only.
    let last = ndjson_of(
        dir.path(),
        &["dump", "--json", "--attempt", "1", "-n", "1", "retried"],
    );
    assert_eq!(summary(&last)[0].2, "task_completed");
    assert_eq!(summary(&last)[0].0, 1);
    // An attempt that never ran shows nothing.
    assert!(ndjson_of(dir.path(), &["dump", "--attempt", "9", "retried"]).is_empty());
}

const COLOURED: &str = "\u{1b}[31mred\u{1b}[0m \u{1b}[1mbold\u{1b}[0m";

/// Runs `logstore --dir DIR ARGS` on a pseudo-terminal (util-linux `script`) and returns what
/// the terminal received.
fn on_a_terminal(dir: &std::path::Path, args: &str, env: &[(&str, &str)]) -> String {
    let cmd = format!("{} --dir {} {args}", common::BIN, dir.display());
    let mut script = std::process::Command::new("script");
    script
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env_remove("NO_COLOR");
    for (k, v) in env {
        script.env(k, v);
    }
    let out = script.output().expect("script(1) runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn dump_strips_colours_off_a_terminal_and_keeps_them_on_one() {
    let dir = tempfile::tempdir().unwrap();
    run(
        dir.path(),
        "colours",
        &[],
        r"printf '\033[31mred\033[0m \033[1mbold\033[0m\n'",
    );
    // The store keeps the raw text, and so does --json.
    let stored = dump_json(dir.path(), "colours");
    assert!(
        stored.iter().any(|e| e["message"] == COLOURED),
        "{stored:#?}"
    );
    let text = |args: &[&str]| {
        let out = common::logstore_output(dir.path(), args);
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let line = |all: String| {
        all.lines()
            .find(|l| l.contains(" plugin:acme/x.y [t] "))
            .unwrap()
            .to_owned()
    };
    // A pipe: stripped (auto), or as asked.
    for args in [
        &["dump", "colours"][..],
        &["dump", "--color=never", "colours"],
    ] {
        let got = line(text(args));
        assert!(
            got.ends_with(" [t] red bold {\"attempt\":1}"),
            "{args:?}: {got:?}"
        );
    }
    let got = line(text(&["dump", "--color=always", "colours"]));
    assert!(
        got.ends_with(&format!(" [t] {COLOURED}\u{1b}[0m {{\"attempt\":1}}")),
        "{got:?}"
    );
    // A terminal: kept (auto), stripped with --color=never or NO_COLOR.
    let got = line(on_a_terminal(dir.path(), "dump colours", &[]));
    assert!(
        got.contains(&format!(" [t] {COLOURED}\u{1b}[0m ")),
        "{got:?}"
    );
    for (args, env) in [
        ("dump --color=never colours", &[][..]),
        ("dump colours", &[("NO_COLOR", "1")][..]),
    ] {
        let got = line(on_a_terminal(dir.path(), args, env));
        assert!(!got.contains('\u{1b}'), "{args} {env:?}: {got:?}");
        assert!(got.contains(" [t] red bold "), "{got:?}");
    }
}
