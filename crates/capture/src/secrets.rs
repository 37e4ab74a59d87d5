//! Secrets masked out of everything an execution logs: the engine's task inputs and outputs
//! and every line a plugin prints.

use serde_json::Value;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Replaces every secret of `secrets` (longest first) in `s` with [`MASK`].
pub(crate) fn mask_str(s: &mut String, secrets: &[String]) {
    for secret in secrets {
        if s.contains(secret.as_str()) {
            *s = s.replace(secret.as_str(), MASK);
        }
    }
}

pub(crate) fn mask_value(v: &mut Value, secrets: &[String]) {
    match v {
        Value::String(s) => mask_str(s, secrets),
        Value::Array(a) => a.iter_mut().for_each(|v| mask_value(v, secrets)),
        Value::Object(o) => o.values_mut().for_each(|v| mask_value(v, secrets)),
        _ => {}
    }
}
