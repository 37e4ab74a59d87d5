//! What to run and how to capture it: the plugin's command and its isolation (a child process,
//! or a Docker container in restricted mode), the capture's limits and timeouts, and why a run
//! could not start or be captured.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::limits::DEFAULT_MAX_OUTPUT_BYTES;
use logstore_store::Level;

/// The Docker CLI used for restricted mode.
pub const DOCKER_PROGRAM: &str = "docker";

/// The longest [`CaptureConfig::timeout`] and [`CaptureConfig::drain_timeout`]: 365 days.
///
/// A deadline is `now + timeout` on a monotonic clock, which overflows (and `Duration`
/// arithmetic panics) long before `Duration::MAX`; a year is far past any real task and far
/// from any overflow, so a longer value is refused rather than silently shortened.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// How isolated a plugin runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Isolation {
    /// A child process of the engine, with the engine's user and network. Its environment holds
    /// only `PATH` and the command's `env`.
    Trusted,
    /// A Docker container: no network, read-only root, no capabilities, no privilege gain, a pid
    /// and memory limit, user `nobody` (65534:65534), a private 16 MiB tmpfs on `/tmp`.
    Restricted(Restricted),
}

/// The settings of a restricted (Docker) run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restricted {
    /// The image, already present locally: nothing is pulled (`--pull never`), and a missing
    /// image is a [`CaptureError::Image`].
    pub image: String,
    /// The memory limit in Docker's syntax: digits and an optional unit `b`, `k`, `m` or `g`.
    pub memory: String,
    /// The most processes (threads included) the container may hold.
    pub pids: u32,
    /// Host directories mounted read-only: `(host path, container path)`.
    pub read_only_mounts: Vec<(PathBuf, PathBuf)>,
}

impl Restricted {
    /// `image` with 256 MiB of memory, 64 pids and no mounts.
    pub fn new(image: impl Into<String>) -> Restricted {
        Restricted {
            image: image.into(),
            memory: "256m".into(),
            pids: 64,
            read_only_mounts: Vec::new(),
        }
    }
}

/// What to run for a plugin action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginCommand {
    /// The program (inside the container in restricted mode).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment variables given to the plugin (in restricted mode, to the container only,
    /// through a private env-file: a value may not hold a line break there).
    pub env: Vec<(String, String)>,
    /// The working directory (inside the container in restricted mode).
    pub cwd: Option<PathBuf>,
    /// Trusted process or restricted container.
    pub isolation: Isolation,
}

impl PluginCommand {
    /// A trusted command with no environment and the engine's working directory.
    pub fn trusted(
        program: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> PluginCommand {
        PluginCommand {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            cwd: None,
            isolation: Isolation::Trusted,
        }
    }

    /// The same command in a restricted container.
    pub fn restricted(mut self, restricted: Restricted) -> PluginCommand {
        self.isolation = Isolation::Restricted(restricted);
        self
    }
}

/// The capture settings of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureConfig {
    /// Raw stdout + stderr bytes kept per attempt (each run of the plugin has its own budget);
    /// the rest is read and dropped. 10 MiB by default.
    pub max_output_bytes: u64,
    /// The level of stderr lines that are not `context.log` records. WARN by default.
    pub stderr_plain_level: Level,
    /// Whether a plain line (stdout or stderr) that starts with a level token (`ERROR`,
    /// `[WARN]`, `level=error`, `W1125 ...`, `error:`, env_logger's `[... ERROR target]`) gets
    /// that level instead of its pipe's. On by default; see `capture::level_token`'s grammar.
    pub level_tokens: bool,
    /// How long to wait, once the plugin has exited, for its pipes to close (a background
    /// process may hold them). 2 s by default. At most [`MAX_TIMEOUT`].
    pub drain_timeout: Duration,
    /// Kills the plugin if it runs longer. None by default. At most [`MAX_TIMEOUT`].
    pub timeout: Option<Duration>,
}

impl CaptureConfig {
    /// Checks the settings that could not be used as given: a timeout past [`MAX_TIMEOUT`].
    pub fn check(&self) -> Result<(), CaptureError> {
        let too_long = |field: &'static str, value: Duration| CaptureError::InvalidConfig {
            field,
            reason: format!(
                "{} s is over the maximum of {} s (365 days)",
                value.as_secs_f64(),
                MAX_TIMEOUT.as_secs()
            ),
        };
        if let Some(t) = self.timeout.filter(|t| *t > MAX_TIMEOUT) {
            return Err(too_long("timeout", t));
        }
        if self.drain_timeout > MAX_TIMEOUT {
            return Err(too_long("drain_timeout", self.drain_timeout));
        }
        Ok(())
    }
}

impl Default for CaptureConfig {
    fn default() -> CaptureConfig {
        CaptureConfig {
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            stderr_plain_level: Level::Warn,
            level_tokens: true,
            drain_timeout: Duration::from_secs(2),
            timeout: None,
        }
    }
}

/// Why a plugin could not be run or captured.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The command is unusable; nothing was started.
    #[error("invalid plugin command: {0}")]
    InvalidCommand(String),
    /// A [`CaptureConfig`] field is unusable; nothing was started.
    #[error("invalid CaptureConfig::{field}: {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The process (or the `docker` CLI) could not be started.
    #[error("cannot start {program:?}: {source} (is it installed and on PATH?)")]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Restricted mode: the image is missing (nothing is pulled) or cannot be looked up.
    #[error("restricted mode: image {image:?} {reason}")]
    Image {
        /// The image.
        image: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Restricted mode: the private env-file holding the plugin's variables cannot be written.
    #[error("restricted mode: cannot write the env-file for the container: {0}")]
    EnvFile(#[source] io::Error),
    /// Waiting for the process failed; it was killed.
    #[error("cannot wait for the plugin process: {0}")]
    Wait(#[source] io::Error),
    /// Reading a pipe failed; the process was run to its end and reaped, and the entries read
    /// before the failure were kept.
    #[error("cannot read the plugin's {stream}: {source}")]
    ReadPipe {
        /// `stdout` or `stderr`.
        stream: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}
