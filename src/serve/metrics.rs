//! `GET /metrics`: the Prometheus text exposition of `crate::observe`'s metrics, rendered by the
//! function the embedder gives in [`Options::metrics`](super::Options) (`logstore serve` gives
//! one over a `metrics-exporter-prometheus` recorder), after setting the gauges that only the
//! store's files can tell. Also the middleware that times pages and searches.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::gauge;

use super::error::ApiResult;
use crate::LogStore;

/// Renders the exposition text (set by the embedder: see [`Options::metrics`](super::Options)).
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Days in the store, by state (`sealed`: one sealed file; `live`: still segments or parts).
pub const DAYS: &str = "logstore_days";
/// Parts of days not yet sealed whole.
pub const PARTS: &str = "logstore_parts";
/// Closed segments not yet sealed into parts (the sealer is behind): all but the newest
/// segment of the newest day, which the writer may be appending to.
pub const SEGMENTS_WAITING: &str = "logstore_segments_waiting";
/// Past days not yet sealed whole.
pub const DAYS_WAITING: &str = "logstore_days_waiting";

/// Sets the gauges of what the store's files hold now.
pub fn record_store_gauges(store: &LogStore) {
    if store.refresh_days().is_err() {
        return;
    }
    let days = store.days();
    let sealed = days.iter().filter(|d| d.is_whole()).count();
    let parts: usize = days.iter().map(|d| d.parts.len()).sum();
    let segments: usize = days.iter().map(|d| d.segs.len()).sum();
    let newest = days.iter().map(|d| d.day).max();
    let waiting_days = days
        .iter()
        .filter(|d| !d.is_whole() && Some(d.day) != newest)
        .count();
    gauge!(DAYS, "state" => "sealed").set(sealed as f64);
    gauge!(DAYS, "state" => "live").set((days.len() - sealed) as f64);
    gauge!(PARTS).set(parts as f64);
    gauge!(SEGMENTS_WAITING).set(segments.saturating_sub(1) as f64);
    gauge!(DAYS_WAITING).set(waiting_days as f64);
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
        Some(crate::observe::search as fn(_))
    } else if path.starts_with("/api/executions/") && path.ends_with("/logs") {
        Some(crate::observe::page as fn(_))
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
