//! `GET /metrics`: the Prometheus text exposition of `logstore_store::observe`'s metrics, rendered by the
//! function the embedder gives in [`Options::metrics`](super::Options) (`logstore serve` gives
//! one over a `metrics-exporter-prometheus` recorder), after setting the gauges that only the
//! store's files can tell. Also the middleware that times pages and searches.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiResult;

/// Renders the exposition text (set by the embedder: see [`Options::metrics`](super::Options)).
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

pub use logstore_store::observe::{DAYS, DAYS_WAITING, PARTS, SEGMENTS_WAITING};

/// Sets the gauges of what the store's files hold now ([`LogStore::record_gauges`](logstore_store::LogStore::record_gauges)).
pub fn record_store_gauges(store: &logstore_store::LogStore) {
    store.record_gauges();
}

/// `GET /metrics`: 404 when the embedder gave no renderer.
pub(crate) async fn metrics(State(render): State<Option<Render>>) -> ApiResult<Response> {
    let Some(render) = render else {
        return Ok(axum::http::StatusCode::NOT_FOUND.into_response());
    };
    let text = tokio::task::spawn_blocking(move || render()).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Times pages of entries and searches (to the response's head; a streamed body goes on).
pub(crate) async fn timed(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let kind = if path == "/api/search" {
        Some(logstore_store::observe::search as fn(_))
    } else if path.starts_with("/api/executions/") && path.ends_with("/logs") {
        Some(logstore_store::observe::page as fn(_))
    } else {
        None
    };
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(record) = kind {
        record(started.elapsed());
    }
    response
}
