//! The JSON endpoints: executions, one execution, its logs (a page, or NDJSON streamed), counts.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tokio::sync::mpsc;

use super::error::{ApiError, ApiResult};
use super::params::{self, Params, RawQuery, Text, DEFAULT_LIMIT, MAX_LIMIT};
use super::AppState;
use logstore_store::format::PayloadRef;
use logstore_store::ListFilter;
use logstore_store::{ExecutionId, Filter, LogEntry, LogStore, RunCache, StoreError};

/// `GET /healthz`.
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Any other `/api` path.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint (see docs/HTTP.md)")
}

/// `GET /api/executions?state=&since=&until=&prefix=&limit=&cursor=`: newest first (by first
/// entry).
pub(crate) async fn executions(State(app): State<AppState>, raw: RawQuery) -> ApiResult<Response> {
    let p = Params::parse(
        raw,
        &["state", "since", "until", "prefix", "limit", "cursor"],
    )?;
    let state = p.parse_with("state", ListFilter::parse_state)?;
    let filter = ListFilter {
        state,
        since_ms: p.time("since")?,
        until_ms: p.time("until")?,
        prefix: p.get("prefix").filter(|s| !s.is_empty()).map(str::to_owned),
        after: p.parse_with("cursor", parse_list_cursor)?,
        limit: Some(p.count("limit", MAX_LIMIT)?.unwrap_or(100).max(1)),
    };
    let store = Arc::clone(&app.store);
    let page = tokio::task::spawn_blocking(move || store.executions(&filter)).await??;
    let body = serde_json::json!({
        "executions": page.executions,
        "next": page.next.map(|(ts, id)| format!("{ts}_{id}")),
    });
    Ok(Json(body).into_response())
}

/// `FIRSTTS_ID`: the last execution of the previous page.
fn parse_list_cursor(s: &str) -> Result<(i64, String), String> {
    let bad = || format!("{s:?} is not a cursor this endpoint returned");
    let (ts, id) = s.split_once('_').ok_or_else(bad)?;
    let ts = ts.parse::<i64>().map_err(|_| bad())?;
    let id = ExecutionId::new(id).map_err(|_| bad())?;
    Ok((ts, id.as_str().to_owned()))
}

/// `GET /api/executions/{id}`: one execution's summary.
pub(crate) async fn execution(
    State(app): State<AppState>,
    Path(id): Path<String>,
    raw: RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw, &[])?;
    let id = params::execution_id(&id)?;
    let s = app
        .read(id, |store, id, runs| store.execution_summary(id, runs))
        .await?;
    Ok(Json(&s).into_response())
}

/// Which entries a logs request wants: the store's filter plus the viewer's text search.
#[derive(Clone)]
pub(crate) struct Selection {
    pub(crate) filter: Filter,
    pub(crate) text: Option<Text>,
}

impl Selection {
    pub(crate) fn from_params(p: &Params) -> ApiResult<Selection> {
        Ok(Selection {
            filter: p.filter()?,
            text: p.get("q").map(Text::new),
        })
    }

    /// Whether nothing is filtered out.
    fn is_everything(&self) -> bool {
        let f = &self.filter;
        self.text.is_none()
            && f.min_level.is_none()
            && f.task_id.is_none()
            && f.source_prefix.is_none()
            && f.since_ms.is_none()
            && f.until_ms.is_none()
    }

    pub(crate) fn matches(&self, p: &PayloadRef<'_>) -> bool {
        self.filter.matches(p) && self.text.as_ref().is_none_or(|t| t.matches(p.message))
    }
}

/// The filter parameters every logs endpoint takes.
const FILTER_PARAMS: [&str; 6] = ["level", "task", "source", "since", "until", "q"];

fn with_filters<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    FILTER_PARAMS
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

/// An entry built from a payload; a payload that fails to build (a foreign writer's bug) is
/// skipped with a warning, as queries do.
pub(crate) fn build(p: &PayloadRef<'_>) -> Option<LogEntry> {
    match p.to_entry() {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!(error = %e, "serve: skipping an invalid record");
            None
        }
    }
}

/// A page of logs.
#[derive(Serialize)]
struct Page {
    entries: Vec<LogEntry>,
    /// The cursor (`after`) of the next page; null when nothing more matches now.
    next: Option<String>,
    /// Each entry's line number (1-based place in the execution, counting every entry).
    lines: Vec<u64>,
}

/// `GET /api/executions/{id}/logs`: a JSON page, or with `Accept: application/x-ndjson`
/// (or `format=ndjson`) every matching entry as NDJSON, streamed.
pub(crate) async fn logs(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(
        raw,
        &with_filters(&["after", "offset", "limit", "tail", "format"]),
    )?;
    let id = params::execution_id(&id)?;
    let sel = Selection::from_params(&p)?;
    let after = p.number("after")?.unwrap_or(0);
    let offset = p.number("offset")?.unwrap_or(0);
    let tail = p.count("tail", MAX_LIMIT)?;
    let ndjson = match p.get("format") {
        Some("ndjson") => true,
        Some("json") => false,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "parameter `format`: {other:?} is not json or ndjson"
            )))
        }
        None => headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("application/x-ndjson")),
    };
    if ndjson {
        let limit = p.number("limit")?;
        return stream_ndjson(Arc::clone(&app.store), id, sel, after, offset, limit, tail).await;
    }
    let limit = p.count("limit", MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT).max(1);
    let started = std::time::Instant::now();
    let page = app
        .read(id, move |store, id, runs| {
            let (from, skip) =
                start_of(store, id, runs, &sel, after, offset, tail.map(|t| t as u64))?;
            page(store, id, runs, &sel, from, skip, tail.unwrap_or(limit))
        })
        .await?;
    // Serialized here so that the timing covers it too.
    let body = serde_json::to_vec(&page).map_err(|e| ApiError::internal(e.to_string()))?;
    // Server time of the page (reading, building, serializing), for clients and benchmarks.
    let timing = format!("page;dur={:.3}", started.elapsed().as_secs_f64() * 1000.0);
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::HeaderName::from_static("server-timing"), timing),
        ],
        body,
    )
        .into_response())
}

/// Where a page starts: the line to read from and how many matching entries to pass over
/// there. Without filters, `offset` and `tail` become a line, so the index skips to it
/// without reading what comes before; with filters the entries before must be read to be
/// counted.
fn start_of(
    store: &LogStore,
    id: &ExecutionId,
    runs: &mut RunCache,
    sel: &Selection,
    after: u64,
    offset: u64,
    tail: Option<u64>,
) -> Result<(u64, u64), StoreError> {
    if sel.is_everything() {
        let from = after.saturating_add(offset);
        return Ok(match tail {
            None => (from, 0),
            Some(t) => {
                let lines = store.execution_summary(id, runs)?.entries;
                (from.max(lines.saturating_sub(t)), 0)
            }
        });
    }
    let Some(tail) = tail else {
        return Ok((after, offset));
    };
    let total = count_matching(store, id, runs, sel, after)?;
    Ok((after, total.saturating_sub(tail).max(offset)))
}

fn count_matching(
    store: &LogStore,
    id: &ExecutionId,
    runs: &mut RunCache,
    sel: &Selection,
    after: u64,
) -> Result<u64, StoreError> {
    let mut n = 0u64;
    store.scan_lines(id, after, &sel.filter, runs, |_, p| {
        n += u64::from(sel.matches(p));
        true
    })?;
    Ok(n)
}

/// Up to `limit` matching entries at line `after` or later, passing over the first `skip`.
fn page(
    store: &LogStore,
    id: &ExecutionId,
    runs: &mut RunCache,
    sel: &Selection,
    after: u64,
    mut skip: u64,
    limit: usize,
) -> Result<Page, StoreError> {
    let mut page = Page {
        entries: Vec::new(),
        next: None,
        lines: Vec::new(),
    };
    store.scan_lines(id, after, &sel.filter, runs, |line, p| {
        if !sel.matches(p) {
            return true;
        }
        if skip > 0 {
            skip -= 1;
            return true;
        }
        if page.entries.len() == limit {
            // One more matches: the next page starts at it.
            page.next = Some(line.to_string());
            return false;
        }
        if let Some(e) = build(p) {
            page.entries.push(e);
            page.lines.push(line + 1);
        }
        true
    })?;
    Ok(page)
}

/// Bytes of NDJSON gathered before they are handed to the connection.
const CHUNK: usize = 64 * 1024;

/// Streams the matching entries as NDJSON, byte for byte what `logstore dump ID --json` prints
/// with the same filters. A reader thread fills 64 KiB chunks into a channel of four, so a
/// slow client holds the reader back instead of growing memory.
async fn stream_ndjson(
    store: Arc<LogStore>,
    id: ExecutionId,
    sel: Selection,
    after: u64,
    offset: u64,
    limit: Option<u64>,
    tail: Option<usize>,
) -> ApiResult<Response> {
    let (tx, mut rx) = mpsc::channel::<Result<Vec<u8>, StoreError>>(4);
    tokio::task::spawn_blocking(move || {
        let result = (|| {
            let runs = &mut RunCache::default();
            let (from, mut skip) = start_of(
                &store,
                &id,
                runs,
                &sel,
                after,
                offset,
                tail.map(|t| t as u64),
            )?;
            let mut left = limit.unwrap_or(u64::MAX);
            let mut buf = Vec::with_capacity(CHUNK + 1024);
            let mut open = true;
            store.scan_lines(&id, from, &sel.filter, runs, |_, p| {
                if left == 0 {
                    return false;
                }
                if !sel.matches(p) {
                    return true;
                }
                if skip > 0 {
                    skip -= 1;
                    return true;
                }
                let Some(e) = build(p) else { return true };
                if serde_json::to_writer(&mut buf, &e).is_err() {
                    return true; // cannot happen for a LogEntry
                }
                buf.push(b'\n');
                left -= 1;
                if buf.len() >= CHUNK {
                    open = tx.blocking_send(Ok(std::mem::take(&mut buf))).is_ok();
                }
                open
            })?;
            // Always sent, even empty: the handler waits for this first message.
            let _ = tx.blocking_send(Ok(buf));
            Ok(())
        })();
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    // The first message decides the status: an unknown execution is a 404, not a cut stream.
    let first = match rx.recv().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(e)) => return Err(e.into()),
        None => return Err(ApiError::not_found("reader stopped")),
    };
    let rest = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| {
            let item = item.map_err(|e| std::io::Error::other(e.to_string()));
            (item, rx)
        })
    });
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(first) });
    let body = Body::from_stream(futures::StreamExt::chain(body, rest));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        body,
    )
        .into_response())
}

/// `GET /api/executions/{id}/count`: matching entries, and all lines of the execution.
pub(crate) async fn count(
    State(app): State<AppState>,
    Path(id): Path<String>,
    raw: RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(raw, &with_filters(&["after"]))?;
    let id = params::execution_id(&id)?;
    let sel = Selection::from_params(&p)?;
    let after = p.number("after")?.unwrap_or(0);
    let (count, lines) = app
        .read(id, move |store, id, runs| {
            // Lines come from the index alone; so does the count when nothing filters.
            // Otherwise both come from one pass, so that following from `lines` misses
            // nothing counted.
            if sel.is_everything() {
                let lines = store.execution_summary(id, runs)?.entries;
                return Ok((lines.saturating_sub(after), lines));
            }
            let (mut n, mut lines) = (0u64, after);
            store.scan_lines(id, after, &Filter::default(), runs, |line, p| {
                n += u64::from(sel.matches(p));
                lines = line + 1;
                true
            })?;
            Ok((n, lines))
        })
        .await?;
    Ok(Json(serde_json::json!({"count": count, "lines": lines})).into_response())
}
