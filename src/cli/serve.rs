//! `logstore serve`: the HTTP API and the log viewer over a store, read-only, so it runs next
//! to the engine that writes it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::CmdResult;

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The API is documented in docs/HTTP.md. Without --token the server \
listens only on a loopback address; with it, every /api request needs `Authorization: Bearer \
TOKEN` (the viewer asks for it in a login form)."
)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7411")]
    listen: SocketAddr,
    /// Require this bearer token on every API request (needed to listen beyond loopback).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "LOGSTORE_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
}

/// Serves the store at `dir` until interrupted (SIGINT or SIGTERM).
pub fn run(dir: &Path, args: Args) -> CmdResult {
    if !args.listen.ip().is_loopback() && args.token.is_none() {
        return Err(format!(
            "refusing to listen on {} without --token: anyone who can reach it could read every \
             log. Listen on 127.0.0.1 (the default) or pass --token (or LOGSTORE_TOKEN)",
            args.listen
        )
        .into());
    }
    if args.token.as_deref().is_some_and(str::is_empty) {
        return Err("--token is empty".into());
    }
    let store = Arc::new(super::open_for_reading(dir)?);
    let options = logstore::serve::Options {
        token: args.token,
        metrics: Some(prometheus(dir, Arc::clone(&store))?),
        ..Default::default()
    };
    let app = logstore::serve::router_with(store, options);
    // A bounded number of threads whatever the number of clients: followers are tasks, and
    // store reads share a small blocking pool.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(SERVE_BLOCKING_THREADS)
        .enable_all()
        .build()?;
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let addr = listener.local_addr()?;
        // Scripts and tests read this line to learn the port.
        println!("listening on http://{addr}/");
        // Not a graceful shutdown: followers' streams stay open until their execution ends,
        // which may be never; a signal ends them all.
        tokio::select! {
            served = logstore::serve::serve_on(listener, app) => served?,
            () = stop_signal() => {}
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    // Follower tasks wait until their stream is dropped; the process ends without them.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    served?;
    Ok(ExitCode::SUCCESS)
}

/// Installs a Prometheus recorder of `logstore::observe`'s metrics and returns what renders
/// `/metrics`: the store's gauges and every ship target's lag, set at each scrape, then the
/// recorder's text.
fn prometheus(
    dir: &Path,
    store: Arc<logstore::LogStore>,
) -> Result<logstore::serve::metrics::Render, Box<dyn std::error::Error>> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(logstore::observe::BUCKETS)?
        .install_recorder()?;
    logstore::observe::describe();
    let dir = dir.to_owned();
    use logstore::observe;
    Ok(Arc::new(move || {
        store.record_gauges();
        for target in logstore::ship::cursor::targets(&dir).unwrap_or_default() {
            let Ok(s) = logstore::Shipper::status_of(&dir, target.as_deref()) else {
                continue;
            };
            let name = target.unwrap_or_else(|| "default".to_owned());
            metrics::gauge!(observe::SHIP_LAG_ENTRIES, "target" => name.clone())
                .set(s.lag_entries as f64);
            metrics::gauge!(observe::SHIP_LAG_SECONDS, "target" => name.clone()).set(s.lag_seconds);
            metrics::gauge!(observe::SHIPPED_ENTRIES, "target" => name)
                .set(s.cursor.shipped as f64);
        }
        handle.run_upkeep();
        handle.render()
    }))
}

/// Threads of the blocking pool (store reads of requests and followers). With the runtime's
/// workers (one per core) and the store's watcher, the server stays far below 64 threads.
const SERVE_BLOCKING_THREADS: usize = 16;

/// Resolves at SIGINT or SIGTERM.
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
