//! A task that runs a plugin, with its retry policy: the glue between the engine's task events
//! ([`ExecutionLog`]) and the plugin runtime ([`run_plugin`]).
//!
//! Each attempt logs task start (inputs: the command, its arguments and the attempt), streams
//! the plugin's output as entries, then task completion; every one of these entries has
//! `"attempt": N` in its metadata, so one attempt can be read on its own (`dump --attempt N`). A failed attempt (non-zero exit or a
//! signal) with retries left logs a retry entry and runs again. A timeout or a cancel is not
//! retried: the caller ends the execution CANCELLED.

use serde_json::json;

use crate::engine::{ExecutionLog, FinalState, TaskOutcome};
use crate::{
    run_plugin, CancelSignal, CaptureConfig, CaptureContext, CaptureError, PluginCommand,
    PluginEnd, PluginId,
};
use logstore_store::StoreError;
use logstore_store::TaskId;

/// Why a plugin task could not run to an outcome.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The plugin could not be started or captured.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The store refused the task's entries.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a plugin task ended after all its attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskResult {
    /// How the last attempt ended.
    pub end: PluginEnd,
    /// Attempts run (1 + retries used).
    pub attempts: u32,
}

impl TaskResult {
    /// The execution state this task implies if it is the execution's only (or failing) task.
    pub fn final_state(&self) -> FinalState {
        match self.end {
            PluginEnd::Exited(0) => FinalState::Success,
            PluginEnd::TimedOut | PluginEnd::Cancelled => FinalState::Cancelled,
            _ => FinalState::Failed,
        }
    }

    /// A one-line reason for the execution's terminal entry.
    pub fn reason(&self, task_id: &TaskId) -> String {
        let tries = if self.attempts == 1 {
            "1 attempt".to_owned()
        } else {
            format!("{} attempts", self.attempts)
        };
        match self.end {
            PluginEnd::Exited(0) => format!("task {task_id} succeeded after {tries}"),
            PluginEnd::Exited(code) => {
                format!("task {task_id} failed with exit code {code} after {tries}")
            }
            PluginEnd::Signaled(sig) => {
                format!("task {task_id} was killed by signal {sig} after {tries}")
            }
            PluginEnd::TimedOut => format!("task {task_id} timed out"),
            PluginEnd::Cancelled => format!("task {task_id} was cancelled"),
        }
    }

    /// The process exit code a CLI should exit with: the plugin's own code, 128 + signal for a
    /// signal, 124 for a timeout (as timeout(1)), 130 for a cancel (as after Ctrl-C).
    pub fn exit_code(&self) -> i32 {
        match self.end {
            PluginEnd::Exited(code) => code,
            PluginEnd::Signaled(sig) => 128 + sig,
            PluginEnd::TimedOut => 124,
            PluginEnd::Cancelled => 130,
        }
    }
}

/// Runs `cmd` as task `task_id` of `log`'s execution, retrying a failed attempt up to
/// `retries` times.
pub async fn run_plugin_task(
    log: &ExecutionLog,
    task_id: &TaskId,
    plugin: &PluginId,
    cmd: &PluginCommand,
    cfg: &CaptureConfig,
    retries: u32,
    cancel: CancelSignal,
) -> Result<TaskResult, TaskError> {
    let ctx = CaptureContext::new(log.execution_id().clone(), task_id.clone(), plugin.clone());
    // The engine's count: a task the caller already retried goes on from there.
    let mut attempt = log.task_attempt(task_id);
    let first = attempt;
    loop {
        let inputs = json!({"command": cmd.program, "args": cmd.args, "attempt": attempt});
        log.task_started(task_id, &plugin.source(), &inputs)?;
        let ctx = ctx.clone().with_attempt(attempt);
        let outcome = run_plugin(&ctx, cmd, cfg, &**log.engine(), cancel.clone()).await?;
        let result = TaskResult {
            end: outcome.end,
            attempts: attempt - first + 1,
        };
        let completion = match outcome.end {
            PluginEnd::Exited(0) => TaskOutcome::Success {
                outputs: json!({"exit_code": 0, "output_bytes": outcome.bytes_captured + outcome.bytes_dropped}),
            },
            _ => TaskOutcome::Failure {
                error: result.reason(task_id),
                stack: None,
            },
        };
        log.task_completed(task_id, &completion)?;
        let retryable = matches!(outcome.end, PluginEnd::Exited(c) if c != 0)
            || matches!(outcome.end, PluginEnd::Signaled(_));
        if !retryable || attempt - first >= retries {
            return Ok(result);
        }
        attempt += 1;
        let why = match outcome.end {
            PluginEnd::Exited(code) => format!("previous attempt exited with code {code}"),
            PluginEnd::Signaled(sig) => format!("previous attempt was killed by signal {sig}"),
            _ => "previous attempt failed".to_owned(),
        };
        log.task_retry(task_id, attempt, &why)?;
    }
}
