//! The HTTP API against a real `logstore serve` process on 127.0.0.1, with a real HTTP client.

mod common;
mod serve_util;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use logstore::serve::{follow, FollowRequest};
use logstore::StoreSearch;
use logstore::{Durability, Filter, Level, LogStore};
use serde_json::Value;
use serve_util::*;

/// Three executions interleaved; `big` has 2,503 entries and ends FAILED.
fn sample_store(dir: &std::path::Path) {
    let t0 = now_ms() - 60_000;
    let mut entries = Vec::new();
    for i in 0..2_500 {
        entries.push(varied("big", t0 + i as i64, i));
        if i % 10 == 0 {
            entries.push(varied("small", t0 + i as i64, i / 10));
        }
        if i == 1_000 {
            entries.push(terminal("done", t0 + i as i64, "SUCCESS"));
        }
    }
    entries.push(terminal("big", t0 + 3_000, "FAILED"));
    write_store(dir, entries);
}

fn lines_as_json(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Follows `next` cursors from the first page to the last.
fn all_pages(url: &str, query: &str) -> (Vec<Value>, usize) {
    let mut out = Vec::new();
    let mut pages = 0;
    let mut after = "0".to_owned();
    loop {
        let page = get_json(&format!("{url}?{query}&after={after}"));
        pages += 1;
        out.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(n) => after = n.to_owned(),
            None => return (out, pages),
        }
    }
}

#[test]
fn pages_concatenate_to_dump_json_and_ndjson_is_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    sample_store(dir.path());
    let server = Server::start(dir.path(), None);
    let logs = format!("{}/api/executions/big/logs", server.url);

    let dump = dump_json(dir.path(), "big", &[]);
    let (paged, pages) = all_pages(&logs, "limit=1000");
    assert_eq!(pages, 3);
    assert_eq!(paged, lines_as_json(&dump));
    // (Value equality: every entry has exactly the keys of `dump --json`, optional ones only
    // when set.)
    assert!(paged.iter().any(|e| e.get("metadata").is_some()));
    assert!(paged.iter().any(|e| e.get("task_id").is_none()));

    // With filters: the same as dump with the same filters.
    let dump_warn = dump_json(dir.path(), "big", &["--level", "warn", "--task", "task-2"]);
    let (paged_warn, _) = all_pages(&logs, "limit=77&level=WARN&task=task-2");
    assert!(!paged_warn.is_empty());
    assert_eq!(paged_warn, lines_as_json(&dump_warn));

    // tail = dump -n
    let tail = get_json(&format!("{logs}?tail=10&level=error"));
    assert_eq!(
        tail["entries"].as_array().unwrap(),
        &lines_as_json(&dump_json(
            dir.path(),
            "big",
            &["-n", "10", "--level", "error"]
        ))
    );
    assert!(tail["next"].is_null());

    // NDJSON: byte for byte what dump prints.
    let (status, body) = get(&logs, &[("Accept", "application/x-ndjson")]);
    assert_eq!(status, 200);
    assert_eq!(body, dump);
    let (_, body) = get(&format!("{logs}?format=ndjson&level=warn&task=task-2"), &[]);
    assert_eq!(body, dump_warn);

    // Line numbers: a page's `lines` are places in the whole execution, so `after` from a
    // filtered page resumes there.
    let page = get_json(&format!("{logs}?level=error&limit=3"));
    assert_eq!(page["lines"], serde_json::json!([4, 8, 12]));
    assert_eq!(page["next"], "15");
    // offset counts matching entries; without filters it is a line.
    let page = get_json(&format!("{logs}?offset=2500&limit=5"));
    assert_eq!(page["lines"], serde_json::json!([2501]));
    assert_eq!(page["entries"][0]["metadata"]["state"], "FAILED");
    let count = get_json(&format!(
        "{}/api/executions/big/count?level=error",
        server.url
    ));
    assert_eq!(count, serde_json::json!({"count": 625, "lines": 2501}));
}

#[test]
fn executions_are_listed_newest_first_with_cursor_paging() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = now_ms() - 100_000;
    let mut entries = Vec::new();
    for i in 0..25 {
        let exec = format!("exec-{i:02}");
        entries.push(varied(&exec, t0 + i * 1000, 0));
        entries.push(varied(&exec, t0 + i * 1000 + 1, 3)); // an ERROR
        match i % 3 {
            0 => entries.push(terminal(&exec, t0 + i * 1000 + 2, "SUCCESS")),
            1 => entries.push(terminal(&exec, t0 + i * 1000 + 2, "FAILED")),
            _ => {}
        }
    }
    write_store(dir.path(), entries);
    let server = Server::start(dir.path(), None);
    let mut ids = Vec::new();
    let mut url = format!("{}/api/executions?limit=10", server.url);
    loop {
        let page = get_json(&url);
        for e in page["executions"].as_array().unwrap() {
            ids.push(e["execution_id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(c) => url = format!("{}/api/executions?limit=10&cursor={c}", server.url),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).rev().map(|i| format!("exec-{i:02}")).collect();
    assert_eq!(ids, expected);

    let first = get_json(&format!("{}/api/executions?limit=1", server.url));
    assert_eq!(
        first["executions"][0],
        serde_json::json!({"execution_id": "exec-24", "first_timestamp": t0 + 24_000,
            "last_timestamp": t0 + 24_002, "entries": 3, "errors": 1, "final_state": "SUCCESS"})
    );
    let failed = get_json(&format!("{}/api/executions?state=failed", server.url));
    let failed: Vec<&str> = failed["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["execution_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        ["exec-22", "exec-19", "exec-16", "exec-13", "exec-10", "exec-07", "exec-04", "exec-01"]
    );
    let running = get_json(&format!(
        "{}/api/executions?state=RUNNING&since={}",
        server.url,
        t0 + 20_000
    ));
    assert_eq!(running["executions"].as_array().unwrap().len(), 2); // exec-20, exec-23
                                                                    // A time range (an entry in [since, until)) and an id prefix, paged.
    let ids_of = |v: &serde_json::Value| -> Vec<String> {
        v["executions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["execution_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let range = get_json(&format!(
        "{}/api/executions?since={}&until={}",
        server.url,
        t0 + 5_001,
        t0 + 8_000
    ));
    assert_eq!(ids_of(&range), ["exec-07", "exec-06", "exec-05"]);
    let prefixed = get_json(&format!(
        "{}/api/executions?prefix=exec-1&limit=4",
        server.url
    ));
    assert_eq!(
        ids_of(&prefixed),
        ["exec-19", "exec-18", "exec-17", "exec-16"]
    );
    let rest = get_json(&format!(
        "{}/api/executions?prefix=exec-1&limit=10&cursor={}",
        server.url,
        prefixed["next"].as_str().unwrap()
    ));
    assert_eq!(
        ids_of(&rest),
        ["exec-15", "exec-14", "exec-13", "exec-12", "exec-11", "exec-10"]
    );
    assert!(rest["next"].is_null());
    let one = get_json(&format!("{}/api/executions/exec-03", server.url));
    assert_eq!(one["final_state"], "SUCCESS");
    assert_eq!(one["entries"], 3);
}

/// Feeds NDJSON to `logstore import` (another process, the writer) in bursts.
fn slow_writer(dir: &std::path::Path, exec: &str, n: usize) -> std::thread::JoinHandle<()> {
    let mut child = Command::new(BIN)
        .arg("--dir")
        .arg(dir)
        .arg("import")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let exec = exec.to_owned();
    std::thread::spawn(move || {
        let mut stdin = child.stdin.take().unwrap();
        let t0 = now_ms();
        for i in 0..n {
            let e = varied(&exec, t0 + i as i64, i);
            writeln!(stdin, "{}", serde_json::to_string(&e).unwrap()).unwrap();
            if i % 25 == 24 {
                stdin.flush().unwrap();
                // More than the 1 s flush delay now and then, so that entries reach the
                // follower in several flushes of different sizes.
                std::thread::sleep(Duration::from_millis(if i % 100 == 99 { 1100 } else { 30 }));
            }
        }
        let end = terminal(&exec, t0 + n as i64, "SUCCESS");
        writeln!(stdin, "{}", serde_json::to_string(&end).unwrap()).unwrap();
        drop(stdin);
        assert!(child.wait().unwrap().success());
    })
}

#[test]
fn follow_while_another_process_writes_then_resume_with_last_event_id() {
    let dir = tempfile::tempdir().unwrap();
    // The execution exists before the server answers a follow (unknown ones are a 404).
    write_store(dir.path(), [varied("live", now_ms(), 0)]);
    let server = Server::start(dir.path(), None);
    let url = format!("{}/api/executions/live/follow", server.url);
    let writer = slow_writer(dir.path(), "live", 400);

    let mut got: Vec<(u64, Value)> = Vec::new();
    let mut sse = SseReader::open(&url, None);
    while got.len() < 150 {
        let ev = sse.next_event().expect("stream ended early");
        assert_eq!(ev.event, None, "{ev:?}");
        got.push((
            ev.id.unwrap().parse().unwrap(),
            serde_json::from_str(&ev.data).unwrap(),
        ));
    }
    drop(sse); // the client goes away mid-execution
    std::thread::sleep(Duration::from_millis(300));
    let last = got.last().unwrap().0.to_string();
    let mut sse = SseReader::open(&url, Some(&last));
    let end = loop {
        let ev = sse.next_event().expect("stream ended without `event: end`");
        if ev.event.is_some() {
            break ev;
        }
        got.push((
            ev.id.unwrap().parse().unwrap(),
            serde_json::from_str(&ev.data).unwrap(),
        ));
    };
    assert_eq!(end.event.as_deref(), Some("end"));
    assert!(sse.next_event().is_none(), "nothing after `end`");
    writer.join().unwrap();

    // No loss, no duplicate: ids are the lines 1..=N and the entries are dump's.
    let ids: Vec<u64> = got.iter().map(|(i, _)| *i).collect();
    assert_eq!(ids, (1..=402).collect::<Vec<u64>>());
    let entries: Vec<Value> = got.into_iter().map(|(_, v)| v).collect();
    assert_eq!(entries, lines_as_json(&dump_json(dir.path(), "live", &[])));

    // A filtered follow of the finished execution: only ERRORs, then end.
    let mut sse = SseReader::open(&format!("{url}?level=error&after=390"), None);
    let mut errors = 0;
    loop {
        let ev = sse.next_event().unwrap();
        if ev.event.as_deref() == Some("end") {
            break;
        }
        let v: Value = serde_json::from_str(&ev.data).unwrap();
        assert_eq!(v["level"], "ERROR");
        assert!(ev.id.unwrap().parse::<u64>().unwrap() > 390);
        errors += 1;
    }
    assert_eq!(errors, 3); // lines 392, 396, 400 hold entries 391, 395, 399
}

#[test]
fn bad_requests_are_400_naming_the_parameter_and_unknown_executions_404() {
    let dir = tempfile::tempdir().unwrap();
    sample_store(dir.path());
    let server = Server::start(dir.path(), None);
    let u = &server.url;
    for (path, status, needle) in [
        ("/api/executions/nope/logs", 404, "unknown execution"),
        ("/api/executions/nope/follow", 404, "unknown execution"),
        ("/api/executions/nope/count", 404, "unknown execution"),
        ("/api/executions/nope", 404, "unknown execution"),
        ("/api/executions/bad%20id/logs", 404, "unknown execution"),
        ("/api/nothing-here", 404, "no such endpoint"),
        ("/api/executions/big/logs?level=LOUD", 400, "`level`"),
        ("/api/executions/big/logs?limit=-1", 400, "`limit`"),
        ("/api/executions/big/logs?limit=100000", 400, "`limit`"),
        ("/api/executions/big/logs?after=x", 400, "`after`"),
        ("/api/executions/big/logs?since=yesterday", 400, "`since`"),
        ("/api/executions/big/logs?task=a%20b", 400, "`task`"),
        ("/api/executions/big/logs?format=xml", 400, "`format`"),
        (
            "/api/executions/big/logs?lvl=INFO",
            400,
            "unknown parameter `lvl`",
        ),
        (
            "/api/executions/big/logs?level=INFO&level=WARN",
            400,
            "`level` is given twice",
        ),
        ("/api/executions?cursor=zzz", 400, "`cursor`"),
        ("/api/executions?state=DONE", 400, "`state`"),
    ] {
        let (s, body) = get(&format!("{u}{path}"), &[]);
        assert_eq!(s, status, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: {body}"));
        assert!(
            v["error"].as_str().unwrap().contains(needle),
            "{path}: {body}"
        );
    }
    let (s, _) = get(
        &format!("{u}/api/executions/big/follow"),
        &[("Last-Event-ID", "nope")],
    );
    assert_eq!(s, 400);
    // No write endpoints: other methods are refused.
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{u}/api/executions/big/logs"))
            .body(())
            .unwrap();
        let resp = agent().run(req).unwrap();
        assert_eq!(resp.status().as_u16(), 405, "{method}");
    }
    let (s, body) = get(&format!("{u}/healthz"), &[]);
    assert_eq!((s, body.as_str()), (200, r#"{"status":"ok"}"#));
}

#[test]
fn token_rules() {
    let dir = tempfile::tempdir().unwrap();
    sample_store(dir.path());

    // Beyond loopback without a token: refused at start, naming the fix.
    let out = Command::new(BIN)
        .arg("--dir")
        .arg(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("LOGSTORE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without --token"), "{err}");

    let server = Server::start(dir.path(), Some("s3cret token/+"));
    let api = format!("{}/api/executions/big/logs?limit=1", server.url);
    let (s, body) = get(&api, &[]);
    assert_eq!(s, 401);
    assert!(body.contains("Authorization: Bearer"), "{body}");
    assert_eq!(get(&api, &[("Authorization", "Bearer wrong")]).0, 401);
    assert_eq!(get(&api, &[("Authorization", "Basic czNjcmV0")]).0, 401);
    assert_eq!(
        get(&api, &[("Authorization", "Bearer s3cret token/+")]).0,
        200
    );
    // The viewer's cookie, as encodeURIComponent writes it.
    assert_eq!(
        get(
            &api,
            &[("Cookie", "a=b; logstore_token=s3cret%20token%2F%2B")]
        )
        .0,
        200
    );
    assert_eq!(get(&api, &[("Cookie", "logstore_token=s3cret")]).0, 401);
    let follow = format!("{}/api/executions/big/follow", server.url);
    assert_eq!(get(&follow, &[]).0, 401);
    // The pages hold no data and load without a token (they show the login form); the CSP
    // is on every answer.
    let resp = agent().get(&server.url).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
}

/// The library side: `FollowStream`, a `futures::Stream`, from a writer in this process
/// (the writer's own live day), resuming from a cursor.
#[test]
fn follower_is_an_async_stream() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LogStore::open(dir.path()).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let writer = Arc::clone(&store);
    let t0 = now_ms();
    let handle = std::thread::spawn(move || {
        for i in 0..300 {
            writer.append(&varied("lib", t0 + i as i64, i)).unwrap();
            if i % 50 == 49 {
                writer.flush(Durability::Written).unwrap();
                std::thread::sleep(Duration::from_millis(40));
            }
        }
        writer
            .append(&terminal("lib", t0 + 300, "CANCELLED"))
            .unwrap();
        writer.finish_execution(&id("lib")).unwrap();
    });
    let all: Vec<_> = rt.block_on(async {
        let f = follow(Arc::clone(&store), id("lib"), FollowRequest::default());
        f.map(|r| r.unwrap()).collect().await
    });
    handle.join().unwrap();
    assert_eq!(all.len(), 301);
    assert_eq!(
        all.iter().map(|f| f.cursor).collect::<Vec<_>>(),
        (1..=301).collect::<Vec<_>>()
    );
    assert_eq!(all[300].entry.terminal_state(), Some("CANCELLED"));

    // Resume after cursor 250 with a filter and text search.
    let request = FollowRequest {
        filter: Filter {
            min_level: Some(Level::Warn),
            ..Filter::default()
        },
        text: Some("LIB LINE 2".to_owned()),
        after: 250,
        ..FollowRequest::default()
    };
    let rest: Vec<_> = rt.block_on(async {
        follow(Arc::clone(&store), id("lib"), request)
            .map(|r| r.unwrap().entry.message)
            .collect()
            .await
    });
    let expected: Vec<String> = (250..300)
        .filter(|i| i % 4 >= 2)
        .map(|i| varied("lib", 0, i).message)
        .collect();
    assert_eq!(rest, expected);

    // The router mounts in another server (here: axum's own) and answers.
    let app = logstore::serve::router(Arc::clone(&store));
    let url = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    });
    let count = get_json(&format!("{url}/api/executions/lib/count"));
    assert_eq!(count["count"], 301);
}

#[test]
fn search_across_executions() {
    let dir = tempfile::tempdir().unwrap();
    sample_store(dir.path());
    let server = Server::start(dir.path(), None);
    let url = |q: &str| format!("{}/api/search?{q}", server.url);

    let one = get_json(&url("q=%22big%20line%201234%22"));
    let hits = one["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{one}");
    assert!(hits[0]["entry"]["message"]
        .as_str()
        .unwrap()
        .starts_with("big line 1234 "));
    assert_eq!(hits[0]["position"]["day"].as_str().unwrap().len(), 10);
    assert_eq!(one["more"], false);

    // Filters and limit, newest first; the same as the library's search.
    let page = get_json(&url(
        "q=line&execution=sma&level=error&limit=5&reverse=true",
    ));
    let got: Vec<Value> = page["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["entry"].clone())
        .collect();
    assert_eq!(page["more"], true);
    let store = LogStore::open_read_only(dir.path()).unwrap();
    let want: Vec<Value> = store
        .search(&logstore::Search {
            terms: vec!["line".to_owned()],
            execution_prefix: Some("sma".to_owned()),
            filter: logstore::Filter {
                min_level: Some(Level::Error),
                limit: Some(5),
                ..logstore::Filter::default()
            },
            reverse: true,
            ..logstore::Search::default()
        })
        .unwrap()
        .map(|h| serde_json::to_value(h.unwrap().entry).unwrap())
        .collect();
    assert_eq!(got.len(), 5);
    assert_eq!(got, want);

    for (q, needle) in [
        ("regex=(unclosed", "`regex`"),
        ("q=%2B%2B%2B", "`q`"),
        ("level=INFO", "`q` or `regex` is needed"),
        ("q=x&reverse=maybe", "`reverse`"),
    ] {
        let (status, body) = get(&url(q), &[]);
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body.contains(needle), "{q}: {body}");
    }
}
