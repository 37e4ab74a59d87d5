//! Running one plugin action and capturing its output: a trusted child process, or a restricted
//! Docker container run by the `docker` CLI, whose stdout and stderr are the container's. Both
//! go through the same capture code.
//!
//! See the [module caveats](super#caveats) for process groups, draining and reaping.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use parking_lot::Mutex;
use serde_json::{Map, Value};
use tokio::process::{Child, Command};
use tokio::time::{sleep_until, Instant};

use super::cancel::CancelSignal;
use super::command::{CaptureConfig, CaptureError, Isolation, PluginCommand, DOCKER_PROGRAM};
use super::context::CaptureContext;
use super::docker::{check_image, docker_command};
use super::limits::OutputBudget;
use super::pipe::{pump, EntryWriter, Stream};
use logstore_store::{EntrySink, SinkError};

/// How long `docker rm -f` may take when killing a container.
const DOCKER_KILL_TIMEOUT: Duration = Duration::from_secs(15);

/// How a plugin run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginEnd {
    /// The process exited with this code (for Docker, the container's code; 125..=127 are
    /// Docker's own failures, see `docker run --help`).
    Exited(i32),
    /// The process was killed by this signal, not by us.
    Signaled(i32),
    /// It ran past [`CaptureConfig::timeout`] and was killed.
    TimedOut,
    /// The [`CancelSignal`] fired and it was killed.
    Cancelled,
}

/// The result of a plugin run.
#[derive(Debug)]
pub struct PluginOutcome {
    /// How it ended.
    pub end: PluginEnd,
    /// Raw output bytes kept (both pipes).
    pub bytes_captured: u64,
    /// Raw output bytes read and discarded past the limit.
    pub bytes_dropped: u64,
    /// True if the pipes stayed open after the plugin exited, past the drain timeout.
    pub pipes_held_open: bool,
    /// Entries the sink refused.
    pub entries_lost: u64,
    /// The first refusal, if any.
    pub sink_error: Option<SinkError>,
}

impl PluginOutcome {
    /// True if the plugin exited with code 0.
    pub fn succeeded(&self) -> bool {
        self.end == PluginEnd::Exited(0)
    }
}

/// Runs `cmd` for the plugin action in `ctx` and writes everything it prints to `sink`.
///
/// Returns when the process has exited (or was killed) and both pipes are drained, or the drain
/// timeout passed. Entries carry `ctx`'s execution and task ids and the source
/// `plugin:<namespace>/<plugin>.<action>`.
pub async fn run_plugin(
    ctx: &CaptureContext,
    cmd: &PluginCommand,
    cfg: &CaptureConfig,
    sink: &dyn EntrySink,
    mut cancel: CancelSignal,
) -> Result<PluginOutcome, CaptureError> {
    cfg.check()?;
    let launch = Launch::prepare(ctx, cmd)?;
    if let Isolation::Restricted(r) = &cmd.isolation {
        check_image(&r.image).await?;
    }
    let (mut child, mut group) = launch.spawn()?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(CaptureError::InvalidCommand(
            "the child's pipes were not created".into(),
        ));
    };

    let writer = EntryWriter::new(ctx, sink);
    let budget = Mutex::new(OutputBudget::new(cfg.max_output_bytes));
    let mut killed: Option<PluginEnd> = None;
    let mut exit: Option<ExitStatus> = None;
    let mut pipes_result: Option<(io::Result<()>, io::Result<()>)> = None;
    let mut pipes_held_open = false;
    {
        // Both pipes are read concurrently, in this task: a plugin that fills one while we
        // wait on the other would block forever.
        let pipes = async {
            tokio::join!(
                pump(stdout, Stream::Stdout, cfg, &budget, &writer),
                pump(stderr, Stream::Stderr, cfg, &budget, &writer),
            )
        };
        tokio::pin!(pipes);
        // `check` bounded both timeouts, so these sums cannot overflow; `checked_add` keeps
        // even a clock near its end from panicking (no deadline is then "never").
        let deadline = cfg.timeout.and_then(|t| Instant::now().checked_add(t));
        let mut drain_deadline: Option<Instant> = None;

        while exit.is_none() || pipes_result.is_none() {
            tokio::select! {
                status = child.wait(), if exit.is_none() => {
                    exit = Some(status.map_err(CaptureError::Wait)?);
                    drain_deadline = Instant::now().checked_add(cfg.drain_timeout);
                }
                done = &mut pipes, if pipes_result.is_none() => pipes_result = Some(done),
                _ = sleep_until_opt(deadline), if exit.is_none() && killed.is_none() => {
                    let after = cfg.timeout.unwrap_or_default();
                    writer.capture_warning(
                        "timeout",
                        &format!("plugin timed out after {} ms; killing it", after.as_millis()),
                        Map::from_iter([("timeout_ms".into(), Value::from(u64::try_from(after.as_millis()).unwrap_or(u64::MAX)))]),
                    );
                    killed = Some(PluginEnd::TimedOut);
                    group.kill().await;
                }
                _ = cancel.cancelled(), if exit.is_none() && killed.is_none() => {
                    writer.capture_warning("cancelled", "plugin cancelled; killing it", Map::new());
                    killed = Some(PluginEnd::Cancelled);
                    group.kill().await;
                }
                _ = sleep_until_opt(drain_deadline), if exit.is_some() && pipes_result.is_none() => {
                    if pipes_held_open {
                        // Even the kill did not close them (a process that left the group
                        // holds them): give up on the rest of the output.
                        break;
                    }
                    pipes_held_open = true;
                    let waited = cfg.drain_timeout;
                    writer.capture_warning(
                        "pipes_held_open",
                        &format!(
                            "plugin exited but its output stayed open for {} ms (a background process still holds it); killing its process group",
                            waited.as_millis()
                        ),
                        Map::from_iter([("drain_timeout_ms".into(), Value::from(u64::try_from(waited.as_millis()).unwrap_or(u64::MAX)))]),
                    );
                    group.kill().await;
                    drain_deadline = Instant::now().checked_add(cfg.drain_timeout);
                }
            }
        }
    }
    // The task is over: nothing it started may outlive it.
    group.finish();

    let budget = budget.into_inner();
    warn_if_truncated(&writer, &budget);
    let (entries_lost, sink_error) = writer.into_losses();

    if let Some(results) = pipes_result {
        pipe_errors(results)?;
    }
    let end = match (killed, exit) {
        (Some(end), _) => end,
        (None, Some(status)) => end_of(status),
        // The loop only ends with an exit status.
        (None, None) => PluginEnd::Signaled(Signal::SIGKILL as i32),
    };
    Ok(PluginOutcome {
        end,
        bytes_captured: budget.captured(),
        bytes_dropped: budget.dropped(),
        pipes_held_open,
        entries_lost,
        sink_error,
    })
}

/// The one WARN entry of an attempt whose output went over the budget.
fn warn_if_truncated(writer: &EntryWriter<'_>, budget: &OutputBudget) {
    if !budget.truncated() {
        return;
    }
    writer.capture_warning(
            "truncated",
            &format!(
                "plugin output truncated: the limit of {} bytes per attempt (stdout and stderr together) was reached; {} more bytes were read and discarded",
                budget.limit(),
                budget.dropped()
            ),
            Map::from_iter([
                ("limit_bytes".into(), Value::from(budget.limit())),
                ("captured_bytes".into(), Value::from(budget.captured())),
                ("dropped_bytes".into(), Value::from(budget.dropped())),
            ]),
        );
}

/// The error of reading either pipe, if one failed.
fn pipe_errors((out, err): (io::Result<()>, io::Result<()>)) -> Result<(), CaptureError> {
    out.map_err(|source| CaptureError::ReadPipe {
        stream: Stream::Stdout.name(),
        source,
    })?;
    err.map_err(|source| CaptureError::ReadPipe {
        stream: Stream::Stderr.name(),
        source,
    })
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn end_of(status: ExitStatus) -> PluginEnd {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => PluginEnd::Exited(code),
        (None, Some(signal)) => PluginEnd::Signaled(signal),
        // Stopped or continued statuses are not returned by wait(); treat as a crash.
        (None, None) => PluginEnd::Exited(-1),
    }
}

/// A checked command, ready to start.
struct Launch {
    command: Command,
    program: String,
    container: Option<String>,
    env_file: Option<tempfile::NamedTempFile>,
}

impl Launch {
    fn prepare(ctx: &CaptureContext, cmd: &PluginCommand) -> Result<Launch, CaptureError> {
        if cmd.program.is_empty() {
            return Err(CaptureError::InvalidCommand("the program is empty".into()));
        }
        for (key, _) in &cmd.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(CaptureError::InvalidCommand(format!(
                    "environment variable name {key:?} is empty or holds `=` or NUL"
                )));
            }
        }
        let (mut command, program, container, env_file) = match &cmd.isolation {
            Isolation::Trusted => (trusted_command(cmd), cmd.program.clone(), None, None),
            Isolation::Restricted(r) => {
                let name = container_name(ctx);
                let run = docker_command(cmd, r, &name)?;
                (
                    run.command,
                    DOCKER_PROGRAM.to_owned(),
                    Some(name),
                    run.env_file,
                )
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so one killpg reaches the plugin's children too.
            .process_group(0)
            // If the run is dropped mid-way; `PluginProcess`'s drop kills the rest of the group.
            .kill_on_drop(true);
        Ok(Launch {
            command,
            program,
            container,
            env_file,
        })
    }

    fn spawn(mut self) -> Result<(Child, PluginProcess), CaptureError> {
        let child = self.command.spawn().map_err(|source| CaptureError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        // A child just spawned and not yet waited for always has its pid.
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| CaptureError::InvalidCommand("the child has no pid".into()))?;
        Ok((
            child,
            PluginProcess {
                group: Pid::from_raw(pid),
                container: self.container,
                _env_file: self.env_file,
                armed: true,
            },
        ))
    }
}

fn trusted_command(cmd: &PluginCommand) -> Command {
    let mut command = Command::new(&cmd.program);
    command.args(&cmd.args).env_clear();
    // The engine's PATH, so `node` resolves; nothing else of the engine's environment (its
    // secrets included) reaches the plugin.
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command.envs(cmd.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &cmd.cwd {
        command.current_dir(dir);
    }
    command
}

/// A container name unique on this host: the task (readable in `docker ps`), our pid and a
/// counter.
fn container_name(ctx: &CaptureContext) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let task: String = ctx
        .task_id
        .as_str()
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "logstore-{task}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The plugin's process group, and its container in restricted mode.
///
/// Dropping it kills both, so a run that is abandoned (its future dropped) leaves nothing
/// behind.
struct PluginProcess {
    group: Pid,
    container: Option<String>,
    /// The restricted run's env-file: kept (and so not deleted) until the run is over, since
    /// the CLI reads it at some point after its start.
    _env_file: Option<tempfile::NamedTempFile>,
    /// False once the run has ended and cleaned up: no more signals to a pgid that may be reused.
    armed: bool,
}

impl PluginProcess {
    /// Kills the container (if any) and every process in the group.
    async fn kill(&mut self) {
        if let Some(name) = &self.container {
            // Killing the CLI alone would leave the container running: SIGKILL is not
            // forwarded. `rm -f` kills and removes it.
            let removal = Command::new(DOCKER_PROGRAM)
                .args(["rm", "-f", name])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .status();
            match tokio::time::timeout(DOCKER_KILL_TIMEOUT, removal).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(container = %name, error = %e, "cannot run docker rm -f")
                }
                Err(_) => tracing::warn!(container = %name, "docker rm -f timed out"),
            }
        }
        self.kill_group();
    }

    fn kill_group(&self) {
        // ESRCH (the group is gone) is the normal case at the end of a run.
        let _ = killpg(self.group, Signal::SIGKILL);
    }

    /// Ends the run: kills what is left of the group (the container, if any, ended with its main
    /// process) and disarms the drop.
    fn finish(&mut self) {
        self.kill_group();
        self.container = None;
        self.armed = false;
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.kill_group();
        if let Some(name) = self.container.take() {
            // Cannot await here: start `docker rm -f` and reap it from a thread.
            let spawned = std::process::Command::new(DOCKER_PROGRAM)
                .args(["rm", "-f", &name])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            if let Ok(mut child) = spawned {
                std::thread::spawn(move || child.wait());
            }
        }
    }
}
