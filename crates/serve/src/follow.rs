//! Live follow: the async [`FollowStream`], and `GET /api/executions/{id}/follow` as
//! server-sent events on top of it.
//!
//! A follower is a tokio task, not a thread. It takes its execution's wake-up
//! ([`LogStore::wake_of`]) before each read, reads what was flushed since the last one with a
//! [`LineCursor`](crate::LineCursor), hands the entries to the stream through a channel of 256
//! (a client that does not read holds its task back instead of growing memory), and sleeps
//! until the execution may have new entries: a flush of the writer in this process, or one
//! the store's watcher saw in the files (inotify) in a reader process. So a thousand followers
//! cost a thousand small tasks and no thread each, and an idle one costs nothing but a look
//! every `poll_interval` in case a wake-up was lost. Catching up (the first read, a page of
//! entries at a time) runs on the blocking pool, at most [`READERS`] followers at a time; a read
//! after a wake-up (what one flush wrote, in the page cache) runs in the task. The task ends
//! when the execution's terminal entry has been read, or when the stream is dropped.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, Semaphore};

use super::api::{build, Selection};
use super::error::{ApiError, ApiResult};
use super::params::{self, Params, RawQuery, Text};
use super::AppState;
use logstore_store::{ExecutionId, Filter, LineCursor, LogEntry, LogStore, StoreError};

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
    /// How often to look without a wake-up (a safety net: wake-ups are what deliver).
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
pub struct FollowStream {
    rx: mpsc::Receiver<Result<Followed, StoreError>>,
}

/// Most followers reading the store at once (each on a blocking-pool thread); the others wait
/// their turn without a thread.
pub const READERS: usize = 4;

/// Most entries one read hands over before the follower goes on with a fresh cursor: bounds
/// the memory of catching up on a long execution.
const PAGE: usize = 1024;

static READING: Semaphore = Semaphore::const_new(READERS);

/// Starts following `execution_id` in `store`, as a task of the current tokio runtime (call
/// it from within one; outside, the stream yields one error).
pub fn follow(
    store: Arc<LogStore>,
    execution_id: ExecutionId,
    request: FollowRequest,
) -> FollowStream {
    let (tx, rx) = mpsc::channel(256);
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(run(store, execution_id, request, tx));
        }
        Err(e) => {
            let _ = tx.try_send(Err(StoreError::io("follow outside a tokio runtime", "")(
                std::io::Error::other(e),
            )));
        }
    }
    FollowStream { rx }
}

async fn run(
    store: Arc<LogStore>,
    id: ExecutionId,
    request: FollowRequest,
    tx: mpsc::Sender<Result<Followed, StoreError>>,
) {
    let _counted = logstore_store::observe::Following::start();
    let wake = store.wake_of(&id);
    let sel = Arc::new(Selection {
        filter: request.filter.clone(),
        text: request.text.as_deref().map(Text::new),
    });
    let mut cursor = LineCursor::default();
    let mut after = request.after;
    // Catching up (a first read, or after a full page) may read much: on the blocking pool, a
    // few followers at a time. A read after a wake-up reads what one flush just wrote, from
    // the page cache: inline, where a hand-off to a pool thread and back would cost more than
    // the read (futex wake-ups were most of the server's CPU with a thousand followers).
    let mut fresh = true;
    loop {
        // Enabled before reading: a flush while we read still wakes us.
        let notified = wake.notify().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (back, page, more, result) = if fresh {
            let Ok(permit) = READING.acquire().await else {
                return;
            };
            let (store2, sel2, id2) = (Arc::clone(&store), Arc::clone(&sel), id.clone());
            let done =
                tokio::task::spawn_blocking(move || read_page(&store2, &id2, &sel2, cursor, after))
                    .await;
            drop(permit);
            match done {
                Ok(r) => r,
                Err(e) => {
                    let e = StoreError::io("follow", "")(std::io::Error::other(e));
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        } else {
            read_page(&store, &id, &sel, cursor, after)
        };
        fresh = more;
        cursor = back;
        if let Err(e) = result {
            let _ = tx.send(Err(e)).await;
            return;
        }
        for f in page {
            after = f.cursor;
            if tx.send(Ok(f)).await.is_err() {
                return; // the stream was dropped
            }
        }
        if more {
            // A full page: go on at once, from the next line (a stopped cursor is spent).
            cursor = LineCursor::default();
            continue;
        }
        if cursor.is_finished() {
            return;
        }
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep(request.poll_interval) => {}
            () = tx.closed() => return,
        }
    }
}

/// One read of a follower: the entries after `cursor` that pass `sel`, at most a page;
/// returns the cursor, the page, whether the page is full (the cursor is then spent), and the
/// read's result.
fn read_page(
    store: &LogStore,
    id: &ExecutionId,
    sel: &Selection,
    mut cursor: LineCursor,
    after: u64,
) -> (LineCursor, Vec<Followed>, bool, Result<bool, StoreError>) {
    let mut page = Vec::new();
    let mut more = false;
    let r = store.read_new_lines(id, &mut cursor, after, |line, p| {
        if !sel.matches(p) {
            return true;
        }
        if let Some(entry) = build(p) {
            page.push(Followed {
                cursor: line + 1,
                entry,
            });
        }
        more = page.len() >= PAGE;
        !more
    });
    (cursor, page, more, r)
}

impl futures::Stream for FollowStream {
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
