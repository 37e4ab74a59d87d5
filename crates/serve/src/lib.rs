//! `serve`: the read-only HTTP API over a store, live follow as server-sent events, and the
//! log viewer pages. `docs/HTTP.md` documents every endpoint.
//!
//! ```text
//! router(store) ── auth (token, when set) ── headers (CSP, nosniff) ─┬─ /api/...   api.rs, follow.rs
//!                                                                    ├─ /, /executions/{id}, /assets/...  viewer.rs
//!                                                                    ├─ /metrics   metrics.rs
//!                                                                    └─ /healthz
//! ```
//!
//! Store reads are blocking file reads, so every handler runs them on tokio's blocking pool;
//! large answers (NDJSON, follow) stream through bounded channels, so memory stays flat
//! whatever the size of the execution. Positions are *lines* (see [`LogStore::scan_lines`]):
//! a cursor is the number of the execution's entries before the next one to send.
//!
//! The engine mounts [`router`] in its own server; `logstore serve` runs it standalone.

mod api;
mod auth;
mod error;
mod follow;
pub mod metrics;
mod params;
mod search;
mod viewer;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;

use logstore_store::{ExecutionId, LogStore, RunCache, StoreError};

pub use follow::{follow, FollowRequest, FollowStream, Followed};

/// The name [`FollowStream`] had before it was told apart from the store's blocking
/// [`Follower`](logstore_store::Follower).
#[deprecated(note = "renamed FollowStream")]
pub type Follower = FollowStream;

/// How a [`router_with`] serves.
#[derive(Clone)]
pub struct Options {
    /// When set, every `/api` request must carry `Authorization: Bearer TOKEN` (or the
    /// viewer's `logstore_token` cookie holding it).
    pub token: Option<String>,
    /// How often a follower looks without a wake-up (followers are woken when their
    /// execution may have new entries; this is the net under a lost wake-up).
    pub poll_interval: Duration,
    /// Renders `GET /metrics` (Prometheus text); `None`: no `/metrics`. `logstore serve`
    /// renders a `metrics-exporter-prometheus` recorder of `logstore::observe`'s metrics; an
    /// engine with its own recorder can serve its own.
    pub metrics: Option<metrics::Render>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("poll_interval", &self.poll_interval)
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

/// The default safety look of a follower: rare, so that ten thousand idle followers cost next
/// to nothing. Entries are delivered by wake-ups, not by it, and the store's watcher itself
/// looks at the files every second in case inotify lost an event.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);

impl Default for Options {
    fn default() -> Options {
        Options {
            token: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
            metrics: None,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
struct AppState {
    store: Arc<LogStore>,
    poll_interval: Duration,
    runs: Arc<RunCaches>,
}

/// Most executions whose runs are kept (a few hundred KiB each at worst).
const CACHED_EXECUTIONS: usize = 64;

/// The [`RunCache`] of recently read executions. A request takes its execution's cache out
/// and puts it back, so the lock is never held while reading.
#[derive(Default)]
struct RunCaches(parking_lot::Mutex<HashMap<ExecutionId, RunCache>>);

impl AppState {
    /// Runs `read` on the blocking pool with the execution's run cache.
    async fn read<T: Send + 'static>(
        &self,
        id: ExecutionId,
        read: impl FnOnce(&LogStore, &ExecutionId, &mut RunCache) -> Result<T, StoreError>
            + Send
            + 'static,
    ) -> Result<T, error::ApiError> {
        let store = Arc::clone(&self.store);
        let runs = Arc::clone(&self.runs);
        let result = tokio::task::spawn_blocking(move || {
            let mut cache = runs.0.lock().remove(&id).unwrap_or_default();
            let result = read(&store, &id, &mut cache);
            let mut all = runs.0.lock();
            if all.len() >= CACHED_EXECUTIONS {
                all.clear();
            }
            all.insert(id, cache);
            result
        })
        .await?;
        Ok(result?)
    }
}

/// Serves `app` (a [`router`]) on `listener` until the connection loop fails.
pub async fn serve_on(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(listener, app).await
}

/// The API and the viewer over `store`, without a token (for a loopback listener, or an engine
/// that authenticates in front of it).
pub fn router(store: Arc<LogStore>) -> Router {
    router_with(store, Options::default())
}

/// The API and the viewer over `store` with `options`.
pub fn router_with(store: Arc<LogStore>, options: Options) -> Router {
    let state = AppState {
        store,
        poll_interval: options.poll_interval,
        runs: Arc::default(),
    };
    let api = Router::new()
        .route("/api/executions", get(api::executions))
        .route("/api/executions/{id}", get(api::execution))
        .route("/api/executions/{id}/logs", get(api::logs))
        .route("/api/executions/{id}/count", get(api::count))
        .route("/api/executions/{id}/follow", get(follow::sse))
        .route("/api/search", get(search::search))
        .route("/api/{*rest}", get(api::not_found))
        .with_state(state);
    let token = options.token.map(Arc::<str>::from);
    let scrape = Router::new()
        .route("/metrics", get(metrics::metrics))
        .with_state(options.metrics);
    Router::new()
        .route("/healthz", get(api::healthz))
        .merge(viewer::routes())
        .merge(api)
        .merge(scrape)
        .layer(axum::middleware::from_fn(metrics::timed))
        .layer(axum::middleware::from_fn_with_state(token, auth::check))
        .layer(axum::middleware::from_fn(auth::headers))
}
