//! Who a plugin's output belongs to: the plugin id, the engine's execution and task ids, and the
//! clock that stamps each entry.
//!
//! Everything here comes from the engine, never from the plugin's output: that is what makes
//! the ids on a captured entry trustworthy.

use logstore_store::{Clock, SystemClock};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use logstore_store::{ExecutionId, TaskId};

/// A plugin action, `<namespace>/<plugin>.<action>`; each part is `[A-Za-z0-9_-]+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PluginId {
    namespace: String,
    plugin: String,
    action: String,
}

/// Why a plugin id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid plugin id {id:?}: {reason} (expected <namespace>/<plugin>.<action>, each part made of [A-Za-z0-9_-])")]
pub struct PluginIdError {
    /// The refused text, shortened.
    pub id: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Longest plugin id: keeps `plugin:<id>` inside the 256-byte source limit.
pub const MAX_PLUGIN_ID_LEN: usize = 200;

impl PluginId {
    /// Parses and validates `<namespace>/<plugin>.<action>`.
    pub fn parse(id: &str) -> Result<PluginId, PluginIdError> {
        let err = |reason| PluginIdError {
            id: id.chars().take(60).collect(),
            reason,
        };
        if id.len() > MAX_PLUGIN_ID_LEN {
            return Err(err("it is longer than 200 bytes"));
        }
        let (namespace, rest) = id.split_once('/').ok_or_else(|| err("it has no `/`"))?;
        let (plugin, action) = rest
            .split_once('.')
            .ok_or_else(|| err("it has no `.` before the action"))?;
        for (part, empty, bad_char) in [
            (
                namespace,
                "the namespace is empty",
                "the namespace holds a character outside [A-Za-z0-9_-]",
            ),
            (
                plugin,
                "the plugin name is empty",
                "the plugin name holds a character outside [A-Za-z0-9_-]",
            ),
            (
                action,
                "the action is empty",
                "the action holds a character outside [A-Za-z0-9_-]",
            ),
        ] {
            if part.is_empty() {
                return Err(err(empty));
            }
            if !part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(err(bad_char));
            }
        }
        Ok(PluginId {
            namespace: namespace.to_owned(),
            plugin: plugin.to_owned(),
            action: action.to_owned(),
        })
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The plugin name.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// The action.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The `source` of every entry captured from this plugin: `plugin:<namespace>/<plugin>.<action>`.
    pub fn source(&self) -> String {
        format!("plugin:{self}")
    }
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}.{}", self.namespace, self.plugin, self.action)
    }
}

impl FromStr for PluginId {
    type Err = PluginIdError;
    fn from_str(s: &str) -> Result<PluginId, PluginIdError> {
        PluginId::parse(s)
    }
}

/// The engine-side identity of one plugin run: every captured entry carries these.
#[derive(Clone)]
pub struct CaptureContext {
    /// The execution the task belongs to.
    pub execution_id: ExecutionId,
    /// The task running the plugin.
    pub task_id: TaskId,
    /// The plugin action.
    pub plugin: PluginId,
    /// Stamps each entry when its line is read.
    pub clock: Arc<dyn Clock>,
    /// The task's attempt this run is: when set, every captured entry (plugin lines and the
    /// capture layer's own warnings) has `"attempt": N` in its metadata, replacing a key of that
    /// name from the plugin. [`run_plugin_task`](crate::run_plugin_task) sets it.
    pub attempt: Option<u32>,
}

impl CaptureContext {
    /// A context stamped by the system clock.
    pub fn new(execution_id: ExecutionId, task_id: TaskId, plugin: PluginId) -> CaptureContext {
        CaptureContext {
            execution_id,
            task_id,
            plugin,
            clock: Arc::new(SystemClock),
            attempt: None,
        }
    }

    /// Stamps every captured entry with this attempt number.
    pub fn with_attempt(mut self, attempt: u32) -> CaptureContext {
        self.attempt = Some(attempt);
        self
    }

    /// Replaces the clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> CaptureContext {
        self.clock = clock;
        self
    }
}

impl fmt::Debug for CaptureContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureContext")
            .field("execution_id", &self.execution_id)
            .field("task_id", &self.task_id)
            .field("plugin", &self.plugin)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_parts() {
        let id = PluginId::parse("acme/http-client.get_json").unwrap();
        assert_eq!(
            (id.namespace(), id.plugin(), id.action()),
            ("acme", "http-client", "get_json")
        );
        assert_eq!(id.source(), "plugin:acme/http-client.get_json");
        assert_eq!(id.to_string(), "acme/http-client.get_json");
    }

    #[test]
    fn refuses_bad_ids_with_a_reason() {
        for (bad, reason) in [
            ("acme", "no `/`"),
            ("acme/http", "no `.`"),
            ("/p.a", "namespace is empty"),
            ("n/.a", "plugin name is empty"),
            ("n/p.", "action is empty"),
            ("n/p.a.b", "action holds"),
            ("n/x/p.a", "plugin name holds"),
            ("n s/p.a", "namespace holds"),
            ("n/p.a\n", "action holds"),
        ] {
            let err = PluginId::parse(bad).unwrap_err();
            assert!(err.to_string().contains(reason), "{bad:?}: {err}");
        }
        assert!(PluginId::parse(&format!("n/p.{}", "a".repeat(300))).is_err());
    }
}
