//! The `docker run` command line of a restricted plugin, built so that nothing the plugin's
//! settings hold can reconfigure the `docker` CLI or add options to it.
//!
//! * **Environment.** The plugin's variables go to the container only, through `--env-file`: a
//!   private file (mode 0600, random name, in the temp directory) that lives until the run
//!   ends. They are never set on the CLI process, where `DOCKER_HOST`, `DOCKER_CONFIG` or
//!   `PATH` would change which daemon, credentials or binary the CLI uses. `-e KEY=VALUE` would
//!   be simpler but puts every value (secrets included) on a command line that any local user
//!   reads in `ps` or `/proc/<pid>/cmdline`; `--env KEY` reads the value from the CLI's own
//!   environment, the leak this replaces. An env-file holds one `KEY=VALUE` per line and the
//!   CLI takes the value verbatim, so only a value with a line break (or a key docker would
//!   read otherwise: whitespace, a leading `#`) cannot be carried: it is refused by name.
//! * **Mounts.** Docker parses a `--mount` value as one CSV record (Go's `encoding/csv`), so a
//!   field holding a comma or a quote is written quoted, quotes doubled: a host path such as
//!   `/data/x,readonly=false` stays a path. A path that is not UTF-8 or holds a line break
//!   cannot be written faithfully and is refused.
//! * **Images.** `--pull never`, and the image is looked up first (`docker image inspect`), so
//!   a missing image is a [`CaptureError::Image`] naming it, never a pull.

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use tempfile::NamedTempFile;
use tokio::process::Command;

use super::command::{CaptureError, PluginCommand, Restricted, DOCKER_PROGRAM};

/// The `docker run` command of a restricted plugin, and the env-file it reads (deleted when
/// dropped, so it must outlive the CLI's start: the caller keeps it until the run ends).
pub(super) struct DockerRun {
    pub(super) command: Command,
    pub(super) env_file: Option<NamedTempFile>,
}

/// Builds `docker run` for `cmd` in container `name`.
pub(super) fn docker_command(
    cmd: &PluginCommand,
    r: &Restricted,
    name: &str,
) -> Result<DockerRun, CaptureError> {
    check_settings(r)?;
    let mut args: Vec<OsString> = [
        "run",
        "--rm",
        "-i",
        "--name",
        name,
        // The docs promise nothing is pulled; `check_image` ran first, this closes the race.
        "--pull",
        "never",
        "--network",
        "none",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--user",
        "65534:65534",
        // The output is captured here; the daemon keeping a second copy would only cost disk.
        "--log-driver",
        "none",
        // A writable scratch /tmp owned by the plugin's user (`mode=` is ignored by some
        // daemons, `uid=`/`gid=` is not).
        "--tmpfs",
        "/tmp:rw,noexec,nosuid,size=16m,uid=65534,gid=65534",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push("--pids-limit".into());
    args.push(r.pids.to_string().into());
    args.push("--memory".into());
    args.push(r.memory.clone().into());
    for (host, inside) in &r.read_only_mounts {
        args.push("--mount".into());
        args.push(mount_spec(host, inside)?.into());
    }
    let env_file = env_file(&cmd.env)?;
    if let Some(file) = &env_file {
        args.push("--env-file".into());
        args.push(file.path().into());
    }
    if let Some(dir) = &cmd.cwd {
        args.push("--workdir".into());
        args.push(dir.into());
    }
    args.push(r.image.clone().into());
    args.push(cmd.program.clone().into());
    args.extend(cmd.args.iter().map(OsString::from));

    let mut command = Command::new(DOCKER_PROGRAM);
    // The CLI keeps the engine's environment (DOCKER_HOST, HOME and the like), and only that.
    command.args(args);
    Ok(DockerRun { command, env_file })
}

fn check_settings(r: &Restricted) -> Result<(), CaptureError> {
    if r.image.is_empty() || r.image.starts_with('-') {
        return Err(CaptureError::InvalidCommand(format!(
            "invalid image {:?}",
            r.image
        )));
    }
    let memory_ok = {
        let digits = r
            .memory
            .trim_end_matches(['b', 'k', 'm', 'g', 'B', 'K', 'M', 'G']);
        !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && r.memory.len() - digits.len() <= 1
    };
    if !memory_ok {
        return Err(CaptureError::InvalidCommand(format!(
            "invalid memory limit {:?}: expected digits and an optional unit b, k, m or g",
            r.memory
        )));
    }
    if r.pids == 0 {
        return Err(CaptureError::InvalidCommand(
            "the pid limit must be at least 1".into(),
        ));
    }
    Ok(())
}

/// The `--mount` value of a read-only bind mount, each field CSV-quoted when it needs it.
fn mount_spec(host: &Path, inside: &Path) -> Result<String, CaptureError> {
    fn text(p: &Path) -> Result<&str, CaptureError> {
        p.to_str()
            .filter(|s| !s.contains(['\n', '\r']))
            .ok_or_else(|| {
                CaptureError::InvalidCommand(format!(
                    "mount path {p:?} is not UTF-8 or holds a line break; docker cannot be given it"
                ))
            })
    }
    let fields = [
        "type=bind".to_owned(),
        "readonly".to_owned(),
        format!("source={}", text(host)?),
        format!("target={}", text(inside)?),
    ];
    Ok(fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(","))
}

/// One CSV field as Go's `encoding/csv` reads it: quoted, with quotes doubled, if it holds a
/// comma or a quote (or starts with a space, which a quoted field keeps unambiguous).
fn csv_field(field: &str) -> String {
    if field.contains([',', '"']) || field.starts_with(' ') {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// Writes the plugin's variables to a private env-file; `None` if there are none.
fn env_file(env: &[(String, String)]) -> Result<Option<NamedTempFile>, CaptureError> {
    if env.is_empty() {
        return Ok(None);
    }
    let mut text = String::new();
    for (key, value) in env {
        if key.starts_with('#') || key.chars().any(char::is_whitespace) {
            return Err(CaptureError::InvalidCommand(format!(
                "environment variable name {key:?} starts with `#` or holds whitespace; docker's env-file cannot carry it"
            )));
        }
        if value.contains(['\n', '\r', '\0']) {
            return Err(CaptureError::InvalidCommand(format!(
                "the value of environment variable {key} holds a line break or NUL; restricted mode passes values in an env-file, one per line, and cannot carry it"
            )));
        }
        text.push_str(key);
        text.push('=');
        text.push_str(value);
        text.push('\n');
    }
    let io = |e: std::io::Error| CaptureError::EnvFile(e);
    // tempfile creates it with O_EXCL and mode 0600: no other user can read the values.
    let mut file = tempfile::Builder::new()
        .prefix("logstore-env-")
        .tempfile()
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(Some(file))
}

/// Checks that `image` is present locally: nothing is ever pulled.
pub(super) async fn check_image(image: &str) -> Result<(), CaptureError> {
    let out = Command::new(DOCKER_PROGRAM)
        .args(["image", "inspect", "--format", "{{.Id}}", "--", image])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| CaptureError::Spawn {
            program: DOCKER_PROGRAM.to_owned(),
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reason = if stderr.to_ascii_lowercase().contains("no such image") {
        "is not present locally (nothing is pulled in restricted mode: build or load it first)"
            .to_owned()
    } else {
        format!(
            "cannot be looked up: docker image inspect: {}",
            stderr.trim()
        )
    };
    Err(CaptureError::Image {
        image: image.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(
            mount_spec(Path::new("/a,readonly=false"), Path::new("/p")).unwrap(),
            r#"type=bind,readonly,"source=/a,readonly=false",target=/p"#
        );
        assert_eq!(
            mount_spec(Path::new(r#"/a"b"#), Path::new("/p")).unwrap(),
            r#"type=bind,readonly,"source=/a""b",target=/p"#
        );
        assert_eq!(
            mount_spec(Path::new("/plain"), Path::new("/p")).unwrap(),
            "type=bind,readonly,source=/plain,target=/p"
        );
        assert!(mount_spec(Path::new("/a\nb"), Path::new("/p")).is_err());
    }

    #[test]
    fn env_file_is_private_and_refuses_what_it_cannot_carry() {
        use std::os::unix::fs::PermissionsExt;
        let file = env_file(&[("K".into(), "v = 1 \"q\"".into())])
            .unwrap()
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(file.path()).unwrap(),
            "K=v = 1 \"q\"\n"
        );
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let path = file.path().to_owned();
        drop(file);
        assert!(!path.exists(), "deleted when dropped");
        assert!(env_file(&[("K".into(), "a\nb".into())]).is_err());
        assert!(env_file(&[("#K".into(), "v".into())]).is_err());
        assert!(env_file(&[("A B".into(), "v".into())]).is_err());
        assert!(env_file(&[]).unwrap().is_none());
    }
}
