//! A local plugin image for restricted mode, built without any registry: a root filesystem
//! holding this machine's `node`, the shared libraries `ldd` lists for it, and the SDK at
//! `/sdk/context.js`, imported with `docker import`. (No image can be pulled here, and a plugin
//! image needs nothing more.)

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::command::DOCKER_PROGRAM;

/// Where the SDK is inside the image.
pub const IMAGE_SDK_PATH: &str = "/sdk/context.js";

/// Why Docker or the image is not available.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ImageError(String);

/// Checks that a Docker engine answers.
pub fn docker_available() -> Result<(), ImageError> {
    let status = Command::new(DOCKER_PROGRAM)
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| ImageError(format!("cannot run `docker info`: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(ImageError(
            "`docker info` failed: no Docker engine answers".into(),
        ))
    }
}

/// Builds (or rebuilds) the image `tag` with `node` and `sdk` (the bytes of `sdk/context.js`).
pub fn build_node_image(tag: &str, sdk: &[u8]) -> Result<(), ImageError> {
    docker_available()?;
    let node = which("node")?;
    let dir = tempfile_dir()?;
    let root = dir.join("rootfs");
    let result = (|| {
        copy_into(&root, &node, Path::new("/usr/bin/node"))?;
        let ldd = Command::new("ldd")
            .arg(&node)
            .output()
            .map_err(|e| ImageError(format!("cannot run ldd: {e}")))?;
        for lib in String::from_utf8_lossy(&ldd.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with('/'))
        {
            copy_into(&root, Path::new(lib), Path::new(lib))?;
        }
        let sdk_dest = root.join(IMAGE_SDK_PATH.trim_start_matches('/'));
        create_parent(&sdk_dest)?;
        std::fs::write(&sdk_dest, sdk)
            .map_err(|e| ImageError(format!("write {}: {e}", sdk_dest.display())))?;
        std::fs::create_dir_all(root.join("tmp"))
            .map_err(|e| ImageError(format!("mkdir tmp: {e}")))?;
        let tar = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| ImageError(format!("cannot run tar: {e}")))?;
        let stdin = tar
            .stdout
            .ok_or_else(|| ImageError("tar has no stdout".into()))?;
        let imported = Command::new(DOCKER_PROGRAM)
            .args([
                "import",
                "--change",
                "LABEL logstore-plugin-image=1",
                "-",
                tag,
            ])
            .stdin(stdin)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| ImageError(format!("cannot run docker import: {e}")))?;
        if !imported.success() {
            return Err(ImageError(format!("docker import failed: {imported}")));
        }
        // Rebuilding leaves the previous image untagged; drop those.
        let _ = Command::new(DOCKER_PROGRAM)
            .args([
                "image",
                "prune",
                "-f",
                "--filter",
                "label=logstore-plugin-image=1",
            ])
            .stdout(Stdio::null())
            .status();
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn tempfile_dir() -> Result<PathBuf, ImageError> {
    let dir = std::env::temp_dir().join(format!(
        "logstore-image-{}-{}",
        std::process::id(),
        fastish_nonce()
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| ImageError(format!("mkdir {}: {e}", dir.display())))?;
    Ok(dir)
}

fn fastish_nonce() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn which(program: &str) -> Result<PathBuf, ImageError> {
    let path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| ImageError(format!("{program} not found on PATH")))?;
    std::fs::canonicalize(&path).map_err(|e| ImageError(format!("{}: {e}", path.display())))
}

fn create_parent(dest: &Path) -> Result<(), ImageError> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| ImageError(format!("mkdir {}: {e}", parent.display())))?;
    }
    Ok(())
}

/// Copies `from` (following links) to `root` + `to`.
fn copy_into(root: &Path, from: &Path, to: &Path) -> Result<(), ImageError> {
    let dest = root.join(to.strip_prefix("/").unwrap_or(to));
    create_parent(&dest)?;
    std::fs::copy(from, &dest).map_err(|e| ImageError(format!("copy {}: {e}", from.display())))?;
    Ok(())
}
