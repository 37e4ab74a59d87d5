//! The viewer in real headless Chromium (Debian's `chromium`), driven over the DevTools
//! protocol, against a real `logstore serve` process. Screenshots land in
//! `target/browser-screenshots/`. Without Chromium the tests print SKIPPED, except under
//! `CI=true`, where they fail.

mod common;
mod serve_util;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::skip_or_fail;
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use logstore::{Durability, Level, LogEntry, LogStore};
use serde_json::Value;
use serve_util::*;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Starts Chromium; `None` (after `skip_or_fail`, which fails under `CI=true`) if it cannot.
fn launch() -> Option<Browser> {
    let launched = LaunchOptions::default_builder()
        .path(Some(PathBuf::from(CHROMIUM)))
        .headless(true)
        .sandbox(false) // CI runs as root
        .window_size(Some((1280, 800)))
        .idle_browser_timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| e.to_string())
        .and_then(|o| Browser::new(o).map_err(|e| e.to_string()));
    match launched {
        Ok(b) => Some(b),
        Err(e) => {
            skip_or_fail(&format!("Chromium ({CHROMIUM}) cannot start: {e}"));
            None
        }
    }
}

/// A browser of its own with one tab in front (a background tab gets no animation frames),
/// held by one test at a time: the tests share the machine's two cores. Dropping it ends
/// Chromium (a browser kept in a static would outlive the test process).
struct TestTab {
    tab: Arc<Tab>,
    _browser: Browser,
    _turn: MutexGuard<'static, ()>,
}

impl std::ops::Deref for TestTab {
    type Target = Tab;
    fn deref(&self) -> &Tab {
        &self.tab
    }
}

impl Drop for TestTab {
    fn drop(&mut self) {
        let _ = self.tab.close(false);
    }
}

fn tab() -> Option<TestTab> {
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let browser = launch()?;
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(20));
    tab.activate().unwrap();
    Some(TestTab {
        tab,
        _browser: browser,
        _turn: turn,
    })
}

fn eval(tab: &Tab, js: &str) -> Value {
    tab.evaluate(js, false)
        .unwrap()
        .value
        .unwrap_or(Value::Null)
}

/// Waits until `js` is true; returns how long it took.
fn wait_for(tab: &Tab, js: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    loop {
        // During a navigation the evaluation may fail (no document yet): not true yet.
        let v = tab.evaluate(js, false).ok().and_then(|r| r.value);
        if v == Some(Value::Bool(true)) {
            return start.elapsed();
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {js}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn screenshot(tab: &Tab, name: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

fn open(tab: &Tab, url: &str) {
    tab.navigate_to(url)
        .unwrap()
        .wait_until_navigated()
        .unwrap();
}

const READY: &str = "document.body.dataset.ready === '1' && document.querySelectorAll('.row[data-line]').length > 0";

fn texts(tab: &Tab, selector: &str) -> Vec<String> {
    let v = eval(
        tab,
        &format!(
            "JSON.stringify([...document.querySelectorAll('{selector}')].map(e => e.textContent))"
        ),
    );
    serde_json::from_str(v.as_str().unwrap()).unwrap()
}

#[test]
fn list_then_execution_then_filter_to_error() {
    let Some(tab) = tab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let t0 = now_ms() - 10_000;
    let mut entries = Vec::new();
    for i in 0..120 {
        entries.push(varied("nightly-etl", t0 + i as i64, i));
        if i < 40 {
            entries.push(varied("hourly-sync", t0 + 50 + i as i64, i));
        }
    }
    entries.push(terminal("hourly-sync", t0 + 200, "SUCCESS"));
    entries.push(terminal("nightly-etl", t0 + 300, "FAILED"));
    write_store(dir.path(), entries);
    let server = Server::start(dir.path(), None);

    open(&tab, &server.url);
    wait_for(
        &tab,
        "document.querySelectorAll('#executions tbody tr').length === 2",
        Duration::from_secs(10),
    );
    let ids = texts(&tab, "#executions tbody td.id");
    assert_eq!(ids, ["hourly-sync", "nightly-etl"]); // newest first
    assert_eq!(texts(&tab, "#executions .state"), ["SUCCESS", "FAILED"]);
    screenshot(&tab, "list");

    // Store-wide search: hits from both executions, newest first, each linking to its
    // execution with the text filter set.
    eval(&tab, "document.getElementById('search').value = 'line 11'; document.getElementById('search-form').requestSubmit(); 0");
    wait_for(
        &tab,
        "document.querySelectorAll('#hits .row').length === 2",
        Duration::from_secs(10),
    );
    assert_eq!(texts(&tab, "#hits .ln"), ["hourly-sync", "nightly-etl"]);
    screenshot(&tab, "search");
    tab.find_element("#hits a[href^='/executions/nightly-etl']")
        .unwrap()
        .click()
        .unwrap();
    wait_for(
        &tab,
        "location.pathname === '/executions/nightly-etl' && document.body.dataset.ready === '1'",
        Duration::from_secs(10),
    );
    assert_eq!(eval(&tab, "document.getElementById('q').value"), "line 11");
    // "line 11" as text: lines 11 and 110..119.
    wait_for(
        &tab,
        "document.body.dataset.total === '11'",
        Duration::from_secs(10),
    );
    open(&tab, &server.url);
    wait_for(
        &tab,
        "document.querySelectorAll('#executions tbody tr').length === 2",
        Duration::from_secs(10),
    );

    tab.find_element("a[href='/executions/nightly-etl']")
        .unwrap()
        .click()
        .unwrap();
    tab.wait_until_navigated().unwrap();
    wait_for(&tab, READY, Duration::from_secs(10));
    assert_eq!(eval(&tab, "location.pathname"), "/executions/nightly-etl");
    assert_eq!(
        eval(&tab, "document.getElementById('exec-state').textContent"),
        "FAILED"
    );
    assert_eq!(eval(&tab, "document.body.dataset.total"), "121");
    // Level colours: ERROR rows carry their class (and its colours in viewer.css).
    let first_error = eval(
        &tab,
        "getComputedStyle(document.querySelector('.row.ERROR .lvl')).color",
    );
    assert_eq!(first_error, "rgb(179, 38, 30)");

    eval(&tab, "const s = document.getElementById('level'); s.value = 'ERROR'; s.dispatchEvent(new Event('change')); 0");
    wait_for(
        &tab,
        "document.body.dataset.total === '30'",
        Duration::from_secs(10),
    );
    wait_for(
        &tab,
        "[...document.querySelectorAll('.row[data-line]')].every(r => r.classList.contains('ERROR')) && document.querySelectorAll('.row[data-line]').length === 30",
        Duration::from_secs(10),
    );
    let lines = texts(&tab, ".row .ln");
    assert_eq!(lines[..3], ["4", "8", "12"]); // line numbers of the whole execution
    screenshot(&tab, "execution-errors");

    // Task and text filters narrow further; the UTC/local switch changes the time column.
    eval(&tab, "const t = document.getElementById('q'); t.value = 'LINE 11'; t.dispatchEvent(new Event('input')); 0");
    // 11, 111, 115, 119
    wait_for(
        &tab,
        "document.body.dataset.total === '4'",
        Duration::from_secs(10),
    );
    let utc = texts(&tab, ".row .ts");
    assert!(utc[0].ends_with('Z'), "{utc:?}");
    eval(&tab, "document.getElementById('tz').click(); 0");
    wait_for(
        &tab,
        "!document.querySelector('.row .ts').textContent.endsWith('Z')",
        Duration::from_secs(5),
    );
    eval(&tab, "document.getElementById('tz').click(); 0");

    // A permalink opens the whole execution at that line, highlighted.
    open(&tab, "about:blank");
    open(&tab, &format!("{}/executions/nightly-etl#L77", server.url));
    wait_for(
        &tab,
        "document.querySelector('.row.target') !== null",
        Duration::from_secs(10),
    );
    assert_eq!(
        eval(&tab, "document.querySelector('.row.target').dataset.line"),
        "77"
    );
    // The download link fetches the whole execution as NDJSON, the same as dump --json.
    let href = eval(&tab, "document.getElementById('download').href");
    let (status, body) = get(href.as_str().unwrap(), &[]);
    assert_eq!(status, 200);
    assert_eq!(body, dump_json(dir.path(), "nightly-etl", &[]));
}

#[test]
fn follow_shows_a_new_line_within_2s_and_sticks_to_the_bottom() {
    let Some(tab) = tab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap(); // this process writes
    let t0 = now_ms();
    for i in 0..200 {
        store.append(&varied("running", t0 + i as i64, i)).unwrap();
    }
    store.flush(Durability::Written).unwrap();
    let server = Server::start(dir.path(), None); // another process reads

    open(&tab, &format!("{}/executions/running", server.url));
    wait_for(&tab, READY, Duration::from_secs(10));
    wait_for(
        &tab,
        "!document.getElementById('live').hidden",
        Duration::from_secs(5),
    );
    let mut worst = Duration::ZERO;
    for k in 0..5 {
        let marker = format!("fresh line {k}");
        store
            .append(&LogEntry::new(
                id("running"),
                now_ms(),
                Level::Warn,
                "worker",
                marker.clone(),
            ))
            .unwrap();
        store.flush(Durability::Written).unwrap();
        let took = wait_for(
            &tab,
            &format!("[...document.querySelectorAll('.row .msg')].some(e => e.textContent === '{marker}')"),
            Duration::from_secs(2),
        );
        worst = worst.max(took);
    }
    eprintln!("browser follow: new line visible {worst:?} after its flush (worst of 5)");
    assert!(worst < Duration::from_secs(2));
    screenshot(&tab, "follow");

    // Scrolled up, the reader stays where they are while lines keep coming.
    eval(&tab, "document.getElementById('log').scrollTop = 0; 0");
    std::thread::sleep(Duration::from_millis(100));
    store.append(&varied("running", now_ms(), 3)).unwrap();
    store.flush(Durability::Written).unwrap();
    wait_for(
        &tab,
        "document.body.dataset.total === '206'",
        Duration::from_secs(2),
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(eval(&tab, "document.getElementById('log').scrollTop"), 0);

    store
        .append(&terminal("running", now_ms(), "SUCCESS"))
        .unwrap();
    store.finish_execution(&id("running")).unwrap();
    wait_for(
        &tab,
        "document.getElementById('exec-state').textContent === 'SUCCESS' && document.getElementById('live').hidden",
        Duration::from_secs(5),
    );
    assert_eq!(eval(&tab, "document.body.dataset.total"), "207");
}

#[test]
fn a_million_lines_open_fast_and_scroll_to_the_end() {
    let Some(tab) = tab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let n = 1_000_000usize;
    let built = Instant::now();
    {
        let store = LogStore::open(dir.path()).unwrap();
        let t0 = now_ms() - 3_600_000;
        for i in 0..n {
            let level = if i % 1000 == 999 {
                Level::Error
            } else {
                Level::Info
            };
            let e = LogEntry::new(
                id("million"),
                t0 + (i / 1000) as i64,
                level,
                "worker",
                format!("million line {}", i + 1),
            );
            store.append(&e).unwrap();
        }
        store
            .append(&terminal("million", t0 + 1_000, "SUCCESS"))
            .unwrap();
        store.finish_execution(&id("million")).unwrap();
    }
    eprintln!("1 M-line store written in {:?}", built.elapsed());
    let server = Server::start(dir.path(), None);

    open(&tab, "about:blank");
    let start = Instant::now();
    tab.navigate_to(&format!("{}/executions/million", server.url))
        .unwrap();
    wait_for(&tab, READY, Duration::from_secs(20));
    let opened = start.elapsed();
    // The page's own clock: navigation start to the first rows drawn.
    let page_ms: u64 = eval(&tab, "document.body.dataset.readyMs")
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(eval(&tab, "document.body.dataset.total"), "1000001");
    assert_eq!(texts(&tab, ".row .msg")[0], "million line 1");

    let start = Instant::now();
    eval(
        &tab,
        "const l = document.getElementById('log'); l.scrollTop = l.scrollHeight; 0",
    );
    wait_for(
        &tab,
        "document.querySelector('.row[data-line=\"1000001\"]') !== null",
        Duration::from_secs(20),
    );
    let to_end = start.elapsed();
    let last = texts(&tab, ".row .msg");
    assert_eq!(last[last.len() - 2], "million line 1000000");
    // Only the window is in the page.
    let rows = eval(&tab, "document.querySelectorAll('.row').length")
        .as_u64()
        .unwrap();
    assert!(rows < 100, "{rows} rows in the DOM");
    // And the middle, by scrolling to a fraction.
    eval(&tab, "const m = document.getElementById('log'); m.scrollTop = (m.scrollHeight - m.clientHeight) / 2; 0");
    wait_for(&tab, "document.querySelectorAll('.row.pending').length === 0 && Number(document.body.dataset.first) > 400000", Duration::from_secs(20));
    eprintln!("1 M lines: first rows drawn {page_ms} ms after navigation start ({opened:?} as this test sees it, with DevTools round trips); scrolled to the end in {to_end:?}");
    screenshot(&tab, "million-middle");
    // The target is 1 s; the test allows for a loaded two-core machine and a debug build.
    assert!(page_ms < 3_000, "first rows after {page_ms} ms");
    assert!(
        opened < Duration::from_secs(3),
        "first rows after {opened:?}"
    );
}

#[test]
fn hostile_messages_show_as_text_and_execute_nothing() {
    let Some(tab) = tab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let t0 = now_ms() - 1000;
    let hostile = [
        "<img src=x onerror=\"window.__pwned='img'\">",
        "<script>window.__pwned='script'</script>",
        "\x1b]0;evil title\x07 osc",
        "\x1b[2J\x1b[H cleared?",
        "file \u{202e}txt.exe\u{202c} bidi",
        "\x1b[1;31mbold red\x1b[0m then plain \x1b[38;5;46mgreen256\x1b[0m",
        "<a href=\"javascript:window.__pwned='a'\">click</a>",
        "\u{9b}31m c1 csi \x07 bell \x08 backspace",
    ];
    let mut entries: Vec<LogEntry> = hostile
        .iter()
        .enumerate()
        .map(|(i, m)| LogEntry::new(id("hostile"), t0 + i as i64, Level::Info, "worker", *m))
        .collect();
    let meta = serde_json::json!({"<img src=x onerror=window.__pwned='meta'>": "</span><script>window.__pwned='m'</script>"});
    entries.push(
        LogEntry::new(
            id("hostile"),
            t0 + 20,
            Level::Error,
            "<svg/onload=window.__pwned='src'>",
            "meta and source",
        )
        .with_metadata(meta.as_object().cloned().unwrap()),
    );
    write_store(dir.path(), entries);
    let server = Server::start(dir.path(), None);

    open(&tab, &format!("{}/executions/hostile", server.url));
    wait_for(&tab, READY, Duration::from_secs(10));
    wait_for(
        &tab,
        "document.querySelectorAll('.row[data-line]').length === 9",
        Duration::from_secs(5),
    );
    std::thread::sleep(Duration::from_millis(300)); // give any payload its chance
    assert_eq!(eval(&tab, "typeof window.__pwned"), "undefined");
    assert_eq!(eval(&tab, "document.querySelectorAll('#rows img, #rows script, #rows svg, #rows a:not(.ln)').length"), 0);
    assert_eq!(eval(&tab, "document.title"), "logstore: hostile");
    let msgs = texts(&tab, ".row .msg");
    assert_eq!(msgs[0], hostile[0]);
    assert_eq!(msgs[1], hostile[1]);
    assert_eq!(msgs[2], "\\x1b]0;evil title\\x07 osc");
    assert_eq!(msgs[3], "\\x1b[2J\\x1b[H cleared?");
    assert_eq!(msgs[4], "file \\u{202e}txt.exe\\u{202c} bidi");
    assert_eq!(msgs[5], "bold red then plain green256"); // SGR applied, not shown
    assert_eq!(msgs[7], "\\x9b31m c1 csi \\x07 bell \\x08 backspace");
    assert!(
        msgs[8].contains("<img src=x onerror=window.__pwned='meta'>"),
        "{}",
        msgs[8]
    );
    assert_eq!(
        texts(&tab, ".row .src")[8],
        "<svg/onload=window.__pwned='src'>"
    );
    // SGR colours are rendered as classes and CSSOM colours.
    assert_eq!(
        eval(
            &tab,
            "document.querySelector('.row[data-line=\"6\"] .msg span.fg1.b').textContent"
        ),
        "bold red"
    );
    assert_eq!(
        eval(&tab, "[...document.querySelectorAll('.row[data-line=\"6\"] .msg span')].find(s => s.textContent === 'green256').style.color"),
        "rgb(0, 255, 0)"
    );
    screenshot(&tab, "hostile");
}

/// The list page's filters (id prefix, state, time range) reach the API and the page's URL,
/// the "Started" column says how long ago, and a long line wraps on the execution page when
/// asked to (remembered across reloads) instead of scrolling sideways.
#[test]
fn list_filters_relative_times_and_wrapped_lines() {
    let Some(tab) = tab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let long = format!("start {} end", "wrap-me ".repeat(400));
    write_store(
        dir.path(),
        [
            varied("batch-a-1", now - 3 * 3_600_000, 0),
            terminal("batch-a-1", now - 3 * 3_600_000 + 5, "SUCCESS"),
            varied("batch-b-2", now - 120_000, 1),
            LogEntry::new(
                common::id("other-3"),
                now - 60_000,
                Level::Info,
                "worker",
                long,
            ),
        ],
    );
    let server = Server::start(dir.path(), None);
    open(&tab, &server.url);
    let rows =
        |n: usize| format!("document.querySelectorAll('#executions tbody tr').length === {n}");
    wait_for(&tab, &rows(3), Duration::from_secs(10));
    assert_eq!(
        texts(&tab, "#executions td.ago"),
        ["1 min ago", "2 min ago", "3 h ago"]
    );
    // The absolute time is the cell's title.
    assert!(eval(&tab, "document.querySelector('td.ago').title")
        .as_str()
        .unwrap()
        .ends_with('Z'));

    let set = |id: &str, value: &str, event: &str| {
        eval(
            &tab,
            &format!("(() => {{ const e = document.getElementById('{id}'); e.value = '{value}'; e.dispatchEvent(new Event('{event}')); return 0; }})()"),
        )
    };
    set("prefix", "batch", "input");
    wait_for(&tab, &rows(2), Duration::from_secs(10));
    assert_eq!(texts(&tab, "#executions td.id"), ["batch-b-2", "batch-a-1"]);
    assert_eq!(eval(&tab, "location.search"), "?prefix=batch");
    set("state", "RUNNING", "change");
    wait_for(&tab, &rows(1), Duration::from_secs(10));
    assert_eq!(texts(&tab, "#executions td.id"), ["batch-b-2"]);
    set("state", "", "change");
    wait_for(&tab, &rows(2), Duration::from_secs(10));
    set("when", "3600000", "change");
    wait_for(&tab, &rows(1), Duration::from_secs(10));
    assert_eq!(texts(&tab, "#executions td.id"), ["batch-b-2"]);
    // A reload keeps the filters (they are in the URL).
    open(
        &tab,
        &format!(
            "{}/{}",
            server.url,
            eval(&tab, "location.search").as_str().unwrap()
        ),
    );
    wait_for(&tab, &rows(1), Duration::from_secs(10));
    assert_eq!(
        eval(&tab, "document.getElementById('prefix').value"),
        "batch"
    );
    screenshot(&tab, "list-filtered");

    // The long line scrolls sideways, then wraps.
    open(&tab, &format!("{}/executions/other-3", server.url));
    wait_for(&tab, READY, Duration::from_secs(10));
    eval(&tab, "localStorage.removeItem('logstore.wrap'); 0");
    let sideways = "(() => { const l = document.getElementById('log'); return l.scrollWidth > l.clientWidth + 1; })()";
    let tall = "document.querySelector('.row[data-line]').offsetHeight > 40";
    assert_eq!(eval(&tab, sideways), Value::Bool(true));
    tab.find_element("#wrap").unwrap().click().unwrap();
    wait_for(&tab, tall, Duration::from_secs(10));
    assert_eq!(eval(&tab, sideways), Value::Bool(false));
    assert_eq!(
        eval(
            &tab,
            "document.getElementById('wrap').getAttribute('aria-pressed')"
        ),
        "true"
    );
    screenshot(&tab, "wrapped");
    open(&tab, &format!("{}/executions/other-3", server.url));
    wait_for(&tab, READY, Duration::from_secs(10));
    wait_for(&tab, tall, Duration::from_secs(10));
    eval(&tab, "localStorage.removeItem('logstore.wrap'); 0");
}
