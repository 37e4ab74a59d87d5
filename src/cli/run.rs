//! `logstore run`: runs one command as a one-task execution, capturing its output.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use logstore::capture::{
    CancelSignal, CaptureConfig, Isolation, PluginCommand, PluginId, Restricted, MAX_TIMEOUT,
};
use logstore::{run_plugin_task, Engine, ExecutionId, FinalState, Level, SystemClock, TaskId};

use super::CmdResult;

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Logs execution RUNNING, task start, the plugin's output, task completion \
(a retry entry and a new attempt on a non-zero exit while retries remain), and the execution's \
terminal state, then exits with the plugin's exit code (124 after --timeout, 130 after Ctrl-C)."
)]
pub struct Args {
    /// The execution id; without it one is made and printed on stderr.
    #[arg(long, value_name = "ID")]
    execution: Option<ExecutionId>,
    /// The task id.
    #[arg(long, value_name = "ID", default_value = "main")]
    task: TaskId,
    /// The plugin action, `<namespace>/<plugin>.<action>`.
    #[arg(long, value_name = "NS/PLUGIN.ACTION")]
    plugin: PluginId,
    /// Run COMMAND in a Docker container (no network, read-only root, no capabilities,
    /// non-root user, pids and memory limits) instead of as a child process.
    #[arg(long, requires = "image")]
    restricted: bool,
    /// The image for --restricted, present locally (nothing is pulled). Only with --restricted:
    /// alone it would run the plugin on the host while the caller believes it is contained.
    #[arg(long, value_name = "IMAGE", requires = "restricted")]
    image: Option<String>,
    /// Retries after a failed attempt (non-zero exit or killed by a signal).
    #[arg(long, value_name = "N", default_value_t = 0)]
    retries: u32,
    /// Kill the plugin after this many seconds (at most 31536000, 365 days); the execution
    /// ends CANCELLED.
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// Level of stderr lines that are not context.log records.
    #[arg(long, value_name = "LEVEL", default_value = "WARN")]
    stderr_level: Level,
    /// Keep every plain line at its pipe's level (stdout INFO, stderr --stderr-level) even when
    /// it starts with a level token such as `ERROR`, `[WARN]` or `level=error`.
    #[arg(long)]
    no_level_tokens: bool,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Runs the command as an execution in the store at `dir`.
pub fn run(dir: &Path, args: Args) -> CmdResult {
    let (program, rest) = args
        .command
        .split_first()
        .ok_or("no COMMAND given after `--`")?;
    let mut command = PluginCommand::trusted(program.clone(), rest.iter().cloned());
    if let Some(image) = args.restricted.then_some(args.image.clone()).flatten() {
        command.isolation = Isolation::Restricted(Restricted::new(image));
    }
    let execution_id = match args.execution {
        Some(id) => id,
        None => {
            let id = generated_id()?;
            eprintln!("execution {id}");
            id
        }
    };
    let config = CaptureConfig {
        timeout: args.timeout,
        stderr_plain_level: args.stderr_level,
        level_tokens: !args.no_level_tokens,
        ..CaptureConfig::default()
    };
    let store = Arc::new(super::open_for_writing(dir)?);
    let engine = Engine::new(store, Arc::new(SystemClock));
    let log = engine.start_execution(execution_id, &args.plugin.to_string())?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        let (cancel, signal) = CancelSignal::new();
        // Ctrl-C cancels the plugin; the execution then ends CANCELLED with its logs flushed.
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
        run_plugin_task(
            &log,
            &args.task,
            &args.plugin,
            &command,
            &config,
            args.retries,
            signal,
        )
        .await
    });
    match outcome {
        Ok(result) => {
            log.finish(result.final_state(), &result.reason(&args.task))?;
            Ok(ExitCode::from(
                u8::try_from(result.exit_code().clamp(0, 255)).unwrap_or(1),
            ))
        }
        Err(e) => {
            // The plugin never ran to an outcome (it could not start): the execution failed.
            log.finish(FinalState::Failed, &e.to_string())?;
            Err(e.into())
        }
    }
}

/// `--timeout`, checked by clap before anything runs (its error names the flag and the value):
/// a positive, finite number of seconds no larger than [`MAX_TIMEOUT`]. Larger values used to
/// panic converting to a `Duration` (1e20) or adding it to the clock (1e19).
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| "not a number of seconds".to_owned())?;
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err("must be a positive number of seconds".into());
    }
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if d <= MAX_TIMEOUT => Ok(d),
        _ => Err(format!(
            "over the maximum of {} seconds (365 days)",
            MAX_TIMEOUT.as_secs()
        )),
    }
}

/// `run-<unix ms>-<pid>`: unique per machine unless two runs share a pid in one millisecond.
fn generated_id() -> Result<ExecutionId, logstore::EntryError> {
    let ms = logstore::Clock::now_ms(&SystemClock);
    ExecutionId::new(format!("run-{ms}-{}", std::process::id()))
}
