//! `logstore serve` measured against its targets: follow latency, page time from a large
//! store, and the CPU of many followers.
//!
//! ```text
//! cargo run --release --example serve_bench -- [--entries N] [--executions E] [--samples S]
//!                                              [--followers F] [--idle I] [--seconds T]
//! ```
//!
//! The server always runs in a child process (this binary re-executed with `--serve DIR`), on
//! a read-only handle as `logstore serve` does, so its CPU is its own and it reads the
//! writer's files the way it does next to a running engine. This process writes and is the
//! HTTP client (ureq).
//!
//! 1. **Page time.** N entries (default 10,000,000) of the `compare` workload
//!    (`benches/support/workload.rs`: E = 1,000 executions interleaved, so one execution holds
//!    N / E entries in one-record runs, the index's worst case). Pages of 1,000 entries of the
//!    middle execution: the first, one in the middle, the last (`tail`), and a filtered one
//!    (`task=task-3`, one entry in eight). Server time is the `Server-Timing` of the answer (reading, building and
//!    serializing the page); the client's round trip is shown beside it. Measured twice: with
//!    the day live (the writer open in this process), and sealed (a past day, `LogStore::seal`).
//!    Peer, same run, same handle kind: `LogStore::query` of the first 1,000 entries, and of
//!    the whole execution (what a server without line cursors would read for a middle page).
//! 2. **Follow latency.** One entry at a time (every 5-30 ms, so flushes fall at every phase
//!    of the poll), `flush(Durability::Written)`, then the time until that entry's SSE event
//!    arrives. Peer: the store's own `Follower` on a read-only handle in a thread of this
//!    process, woken by that handle's watcher as `dump -f` is: the difference is what HTTP and
//!    the SSE stream add.
//! 3. **Many followers.** F (default 1,000) SSE clients (async, on one client thread) each
//!    follow their own execution while this process appends to all of them (20 entries/s each)
//!    for T seconds (default 10): every entry's delivery delay (receipt minus its timestamp,
//!    taken at append, so it includes the store's group commit), order, `event: end`, and the
//!    server's cores (user + system CPU time over the window from `/proc/PID/stat`), threads
//!    and RSS. Then I (default 10,000) followers of executions that get no entries, for T
//!    seconds: the server's cores, threads and RSS.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logstore::{
    CommitPolicy, Config, Durability, ExecutionId, Filter, Level, LogEntry, LogStore, ManualClock,
};

#[path = "../benches/support/workload.rs"]
mod workload;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    entries: u64,
    executions: usize,
    samples: usize,
    followers: usize,
    idle: usize,
    seconds: u64,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Error> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--serve") {
        return serve(Path::new(argv.get(1).ok_or("--serve DIR")?));
    }
    let mut args = Args {
        entries: 10_000_000,
        executions: 1_000,
        samples: 400,
        followers: 1_000,
        idle: 10_000,
        seconds: 10,
    };
    let mut it = argv.into_iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--entries" => args.entries = value()?.parse()?,
            "--executions" => args.executions = value()?.parse()?,
            "--samples" => args.samples = value()?.parse()?,
            "--followers" => args.followers = value()?.parse()?,
            "--idle" => args.idle = value()?.parse()?,
            "--seconds" => args.seconds = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let tmp = tempfile::tempdir()?;
    pages(&tmp.path().join("pages"), &args)?;
    latency(&tmp.path().join("latency"), &args)?;
    followers_cpu(&tmp.path().join("followers"), &args)?;
    Ok(())
}

/// The child: `logstore serve`'s router on a read-only handle, on a free loopback port.
fn serve(dir: &Path) -> Result<(), Error> {
    let store = Arc::new(LogStore::open_read_only(dir)?);
    // As `logstore serve` builds it.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(16)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on http://{}", listener.local_addr()?);
        axum::serve(listener, logstore::serve::router(store)).await?;
        Ok::<_, Error>(())
    })
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(dir: &Path) -> Result<Server, Error> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--serve")
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or("bad first line")?
            .to_owned();
        Ok(Server { child, url })
    }

    /// User + system CPU seconds of the server process so far.
    fn cpu_seconds(&self) -> Result<f64, Error> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        let after_name = &stat[stat.rfind(')').ok_or("bad stat")? + 2..];
        let f: Vec<&str> = after_name.split(' ').collect();
        // Fields 14 and 15 of stat (utime, stime), counted from after the name (field 3).
        let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
        Ok(ticks as f64 / 100.0) // USER_HZ is 100 on Linux
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Median and 90th percentile of `v` (sorted in place).
fn stats(v: &mut [f64]) -> (f64, f64) {
    (percentile(v, 0.5), percentile(v, 0.9))
}

/// The `q` quantile of `v` (sorted in place): the sample at rank round((len - 1) * q).
fn percentile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let last = v.len().saturating_sub(1);
    let rank = (0..=last)
        .min_by(|a, b| {
            let want = last as f64 * q;
            (*a as f64 - want)
                .abs()
                .total_cmp(&(*b as f64 - want).abs())
        })
        .unwrap_or(0);
    v[rank]
}

fn pages(dir: &Path, args: &Args) -> Result<(), Error> {
    let n = args.entries;
    let e = args.executions;
    println!(
        "== page of 1,000 entries: {n} entries, {e} executions interleaved ({} per execution)",
        n / e as u64
    );
    // Written on yesterday's clock, so that reopening with the real clock seals the day.
    let yesterday = now_ms() - 86_400_000;
    let clock = ManualClock::new(yesterday);
    let started = Instant::now();
    let writer = LogStore::open_with(
        dir,
        Config {
            commit: CommitPolicy::default(),
            clock: Arc::new(clock.clone()),
            part_bytes: logstore::DEFAULT_PART_BYTES,
            tail_bytes: logstore::DEFAULT_TAIL_BYTES,
            day_level: logstore::DEFAULT_DAY_LEVEL,
        },
    )?;
    let mut w = workload::Workload::new(e);
    for seq in 0..n {
        writer.append(w.entry(seq))?;
    }
    writer.flush(Durability::Synced)?;
    println!("   written in {:.1} s", started.elapsed().as_secs_f64());
    let exec = workload::execution_id(e / 2);
    let per_exec = n / e as u64;

    let server = Server::start(dir)?;
    page_table(
        "live day (writer open, read through the live index)",
        &server,
        dir,
        &exec,
        per_exec,
    )?;
    drop(server);
    drop(writer);
    let started = Instant::now();
    // The real clock: yesterday is a past day; seal it now and wait (the sealed format, v2).
    let sealer = LogStore::open(dir)?;
    let sealed = sealer.seal()?;
    drop(sealer);
    println!("   {} day(s) sealed", sealed.len());
    println!("   sealed in {:.1} s", started.elapsed().as_secs_f64());
    let server = Server::start(dir)?;
    page_table(
        "sealed day (format v2 blocks)",
        &server,
        dir,
        &exec,
        per_exec,
    )?;
    Ok(())
}

fn page_table(
    label: &str,
    server: &Server,
    dir: &Path,
    exec: &ExecutionId,
    per_exec: u64,
) -> Result<(), Error> {
    const RUNS: usize = 21;
    println!("   {label}; median [p90] of {RUNS} runs");
    println!("   | request | entries | server ms | round trip ms |");
    println!("   |---|---|---|---|");
    let base = format!("{}/api/executions/{}/logs", server.url, exec.as_str());
    let mid = per_exec / 2;
    let requests = [
        ("first page", "limit=1000".to_owned()),
        ("middle page", format!("offset={mid}&limit=1000")),
        ("last page (tail)", "tail=1000".to_owned()),
        (
            "filtered (task=task-3)",
            "task=task-3&limit=1000".to_owned(),
        ),
    ];
    let agent = agent();
    for (name, query) in requests {
        let mut server_ms = Vec::new();
        let mut trip_ms = Vec::new();
        let mut entries = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            let mut resp = agent.get(&format!("{base}?{query}")).call()?;
            let timing = resp
                .headers()
                .get("server-timing")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("page;dur="))
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or("no Server-Timing")?;
            let body: serde_json::Value = serde_json::from_str(&resp.body_mut().read_to_string()?)?;
            trip_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            server_ms.push(timing);
            entries = body["entries"].as_array().map_or(0, Vec::len);
        }
        let (s50, s90) = stats(&mut server_ms);
        let (t50, t90) = stats(&mut trip_ms);
        println!("   | {name} | {entries} | {s50:.2} [{s90:.2}] | {t50:.2} [{t90:.2}] |");
    }
    // The peer: the store's query on a read-only handle, as another process reads.
    let ro = LogStore::open_read_only(dir)?;
    let mut first = Vec::new();
    let mut whole = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let got = ro.query(
            exec,
            &Filter {
                limit: Some(1000),
                ..Filter::default()
            },
        )?;
        first.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(got.len() as u64, 1000.min(per_exec));
        let t = Instant::now();
        let got = ro.query(exec, &Filter::default())?;
        whole.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(got.len() as u64, per_exec);
    }
    let (f50, f90) = stats(&mut first);
    let (w50, w90) = stats(&mut whole);
    println!("   peer: LogStore::query first 1,000 {f50:.2} [{f90:.2}] ms; whole execution ({per_exec}) {w50:.2} [{w90:.2}] ms");
    Ok(())
}

/// Reads SSE `data:` lines of `url`, calling `f` with each; stops when `f` returns false.
fn read_events(url: &str, mut f: impl FnMut(&str) -> bool) -> Result<(), Error> {
    let resp = agent().get(url).call()?;
    let reader: Box<dyn Read> = Box::new(resp.into_body().into_reader());
    for line in BufReader::new(reader).lines() {
        let line = line?;
        if let Some(data) = line.strip_prefix("data: ") {
            if !f(data) {
                break;
            }
        }
    }
    Ok(())
}

fn latency(dir: &Path, args: &Args) -> Result<(), Error> {
    println!(
        "== follow latency, flushed -> event received, {} samples",
        args.samples
    );
    let store = Arc::new(LogStore::open(dir)?);
    let exec = ExecutionId::new("follow-latency")?;
    let msg = |k: usize| format!("sample {k}");
    store.append(&LogEntry::new(
        exec.clone(),
        now_ms(),
        Level::Info,
        "bench",
        "start",
    ))?;
    store.flush(Durability::Written)?;
    let server = Server::start(dir)?;
    let received: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.samples).map(|_| AtomicU64::new(0)).collect());
    let direct: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.samples).map(|_| AtomicU64::new(0)).collect());
    let epoch = Instant::now();
    let since =
        move |t: Instant| u64::try_from(t.duration_since(epoch).as_nanos()).unwrap_or(u64::MAX);
    let samples = args.samples;

    let url = format!("{}/api/executions/follow-latency/follow", server.url);
    let rx = Arc::clone(&received);
    let sse = std::thread::spawn(move || {
        read_events(&url, |data| {
            let now = Instant::now();
            let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
            if let Some(k) = v["message"]
                .as_str()
                .and_then(|m| m.strip_prefix("sample "))
            {
                if let Ok(k) = k.parse::<usize>() {
                    rx[k].store(since(now), Ordering::SeqCst);
                    return k + 1 < samples;
                }
            }
            true
        })
    });
    // The peer: the store's own follower, polled at the server's interval.
    let ro = LogStore::open_read_only(dir)?;
    let dx = Arc::clone(&direct);
    let peer_exec = exec.clone();
    let peer = std::thread::spawn(move || {
        let mut f = ro.follow(&peer_exec, Filter::default());
        // As `dump -f` does: woken by the store's watcher.
        let wake = ro.wake_of(&peer_exec);
        loop {
            let generation = wake.generation();
            let polled = f.poll().unwrap_or_default();
            let now = Instant::now();
            for e in polled {
                if let Some(Ok(k)) = e.message.strip_prefix("sample ").map(str::parse::<usize>) {
                    dx[k].store(since(now), Ordering::SeqCst);
                    if k + 1 == samples {
                        return;
                    }
                }
            }
            wake.wait(generation, Duration::from_secs(1));
        }
    });
    std::thread::sleep(Duration::from_millis(500)); // both followers are up
    let mut flushed = Vec::with_capacity(samples);
    for k in 0..samples {
        std::thread::sleep(Duration::from_millis(5 + fastrand::u64(0..25)));
        store.append(&LogEntry::new(
            exec.clone(),
            now_ms(),
            Level::Info,
            "bench",
            msg(k),
        ))?;
        store.flush(Durability::Written)?;
        flushed.push(since(Instant::now()));
    }
    sse.join().map_err(|_| "sse thread panicked")??;
    peer.join().map_err(|_| "peer thread panicked")?;
    let lat = |got: &[AtomicU64]| -> Vec<f64> {
        got.iter()
            .zip(&flushed)
            .map(|(r, f)| (r.load(Ordering::SeqCst).saturating_sub(*f)) as f64 / 1e6)
            .collect()
    };
    let mut http = lat(&received);
    let mut own = lat(&direct);
    let pct = |v: &mut Vec<f64>, q: f64| percentile(v, q);
    println!("   | follower | p50 ms | p99 ms | max ms |");
    println!("   |---|---|---|---|");
    for (name, v) in [
        ("SSE over HTTP (server process)", &mut http),
        (
            "store Follower woken by the watcher, as dump -f (peer)",
            &mut own,
        ),
    ] {
        let (p50, p99, max) = (pct(v, 0.5), pct(v, 0.99), pct(v, 1.0));
        println!("   | {name} | {p50:.1} | {p99:.1} | {max:.1} |");
    }
    println!(
        "   ratio of p99s SSE / peer: {:.2}x",
        pct(&mut http, 0.99) / pct(&mut own, 0.99).max(0.001)
    );
    Ok(())
}

fn followers_cpu(dir: &Path, args: &Args) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let f = args.followers;
    println!(
        "== {f} followers, {} s with 20 entries/s per execution",
        args.seconds
    );
    busy_followers(&rt, &dir.join("busy"), f, args.seconds)?;
    let idle = args.idle;
    println!("== {idle} idle followers, {} s", args.seconds);
    idle_followers(&rt, &dir.join("idle"), idle, args.seconds)?;
    Ok(())
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    events: AtomicU64,
    /// Entries that did not follow the previous one of their execution (gaps or steps back).
    out_of_order: AtomicU64,
    ended: AtomicU64,
    delays: parking_lot::Mutex<Vec<f64>>,
}

/// One SSE client on its own HTTP/1.0 connection; `connected` counts it in once the answer's
/// status line is read.
async fn sse_client(addr: String, exec: String, tally: Arc<Tally>, connected: Arc<AtomicU64>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(&addr).await else {
        return;
    };
    let request = format!("GET /api/executions/{exec}/follow HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return;
    }
    let mut lines = tokio::io::BufReader::new(stream).lines();
    if !matches!(lines.next_line().await, Ok(Some(s)) if s.contains(" 200 ")) {
        return;
    }
    connected.fetch_add(1, Ordering::Relaxed);
    let mut last: Option<u64> = None;
    let mut end = false;
    while let Ok(Some(line)) = lines.next_line().await {
        if line.starts_with("event: end") {
            end = true;
        } else if let Some(data) = line.strip_prefix("data: ") {
            if end {
                tally.ended.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
                continue;
            };
            tally.events.fetch_add(1, Ordering::Relaxed);
            let n = v["message"]
                .as_str()
                .and_then(|m| m.strip_prefix("tick "))
                .and_then(|m| m.split(' ').next())
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(n) = n {
                // Ticks go 0, 1, 2, ...: anything else is a gap or a step back.
                if last.is_some_and(|l| n != l + 1) {
                    tally.out_of_order.fetch_add(1, Ordering::Relaxed);
                }
                last = Some(n);
                let ts = v["timestamp"].as_i64().unwrap_or(0);
                tally.delays.lock().push((now_ms() - ts) as f64);
            }
        }
    }
}

/// `(threads, RSS bytes)` of a process.
fn threads_rss(pid: u32) -> Result<(u64, u64), Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Ok((
        field("Threads:").ok_or("no Threads")?,
        field("VmRSS:").ok_or("no VmRSS")? * 1024,
    ))
}

/// Starts a server over a store of `n` executions (one entry each) and connects a follower
/// to each; returns the store, the server, the ids and the clients.
/// A store, its server, the executions and their follower tasks.
type Followed = (
    Arc<LogStore>,
    Server,
    Vec<ExecutionId>,
    Vec<tokio::task::JoinHandle<()>>,
);

fn followed(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    n: usize,
    tally: &Arc<Tally>,
) -> Result<Followed, Error> {
    let store = Arc::new(LogStore::open(dir)?);
    let ids: Vec<ExecutionId> = (0..n)
        .map(|i| ExecutionId::new(format!("follow-{i:05}")))
        .collect::<Result<_, _>>()?;
    for id in &ids {
        store.append(&LogEntry::new(
            id.clone(),
            now_ms(),
            Level::Info,
            "bench",
            "start",
        ))?;
    }
    store.flush(Durability::Written)?;
    let server = Server::start(dir)?;
    let addr = server.url.trim_start_matches("http://").to_owned();
    let connected = Arc::new(AtomicU64::new(0));
    let clients = ids
        .iter()
        .map(|id| {
            rt.spawn(sse_client(
                addr.clone(),
                id.as_str().to_owned(),
                Arc::clone(tally),
                Arc::clone(&connected),
            ))
        })
        .collect();
    let t0 = Instant::now();
    while connected.load(Ordering::Relaxed) < n as u64 && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let c = connected.load(Ordering::Relaxed);
    if c < n as u64 {
        return Err(format!("only {c} of {n} followers connected").into());
    }
    // Each has its first entry: the catching up is over before anything is measured.
    let t1 = Instant::now();
    while tally.events.load(Ordering::Relaxed) < n as u64 && t1.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "   {n} followers connected in {:.1} s and had their first entry {:.1} s later",
        (t1 - t0).as_secs_f64(),
        t1.elapsed().as_secs_f64()
    );
    tally.events.store(0, Ordering::Relaxed);
    Ok((store, server, ids, clients))
}

fn busy_followers(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    f: usize,
    seconds: u64,
) -> Result<(), Error> {
    let tally = Arc::new(Tally::default());
    let (store, server, ids, clients) = followed(rt, dir, f, &tally)?;
    std::thread::sleep(Duration::from_millis(500));
    let cpu0 = server.cpu_seconds()?;
    let t0 = Instant::now();
    let mut tick = 0u64;
    let mut threads = 0;
    let mut rss = 0;
    // 20 entries/s per execution: a round every 50 ms.
    while t0.elapsed() < Duration::from_secs(seconds) {
        let round = Instant::now();
        for id in &ids {
            store.append(&LogEntry::new(
                id.clone(),
                now_ms(),
                Level::Info,
                "bench",
                format!("tick {tick} of a followed execution"),
            ))?;
        }
        tick += 1;
        let (t, r) = threads_rss(server.child.id())?;
        threads = threads.max(t);
        rss = rss.max(r);
        std::thread::sleep(Duration::from_millis(50).saturating_sub(round.elapsed()));
    }
    let wall = t0.elapsed().as_secs_f64();
    store.flush(Durability::Written)?;
    std::thread::sleep(Duration::from_millis(1500));
    let cores = (server.cpu_seconds()? - cpu0) / (wall + 1.5);
    for id in &ids {
        store.append(&workload::terminal_entry(id, now_ms()))?;
    }
    store.flush(Durability::Synced)?;
    for c in clients {
        let _ = rt.block_on(c);
    }
    let mut delays = std::mem::take(&mut *tally.delays.lock());
    let written = tick * f as u64;
    println!(
        "   {written} entries written ({:.0}/s), {} delivered, {} out of order, {} streams ended",
        written as f64 / wall,
        delays.len(),
        tally.out_of_order.load(Ordering::Relaxed),
        tally.ended.load(Ordering::Relaxed),
    );
    println!(
        "   delivery (append -> event received): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&mut delays, 0.5),
        percentile(&mut delays, 0.99),
        percentile(&mut delays, 1.0),
    );
    println!(
        "   server: {cores:.3} cores, at most {threads} threads, {:.0} MB RSS",
        rss as f64 / 1e6
    );
    Ok(())
}

fn idle_followers(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    n: usize,
    seconds: u64,
) -> Result<(), Error> {
    let tally = Arc::new(Tally::default());
    let (store, server, ids, clients) = followed(rt, dir, n, &tally)?;
    std::thread::sleep(Duration::from_secs(1));
    let cpu0 = server.cpu_seconds()?;
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let cores = (server.cpu_seconds()? - cpu0) / t0.elapsed().as_secs_f64();
    let (threads, rss) = threads_rss(server.child.id())?;
    println!(
        "   server: {cores:.3} cores, {threads} threads, {:.0} MB RSS",
        rss as f64 / 1e6
    );
    for id in &ids {
        store.append(&workload::terminal_entry(id, now_ms()))?;
    }
    store.flush(Durability::Synced)?;
    for c in clients {
        let _ = rt.block_on(c);
    }
    println!(
        "   {} of {n} streams ended after their terminal entry",
        tally.ended.load(Ordering::Relaxed)
    );
    Ok(())
}
