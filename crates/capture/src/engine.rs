//! The engine side: an execution's lifecycle entries, task events, and secret masking.
//!
//! [`Engine`] wraps the store for the workflow engine. Every entry of an execution, whatever
//! produced it (the lifecycle calls below, the [`tracing` layer](crate::LogstoreLayer), plugin
//! capture), goes through [`Engine`]'s [`EntrySink`], which replaces the execution's registered
//! secrets with `***` before the entry is stored, as CI systems mask secrets.
//!
//! Lifecycle entries (source `scheduler`):
//! - RUNNING: INFO, metadata `{"state": "RUNNING", "workflow": ...}`.
//! - terminal: SUCCESS INFO, FAILED ERROR, CANCELLED WARN; metadata `{"state", "duration_ms",
//!   "reason"}`; flushed and fsynced before [`ExecutionLog::finish`] returns.
//!
//! Task entries (source `worker`, with `task_id`): start (INFO, type and inputs), completion
//! (INFO with outputs, or ERROR with the error and its stack), retry (WARN, attempt and reason).
//! Start and completion carry `"attempt": N` in their metadata: 1, then the number given to the
//! last [`task_retry`](ExecutionLog::task_retry) of that task (the plugin runner also stamps it
//! on every entry of the attempt's plugin output).
//! Inputs and outputs are JSON: the message shows at most [`PREVIEW_CHARS`] of them, the
//! metadata keeps them whole up to [`MAX_VALUE_BYTES`] and a preview beyond.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde_json::{json, Map, Value};

use super::secrets::{mask_str, mask_value};
use logstore_store::Clock;
use logstore_store::{
    EntrySink, ExecutionId, Level, LogEntry, LogStore, SinkError, TaskId, SCHEDULER_SOURCE,
};
use logstore_store::{Result, StoreError};

/// The source of task events.
pub const WORKER_SOURCE: &str = "worker";
/// How much of an input or output JSON the message shows, in characters.
pub const PREVIEW_CHARS: usize = 200;
/// Inputs and outputs larger than this (as JSON) are kept in metadata as a preview only.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalState {
    /// Every task succeeded.
    Success,
    /// A task failed for good.
    Failed,
    /// Stopped by a user, a timeout or the engine.
    Cancelled,
}

impl FinalState {
    /// `SUCCESS`, `FAILED` or `CANCELLED`.
    pub fn as_str(self) -> &'static str {
        match self {
            FinalState::Success => "SUCCESS",
            FinalState::Failed => "FAILED",
            FinalState::Cancelled => "CANCELLED",
        }
    }

    /// INFO for success, ERROR for failure, WARN for a cancel (recoverable, not a failure).
    pub fn level(self) -> Level {
        match self {
            FinalState::Success => Level::Info,
            FinalState::Failed => Level::Error,
            FinalState::Cancelled => Level::Warn,
        }
    }
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    /// It succeeded with these outputs.
    Success {
        /// The task's outputs.
        outputs: Value,
    },
    /// It failed.
    Failure {
        /// The error message.
        error: String,
        /// The stack or details, if any.
        stack: Option<String>,
    },
}

/// The log side of the workflow engine: a masking sink in front of the store.
pub struct Engine {
    store: Arc<LogStore>,
    clock: Arc<dyn Clock>,
    secrets: RwLock<HashMap<ExecutionId, Vec<String>>>,
}

impl Engine {
    /// An engine writing to `store`, stamping entries with `clock`.
    pub fn new(store: Arc<LogStore>, clock: Arc<dyn Clock>) -> Arc<Engine> {
        Arc::new(Engine {
            store,
            clock,
            secrets: RwLock::new(HashMap::new()),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<LogStore> {
        &self.store
    }

    /// Now, in Unix ms, by the engine's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Registers a secret value of an execution: from now on every entry of that execution
    /// stores `***` in its place, in the message and in every string of the metadata.
    pub fn register_secret(&self, execution_id: &ExecutionId, value: impl Into<String>) {
        let value = value.into();
        if value.is_empty() {
            return;
        }
        let mut secrets = self.secrets.write();
        let list = secrets.entry(execution_id.clone()).or_default();
        list.push(value);
        // Longest first, so a secret that contains another is masked whole.
        list.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Logs the execution's RUNNING entry and returns its handle.
    pub fn start_execution(
        self: &Arc<Self>,
        execution_id: ExecutionId,
        workflow: &str,
    ) -> Result<ExecutionLog> {
        let started_ms = self.now_ms();
        let log = ExecutionLog {
            engine: Arc::clone(self),
            execution_id,
            started_ms,
            tasks: Mutex::new(HashMap::new()),
        };
        let meta = object(json!({"state": "RUNNING", "workflow": workflow}));
        log.emit(
            Level::Info,
            SCHEDULER_SOURCE,
            None,
            format!(
                "execution {} started (workflow {workflow})",
                log.execution_id
            ),
            Some(meta),
        )?;
        Ok(log)
    }

    fn mask(&self, entry: &mut LogEntry) {
        let secrets = self.secrets.read();
        let Some(list) = secrets.get(&entry.execution_id) else {
            return;
        };
        mask_str(&mut entry.message, list);
        if let Some(meta) = entry.metadata.as_mut() {
            for v in meta.values_mut() {
                mask_value(v, list);
            }
        }
    }

    fn forget(&self, execution_id: &ExecutionId) {
        self.secrets.write().remove(execution_id);
    }
}

impl EntrySink for Engine {
    fn append(&self, mut entry: LogEntry) -> Result<(), SinkError> {
        self.mask(&mut entry);
        self.store
            .append(&entry)
            .map_err(|e| SinkError(Box::new(e)))
    }

    fn secrets(&self, execution_id: &ExecutionId) -> Vec<String> {
        self.secrets
            .read()
            .get(execution_id)
            .cloned()
            .unwrap_or_default()
    }
}

/// One running execution's log: lifecycle and task events. Dropping it without
/// [`finish`](ExecutionLog::finish) logs nothing more; the engine should always finish.
pub struct ExecutionLog {
    engine: Arc<Engine>,
    execution_id: ExecutionId,
    started_ms: i64,
    tasks: Mutex<HashMap<TaskId, TaskState>>,
}

/// What the log remembers of a task: when its current attempt started, and which attempt it is.
#[derive(Debug, Clone, Copy)]
struct TaskState {
    started_ms: Option<i64>,
    attempt: u32,
}

impl Default for TaskState {
    fn default() -> TaskState {
        TaskState {
            started_ms: None,
            attempt: 1,
        }
    }
}

impl ExecutionLog {
    /// The execution.
    pub fn execution_id(&self) -> &ExecutionId {
        &self.execution_id
    }

    /// The engine (its sink masks this execution's secrets).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Registers a secret of this execution (see [`Engine::register_secret`]).
    pub fn register_secret(&self, value: impl Into<String>) {
        self.engine.register_secret(&self.execution_id, value);
    }

    /// Logs any entry of this execution (masked like every other).
    pub fn emit(
        &self,
        level: Level,
        source: &str,
        task_id: Option<&TaskId>,
        message: String,
        metadata: Option<Map<String, Value>>,
    ) -> Result<()> {
        let entry = LogEntry {
            execution_id: self.execution_id.clone(),
            timestamp: self.engine.now_ms(),
            level,
            source: source.to_owned(),
            message,
            task_id: task_id.cloned(),
            metadata,
        };
        EntrySink::append(&*self.engine, entry).map_err(into_store_error)
    }

    /// The attempt a task is on: 1, or the number given to its last
    /// [`task_retry`](ExecutionLog::task_retry).
    pub fn task_attempt(&self, task_id: &TaskId) -> u32 {
        self.tasks
            .lock()
            .get(task_id)
            .map_or(1, |state| state.attempt)
    }

    /// A task began on a worker: INFO with its type, inputs and attempt.
    pub fn task_started(&self, task_id: &TaskId, task_type: &str, inputs: &Value) -> Result<()> {
        let attempt = {
            let mut tasks = self.tasks.lock();
            let state = tasks.entry(task_id.clone()).or_default();
            state.started_ms = Some(self.engine.now_ms());
            state.attempt
        };
        let meta = object(json!({
            "event": "task_started",
            "task_type": task_type,
            "inputs": bounded(inputs),
            "attempt": attempt,
        }));
        self.emit(
            Level::Info,
            WORKER_SOURCE,
            Some(task_id),
            format!(
                "task {task_id} started: type {task_type}, inputs {}",
                preview(inputs)
            ),
            Some(meta),
        )
    }

    /// A task completed: INFO with its outputs, or ERROR with the error and its stack; both
    /// with the attempt.
    pub fn task_completed(&self, task_id: &TaskId, outcome: &TaskOutcome) -> Result<()> {
        let (started_ms, attempt) = {
            let mut tasks = self.tasks.lock();
            let state = tasks.entry(task_id.clone()).or_default();
            (state.started_ms.take(), state.attempt)
        };
        let duration_ms = started_ms.map_or(0, |start| self.engine.now_ms().saturating_sub(start));
        let (level, message, meta) = match outcome {
            TaskOutcome::Success { outputs } => (
                Level::Info,
                format!(
                    "task {task_id} succeeded in {duration_ms} ms: outputs {}",
                    preview(outputs)
                ),
                json!({"event": "task_completed", "status": "SUCCESS", "duration_ms": duration_ms, "outputs": bounded(outputs), "attempt": attempt}),
            ),
            TaskOutcome::Failure { error, stack } => {
                let mut meta = json!({"event": "task_completed", "status": "FAILED", "duration_ms": duration_ms, "attempt": attempt});
                put_text(&mut meta, "error", error);
                match stack {
                    Some(stack) => put_text(&mut meta, "stack", stack),
                    None => meta["stack"] = Value::Null,
                }
                (
                    Level::Error,
                    format!(
                        "task {task_id} failed after {duration_ms} ms: {}",
                        headline(error)
                    ),
                    meta,
                )
            }
        };
        self.emit(
            level,
            WORKER_SOURCE,
            Some(task_id),
            message,
            Some(object(meta)),
        )
    }

    /// A task is retried by its retry policy: WARN with the attempt number (of the attempt
    /// about to run, starting at 2) and the reason. The task's next start and completion carry
    /// this attempt number.
    pub fn task_retry(&self, task_id: &TaskId, attempt: u32, reason: &str) -> Result<()> {
        self.tasks
            .lock()
            .entry(task_id.clone())
            .or_default()
            .attempt = attempt;
        let mut meta = json!({"event": "task_retry", "attempt": attempt});
        put_text(&mut meta, "reason", reason);
        self.emit(
            Level::Warn,
            WORKER_SOURCE,
            Some(task_id),
            format!(
                "task {task_id} retrying: attempt {attempt}, reason: {}",
                headline(reason)
            ),
            Some(object(meta)),
        )
    }

    /// The execution reached its final state: logs the terminal entry (state, duration,
    /// reason), then flushes and fsyncs; when this returns `Ok`, every entry of the execution
    /// survives a power cut.
    ///
    /// The terminal entry is always written: a reason longer than [`MAX_VALUE_BYTES`] is
    /// shortened (its full size in `reason_bytes`), and if the entry is still refused (say, a
    /// secret mask made it grow past a limit) it is written again without the reason.
    pub fn finish(self, state: FinalState, reason: &str) -> Result<()> {
        let duration_ms = self.engine.now_ms().saturating_sub(self.started_ms);
        let mut meta = json!({"state": state.as_str(), "duration_ms": duration_ms});
        put_text(&mut meta, "reason", reason);
        let message = format!(
            "execution {} {} after {duration_ms} ms: {}",
            self.execution_id,
            state.as_str(),
            headline(reason)
        );
        let emit = |message, meta| {
            self.emit(
                state.level(),
                SCHEDULER_SOURCE,
                None,
                message,
                Some(object(meta)),
            )
        };
        let logged = emit(message, meta).or_else(|refused| {
            let message = format!(
                "execution {} {} after {duration_ms} ms (reason not stored)",
                self.execution_id,
                state.as_str()
            );
            let meta = json!({"state": state.as_str(), "duration_ms": duration_ms,
                "reason_bytes": reason.len(), "reason_refused": refused.to_string()});
            emit(message, meta).map_err(|_| refused)
        });
        // Flush even if the terminal entry was refused: what was accepted must be durable.
        let synced = self.engine.store.finish_execution(&self.execution_id);
        self.engine.forget(&self.execution_id);
        logged.and(synced)
    }

    /// [`finish`](ExecutionLog::finish) for async engines: the same terminal entry, flush and
    /// fsync, run on Tokio's blocking pool (`spawn_blocking`), so that no runtime worker thread
    /// waits for the disk. Finishes in flight together still share fsyncs: each waits in the
    /// store's group commit like a thread calling `finish`. Must be awaited inside a Tokio
    /// runtime; if the runtime shuts down before the blocking task runs, the error says so and
    /// nothing of the execution is synced by this call.
    pub async fn finish_async(self, state: FinalState, reason: impl Into<String>) -> Result<()> {
        let reason = reason.into();
        let dir = self.engine.store.dir().to_owned();
        match tokio::task::spawn_blocking(move || self.finish(state, &reason)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::Io {
                op: "finish the execution (the Tokio runtime shut down)",
                path: dir,
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }
}

fn into_store_error(e: SinkError) -> StoreError {
    match e.0.downcast::<StoreError>() {
        Ok(e) => *e,
        Err(other) => StoreError::Io {
            op: "append",
            path: std::path::PathBuf::new(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The longest first line a lifecycle message quotes, in bytes.
const HEADLINE_BYTES: usize = 1024;

/// The first line of `s`, shortened to [`HEADLINE_BYTES`]: what a message quotes of a reason
/// or an error, which may be megabytes long and must not push the message past its limit.
fn headline(s: &str) -> Cow<'_, str> {
    shorten(first_line(s), HEADLINE_BYTES)
}

/// `text`, or its first `max` bytes (cut on a character boundary) followed by `...`.
fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Cow::Owned(format!("{}...", &text[..cut]))
}

/// Sets `meta[key]` to `text` shortened to [`MAX_VALUE_BYTES`]; when it had to be shortened,
/// `meta[key_bytes]` holds the full size, so an over-long reason, error or stack can never make
/// the entry fail validation (its metadata is bounded at 256 KiB).
fn put_text(meta: &mut Value, key: &str, text: &str) {
    let kept = shorten(text, MAX_VALUE_BYTES);
    if matches!(kept, Cow::Owned(_)) {
        meta[format!("{key}_bytes")] = Value::from(text.len());
    }
    meta[key] = Value::from(kept.into_owned());
}

/// At most [`PREVIEW_CHARS`] characters of `v` as JSON, with `...` when shortened.
fn preview(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// `v` itself if its JSON is at most [`MAX_VALUE_BYTES`], else a marker with a preview.
fn bounded(v: &Value) -> Value {
    let text = v.to_string();
    if text.len() <= MAX_VALUE_BYTES {
        return v.clone();
    }
    let mut cut = 1024.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    json!({"truncated": true, "json_bytes": text.len(), "preview": &text[..cut]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_reaches_nested_metadata_and_prefers_longest() {
        let secrets = vec!["hunter22".to_owned(), "hunter2".to_owned()];
        let mut v = json!({"a": ["x hunter22 y", {"b": "hunter2"}], "n": 5});
        mask_value(&mut v, &secrets);
        assert_eq!(v, json!({"a": ["x *** y", {"b": "***"}], "n": 5}));
    }

    #[test]
    fn big_values_are_previewed_and_bounded() {
        let big = Value::String("é".repeat(20_000));
        assert!(preview(&big).chars().count() <= PREVIEW_CHARS + 3);
        let b = bounded(&big);
        assert_eq!(b["truncated"], json!(true));
        assert!(b["preview"].as_str().unwrap().len() <= 1024);
        let small = json!({"k": 1});
        assert_eq!(bounded(&small), small);
    }
}
