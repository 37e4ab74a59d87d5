//! Plugin runtime capture: a plugin's stdout and stderr, turned into log entries.
//!
//! A plugin action runs as a trusted child process or in a restricted Docker container
//! ([`Isolation`]); either way its two pipes go through the same path:
//!
//! ```text
//! pipe --read 64 KiB--> OutputBudget --kept bytes--> LineSplitter --lines/pieces-->
//!   stdout: line with a level token -> entry at that level   (level_token)
//!           other line              -> INFO entry
//!   stderr: 0x1E record -> entry at its level with its metadata  (protocol)
//!           line with a level token -> entry at that level
//!           other line  -> entry at CaptureConfig::stderr_plain_level (WARN)
//! --> EntrySink
//! ```
//!
//! * [`lines`](LineSplitter): bytes to lines, `\n` or `\r\n`, a last line without `\n` kept,
//!   bytes untouched (decoded lossily only when the entry is built).
//! * [`protocol`](parse_line): the RFC 7464 `context.log` record; ids and source in a record are
//!   ignored, the engine's [`CaptureContext`] sets them.
//! * [`limits`](OutputBudget): 10 MiB of raw output (stdout + stderr) per attempt, then
//!   read-and-drop and one WARN entry; lines longer than 64 KiB become several entries marked
//!   `{"part": n, "continued": b}`.
//! * [`run_plugin`]: spawning, timeouts, cancellation, draining, killing.
//!
//! The plugin author's view of all this is `docs/PLUGINS.md`; `sdk/context.js` is the plugin
//! side of `context.log`.
//!
//! # Caveats
//!
//! These rules follow tokio's `process` module, whose caveats apply underneath.
//!
//! **Both pipes are read concurrently, to the end.** stdout and stderr are pumped by two futures
//! joined in the same task. A plugin that fills one pipe (64 KiB on Linux) while nobody reads it
//! blocks in `write` and never exits, so neither pipe is ever left unread, not even past the
//! output limit: excess bytes are read and discarded.
//!
//! **Process group.** The child is spawned with `process_group(0)`, so it leads a new group
//! holding everything it forks. Every kill (timeout, cancel, held pipes, end of run, drop) is a
//! `killpg(SIGKILL)` of that group: a plugin's grandchildren do not outlive its task. A process
//! that leaves the group (`setsid`) escapes this; if it keeps a pipe open, capture gives up on
//! that pipe after a second drain timeout.
//!
//! **The end of a run** is the process's exit *and* both pipes at end-of-file. A background
//! process can hold a pipe open after the plugin exits (`sh -c 'sleep 30 & echo hi'`); after
//! [`CaptureConfig::drain_timeout`] (2 s) a WARN entry says so and the group is killed.
//!
//! **Reaping.** [`run_plugin`] always waits for the child, so no zombie is left. If its future
//! is dropped mid-run, `kill_on_drop(true)` kills the child, tokio reaps it in the background
//! (on a best-effort basis, as tokio documents), and a drop guard kills the rest of the group and
//! (restricted mode) starts `docker rm -f` for the container.
//!
//! **Docker.** The `docker run` CLI does not forward SIGKILL to the container, so killing it
//! alone would leave the container running. A timeout or cancel therefore runs
//! `docker rm -f <name>` first (each run has a unique `--name`), then kills the CLI's group.
//! The container is started with `--rm` and `--log-driver none`, so nothing stays behind.
//!
//! **Timestamps** are taken when a line is read ([`Clock`](logstore_store::Clock)), not when it was written; lines of
//! stdout and stderr are ordered per pipe, not across pipes.

mod cancel;
mod command;
mod context;
mod docker;
mod engine;
mod image;
mod level_token;
mod limits;
mod lines;
mod pipe;
mod process;
mod protocol;
mod runner;
mod secrets;
mod trace;

pub use cancel::{CancelHandle, CancelSignal};
pub use command::{
    CaptureConfig, CaptureError, Isolation, PluginCommand, Restricted, DOCKER_PROGRAM, MAX_TIMEOUT,
};
pub use context::{CaptureContext, PluginId, PluginIdError, MAX_PLUGIN_ID_LEN};
pub use engine::{
    Engine, ExecutionLog, FinalState, TaskOutcome, MAX_VALUE_BYTES, PREVIEW_CHARS, WORKER_SOURCE,
};
pub use image::{build_node_image, docker_available, ImageError, IMAGE_SDK_PATH};
pub use level_token::level_token;
pub use limits::{
    cut_point, split_message, OutputBudget, DEFAULT_MAX_OUTPUT_BYTES, MAX_RECORD_BYTES,
};
pub use lines::{LineSplitter, Piece};
pub use pipe::Stream;
pub use process::{run_plugin, PluginEnd, PluginOutcome};
pub use protocol::{
    parse_line, parse_record, MalformedRecord, Record, StderrLine, RECORD_SEPARATOR,
};
pub use runner::{run_plugin_task, TaskError, TaskResult};
pub use secrets::MASK;
pub use trace::LogstoreLayer;
