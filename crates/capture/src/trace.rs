//! Correlation through `tracing`: any engine component that logs inside a span carrying
//! `execution_id` (and optionally `task_id`) ends up in the store with those ids.
//!
//! ```
//! use std::sync::Arc;
//! use logstore_capture::{Engine, LogstoreLayer};
//! use logstore_store::{Durability, Filter, LogStore, SystemClock};
//! use tracing_subscriber::prelude::*;
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Arc::new(LogStore::open(dir.path()).unwrap());
//! let engine = Engine::new(store.clone(), Arc::new(SystemClock));
//! let subscriber = tracing_subscriber::registry().with(LogstoreLayer::new(engine));
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("execution", execution_id = "exec-42");
//!     let _in = span.enter();
//!     tracing::warn!(attempt = 2, "connection reset");
//! });
//! store.flush(Durability::Written).unwrap();
//! let id = "exec-42".parse().unwrap();
//! let entries = store.query(&id, &Filter::default()).unwrap();
//! assert_eq!(entries[0].message, "connection reset");
//! assert_eq!(entries[0].metadata.as_ref().unwrap()["attempt"], 2);
//! ```
//!
//! The entry's source is the event's target (its module path, unless set), its level the
//! event's (TRACE is stored as DEBUG), its message the `message` field, and its other fields go
//! to `metadata`. The nearest span with an `execution_id` wins, and likewise for `task_id`.
//! Events outside such a span are not stored; a layer never hides events from the
//! subscriber's other layers. Events of logstore itself are never stored (no feedback loop).

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::engine::Engine;
use logstore_store::{EntrySink, ExecutionId, Level, LogEntry, TaskId};

/// A `tracing_subscriber` layer that stores events of execution spans.
pub struct LogstoreLayer {
    engine: Arc<Engine>,
}

impl LogstoreLayer {
    /// A layer writing through `engine` (so secrets are masked).
    pub fn new(engine: Arc<Engine>) -> LogstoreLayer {
        LogstoreLayer { engine }
    }
}

/// The ids a span carries, kept in its extensions.
#[derive(Debug, Default, Clone)]
struct SpanIds {
    execution_id: Option<ExecutionId>,
    task_id: Option<TaskId>,
}

impl Visit for SpanIds {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "execution_id" => self.execution_id = ExecutionId::new(value).ok(),
            "task_id" => self.task_id = TaskId::new(value).ok(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `execution_id = %id` arrives here as Display-through-Debug.
        if matches!(field.name(), "execution_id" | "task_id") {
            self.record_str(field, format!("{value:?}").trim_matches('"'));
        }
    }
}

/// An event's message and other fields.
#[derive(Default)]
struct EventFields {
    message: String,
    fields: Map<String, Value>,
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.fields
                .insert(field.name().to_owned(), Value::from(value));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields
            .insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields
            .insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields
            .insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields
            .insert(field.name().to_owned(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

impl<S> Layer<S> for LogstoreLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut ids = SpanIds::default();
        attrs.record(&mut ids);
        if ids.execution_id.is_some() || ids.task_id.is_some() {
            if let Some(span) = ctx.span(id) {
                span.extensions_mut().insert(ids);
            }
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        let mut ids = ext.get_mut::<SpanIds>().cloned().unwrap_or_default();
        values.record(&mut ids);
        ext.replace(ids);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        if meta.target().starts_with("logstore") {
            return;
        }
        let (mut execution_id, mut task_id) = (None, None);
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(ids) = span.extensions().get::<SpanIds>() {
                    if task_id.is_none() {
                        task_id.clone_from(&ids.task_id);
                    }
                    if execution_id.is_none() {
                        execution_id.clone_from(&ids.execution_id);
                    }
                }
                if execution_id.is_some() && task_id.is_some() {
                    break;
                }
            }
        }
        let Some(execution_id) = execution_id else {
            return;
        };
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let level = match *meta.level() {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::INFO => Level::Info,
            _ => Level::Debug,
        };
        let entry = LogEntry {
            execution_id,
            timestamp: self.engine.now_ms(),
            level,
            source: meta.target().to_owned(),
            message: fields.message,
            task_id,
            metadata: (!fields.fields.is_empty()).then_some(fields.fields),
        };
        if let Err(e) = EntrySink::append(&*self.engine, entry) {
            // Not through tracing: that could come straight back here.
            eprintln!("logstore: could not store a tracing event: {e}");
        }
    }
}
