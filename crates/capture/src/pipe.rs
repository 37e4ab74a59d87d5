//! One output pipe of a plugin: read it to the end, count it against the task's budget, split it
//! into lines and turn each line into entries.
//!
//! stdout lines become INFO entries. stderr lines are `context.log` records (see
//! [`protocol`](super::protocol)) or plain text at the configured level. A plain line of either
//! pipe that starts with a level token ([`level_token`](super::level_token)) gets that level
//! instead, unless [`CaptureConfig::level_tokens`] is off; every part of a split line keeps the
//! level of its first part. A line longer than
//! [`MAX_MESSAGE_LEN`] becomes several entries whose metadata holds `"part"` (1-based) and
//! `"continued"` (true while more parts follow); a line that fits in one entry gets no such keys.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::command::CaptureConfig;
use super::context::CaptureContext;
use super::level_token::level_token;
use super::limits::{split_message, OutputBudget, MAX_RECORD_BYTES};
use super::lines::{LineSplitter, Piece};
use super::protocol::{leading_level, parse_line, MalformedRecord, StderrLine, RECORD_SEPARATOR};
use logstore_store::{EntrySink, Level, LogEntry, SinkError, MAX_MESSAGE_LEN};

/// Size of each read: large, so a flood costs few system calls.
const READ_SIZE: usize = 64 * 1024;

/// Which pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The plugin's stdout.
    Stdout,
    /// The plugin's stderr.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Builds the entries of one task and hands them to the sink.
///
/// A sink that fails does not stop capture: the plugin must be able to finish (and its pipes must
/// keep draining), so failures are counted and the first one is kept for the outcome.
pub(crate) struct EntryWriter<'a> {
    ctx: &'a CaptureContext,
    source: String,
    sink: &'a dyn EntrySink,
    lost: AtomicU64,
    first_error: Mutex<Option<SinkError>>,
}

impl<'a> EntryWriter<'a> {
    pub(crate) fn new(ctx: &'a CaptureContext, sink: &'a dyn EntrySink) -> EntryWriter<'a> {
        EntryWriter {
            ctx,
            source: ctx.plugin.source(),
            sink,
            lost: AtomicU64::new(0),
            first_error: Mutex::new(None),
        }
    }

    /// Appends one entry stamped now (and with the attempt, if the context has one). `message`
    /// must fit in [`MAX_MESSAGE_LEN`].
    pub(crate) fn write(
        &self,
        level: Level,
        message: &str,
        mut metadata: Option<Map<String, Value>>,
    ) {
        if let Some(attempt) = self.ctx.attempt {
            metadata
                .get_or_insert_with(Map::new)
                .insert("attempt".into(), Value::from(attempt));
        }
        let mut entry = LogEntry::new(
            self.ctx.execution_id.clone(),
            self.ctx.clock.now_ms(),
            level,
            self.source.clone(),
            message,
        )
        .with_task(self.ctx.task_id.clone());
        entry.metadata = metadata;
        if let Err(e) = self.sink.append(entry) {
            self.lost.fetch_add(1, Ordering::Relaxed);
            self.first_error.lock().get_or_insert(e);
        }
    }

    /// Appends a WARN entry written by the capture layer itself (truncation, kills); its metadata
    /// holds `"capture": <event>` so readers can tell it from plugin output.
    pub(crate) fn capture_warning(
        &self,
        event: &str,
        message: &str,
        mut metadata: Map<String, Value>,
    ) {
        metadata.insert("capture".into(), Value::from(event));
        self.write(Level::Warn, message, Some(metadata));
    }

    /// The secrets the sink masks in this execution (see [`EntrySink::secrets`]).
    pub(crate) fn secrets(&self) -> Vec<String> {
        self.sink.secrets(&self.ctx.execution_id)
    }

    /// Entries the sink refused, and the first refusal.
    pub(crate) fn into_losses(self) -> (u64, Option<SinkError>) {
        (self.lost.into_inner(), self.first_error.into_inner())
    }
}

/// Turns the pieces of one pipe's lines into entries.
struct LineToEntries<'w, 'a> {
    writer: &'w EntryWriter<'a>,
    stream: Stream,
    stderr_plain_level: Level,
    /// Whether a level token at the start of a plain line sets its level.
    level_tokens: bool,
    /// The level of the current plain line, set by its first piece and kept by the others.
    line_level: Level,
    /// Entries already written for the current line (0 at the start of a line).
    parts: u64,
}

impl LineToEntries<'_, '_> {
    /// The level of a plain line that starts with `start`: its token's, else its pipe's.
    fn plain_level(&self, start: &[u8]) -> Level {
        let token = if self.level_tokens {
            level_token(start)
        } else {
            None
        };
        token.unwrap_or(match self.stream {
            Stream::Stdout => Level::Info,
            Stream::Stderr => self.stderr_plain_level,
        })
    }

    fn on_piece(&mut self, piece: Piece<'_>) {
        let starts_line = self.parts == 0;
        if !starts_line {
            self.emit(self.line_level, piece.bytes, piece.continues, None);
            return;
        }
        let level = self.plain_level(piece.bytes);
        self.line_level = level;
        if self.stream == Stream::Stdout {
            self.emit(level, piece.bytes, piece.continues, None);
            return;
        }
        if piece.continues {
            // A record must fit in one entry; this one reached us in pieces, so it is kept as
            // plain text (without the separator, which would only make it unreadable).
            if let Some(body) = piece.bytes.strip_prefix(&[RECORD_SEPARATOR]) {
                let why = MalformedRecord::TooLong {
                    max: MAX_RECORD_BYTES,
                };
                // Every part at the level the record names, if it names one up front.
                self.line_level = leading_level(body).unwrap_or(level);
                self.emit(self.line_level, body, true, Some(protocol_error(&why)));
            } else {
                self.emit(level, piece.bytes, true, None);
            }
            return;
        }
        match parse_line(piece.bytes) {
            StderrLine::Plain(text) => self.emit(level, text, false, None),
            StderrLine::Malformed(body, why) => {
                self.emit(level, body, false, Some(protocol_error(&why)))
            }
            StderrLine::Record(record) => {
                self.emit_text(record.level, &record.message, false, record.metadata)
            }
        }
    }

    fn emit(
        &mut self,
        level: Level,
        bytes: &[u8],
        continues: bool,
        extra: Option<Map<String, Value>>,
    ) {
        // Lossy: a plugin's bad bytes must never stop its capture.
        let text = String::from_utf8_lossy(bytes);
        self.emit_text(level, &text, continues, extra);
    }

    /// Writes `text` as one entry, or several if it is longer than an entry may be (a
    /// `context.log` message up to [`MAX_RECORD_BYTES`], or text that lossy decoding made
    /// longer: each invalid byte becomes the 3-byte U+FFFD). Every part has the level and the
    /// metadata. Text to be cut is masked first: a secret cut in two would escape the sink's
    /// masking, which sees one entry at a time.
    fn emit_text(
        &mut self,
        level: Level,
        text: &str,
        continues: bool,
        extra: Option<Map<String, Value>>,
    ) {
        let mut masked = None;
        if text.len() > MAX_MESSAGE_LEN {
            let secrets = self.writer.secrets();
            if !secrets.is_empty() {
                let mut owned = text.to_owned();
                crate::secrets::mask_str(&mut owned, &secrets);
                masked = Some(owned);
            }
        }
        let text = masked.as_deref().unwrap_or(text);
        let mut pieces = split_message(text, MAX_MESSAGE_LEN).peekable();
        if pieces.peek().is_none() {
            // An empty line is still a line.
            self.write_part(level, "", continues, extra);
            return;
        }
        while let Some(piece) = pieces.next() {
            let more = continues || pieces.peek().is_some();
            self.write_part(level, piece, more, extra.clone());
        }
    }

    fn write_part(
        &mut self,
        level: Level,
        text: &str,
        more: bool,
        extra: Option<Map<String, Value>>,
    ) {
        self.parts += 1;
        let split = self.parts > 1 || more;
        let metadata = if split {
            let mut m = extra.unwrap_or_default();
            m.insert("part".into(), Value::from(self.parts));
            m.insert("continued".into(), Value::from(more));
            Some(m)
        } else {
            extra
        };
        self.writer.write(level, text, metadata);
        if !more {
            self.parts = 0;
        }
    }
}

fn protocol_error(why: &MalformedRecord) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("protocol_error".into(), Value::from(why.to_string()));
    m
}

/// Reads `reader` to its end and writes its lines as entries.
///
/// Bytes past the task's budget are read and dropped, never left in the pipe: a plugin blocked
/// on a full pipe would never exit.
pub(crate) async fn pump<R: AsyncRead + Unpin>(
    mut reader: R,
    stream: Stream,
    cfg: &CaptureConfig,
    budget: &Mutex<OutputBudget>,
    writer: &EntryWriter<'_>,
) -> io::Result<()> {
    let mut buf = vec![0u8; READ_SIZE];
    let mut splitter = LineSplitter::new(MAX_MESSAGE_LEN);
    if stream == Stream::Stderr {
        // Records are parsed whole up to this size, so that a long one keeps its level.
        splitter = splitter.with_record_max(MAX_RECORD_BYTES);
    }
    let mut to_entries = LineToEntries {
        writer,
        stream,
        stderr_plain_level: cfg.stderr_plain_level,
        level_tokens: cfg.level_tokens,
        line_level: Level::Info,
        parts: 0,
    };
    let result = loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        };
        let kept = budget.lock().admit(n);
        if kept > 0 {
            // Secrets may be registered while the plugin runs: ask for each read (a few short
            // strings, against 64 KiB of output).
            splitter.keep_whole(writer.secrets());
            splitter.push(&buf[..kept], |p| to_entries.on_piece(p));
        }
    };
    // The last line may have no `\n`, or be cut short by the budget: it is kept either way.
    splitter.finish(|p| to_entries.on_piece(p));
    result
}
