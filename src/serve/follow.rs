//! Live follow: the async [`Follower`] stream, and `GET /api/executions/{id}/follow` as
//! server-sent events on top of it.
//!
//! A follower is a reader thread that polls the store every `poll_interval` with a
//! [`LineCursor`](crate::LineCursor), so each poll reads only runs flushed since the last one,
//! and hands entries to the stream through a channel of 256: a client that does not read holds
//! the thread back instead of growing memory. The thread ends when the execution's terminal
//! entry has been read, or within one interval of the stream being dropped.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::api::{build, Selection};
use super::error::{ApiError, ApiResult};
use super::params::{self, Params, RawQuery, Text};
use super::AppState;
use crate::{ExecutionId, Filter, LineCursor, LogEntry, LogStore, StoreError};

/// What to follow: see [`follow`].
#[derive(Debug, Clone)]
pub struct FollowRequest {
    /// Which entries (level, task, source, time); `limit` and `tail` are ignored.
    pub filter: Filter,
    /// Only entries whose message contains this, ignoring case.
    pub text: Option<String>,
    /// Start at this line: the entries before it are not sent. A [`Followed::cursor`] given
    /// here resumes just after that entry.
    pub after: u64,
    /// How often to look for newly flushed entries.
    pub poll_interval: Duration,
}

impl Default for FollowRequest {
    fn default() -> FollowRequest {
        FollowRequest {
            filter: Filter::default(),
            text: None,
            after: 0,
            poll_interval: super::DEFAULT_POLL_INTERVAL,
        }
    }
}

/// One followed entry and its cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct Followed {
    /// The line after this entry: give it as [`FollowRequest::after`] (or as the SSE
    /// `Last-Event-ID`) to resume with the next entry.
    pub cursor: u64,
    /// The entry.
    pub entry: LogEntry,
}

/// An execution's entries as they are flushed, as a [`futures::Stream`]. It ends after the
/// execution's terminal entry has been read (whether or not the filter let it through); a
/// store error is yielded once and then the stream ends. An execution with nothing stored yet
/// is waited for.
pub struct Follower {
    rx: mpsc::Receiver<Result<Followed, StoreError>>,
}

/// Starts following `execution_id` in `store`.
pub fn follow(store: Arc<LogStore>, execution_id: ExecutionId, request: FollowRequest) -> Follower {
    let (tx, rx) = mpsc::channel(256);
    let spawned = std::thread::Builder::new()
        .name("logstore-follow".to_owned())
        .spawn(move || run(&store, &execution_id, &request, &tx));
    if let Err(e) = spawned {
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(Err(StoreError::io("start follower thread", "")(e)));
        return Follower { rx };
    }
    Follower { rx }
}

fn run(
    store: &LogStore,
    id: &ExecutionId,
    request: &FollowRequest,
    tx: &mpsc::Sender<Result<Followed, StoreError>>,
) {
    let sel = Selection {
        filter: request.filter.clone(),
        text: request.text.as_deref().map(Text::new),
    };
    let mut cursor = LineCursor::default();
    loop {
        let mut open = true;
        let polled = store.read_new_lines(id, &mut cursor, request.after, |line, p| {
            if !sel.matches(p) {
                return true;
            }
            let Some(entry) = build(p) else { return true };
            open = tx
                .blocking_send(Ok(Followed {
                    cursor: line + 1,
                    entry,
                }))
                .is_ok();
            open
        });
        if let Err(e) = polled {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        if !open || cursor.is_finished() || tx.is_closed() {
            return;
        }
        std::thread::sleep(request.poll_interval);
    }
}

impl futures::Stream for Follower {
    type Item = Result<Followed, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// `GET /api/executions/{id}/follow?after=&level=&task=&source=&since=&until=&q=`: one SSE
/// event per entry (`id:` its cursor, `data:` its JSON), then `event: end`. A reconnecting
/// `EventSource` sends `Last-Event-ID`, which wins over `after`.
pub(crate) async fn sse(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(
        raw,
        &["level", "task", "source", "since", "until", "q", "after"],
    )?;
    let id = params::execution_id(&id)?;
    let sel = Selection::from_params(&p)?;
    let mut after = p.number("after")?.unwrap_or(0);
    if let Some(v) = headers.get("last-event-id") {
        after = v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::bad("header `Last-Event-ID`: not an event id of this stream")
            })?;
    }
    // An unknown execution is a 404 now rather than a stream that waits forever.
    app.read(id.clone(), |store, id, runs| {
        store.execution_summary(id, runs)
    })
    .await?;
    let follower = follow(
        Arc::clone(&app.store),
        id,
        FollowRequest {
            filter: sel.filter,
            text: p.get("q").map(str::to_owned),
            after,
            poll_interval: app.poll_interval,
        },
    );
    let events = futures::stream::unfold(Some(follower), |state| async move {
        let mut follower = state?;
        let event = match futures::StreamExt::next(&mut follower).await {
            Some(Ok(f)) => {
                let data = serde_json::to_string(&f.entry).unwrap_or_default();
                return Some((
                    Ok(Event::default().id(f.cursor.to_string()).data(data)),
                    Some(follower),
                ));
            }
            Some(Err(e)) => Event::default()
                .event("error")
                .data(serde_json::json!({"error": e.to_string()}).to_string()),
            None => Event::default().event("end").data("{}"),
        };
        Some((Ok::<_, Infallible>(event), None))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}
