//! Query parameters: parsed by hand so that every refusal names the parameter, and an unknown
//! parameter (a typo such as `levle=`) is refused instead of silently ignored.

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;

use super::error::{ApiError, ApiResult};
use logstore_store::{ExecutionId, Filter, Level, TaskId};

/// Most entries one JSON page returns.
pub(crate) const MAX_LIMIT: usize = 10_000;
/// Entries of a JSON page when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: usize = 1_000;

/// The raw pairs of a query string.
pub(crate) type RawQuery = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// A query string's pairs, checked against the names an endpoint accepts.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(raw: RawQuery, allowed: &[&str]) -> ApiResult<Params> {
        let Query(pairs) = raw.map_err(|e| ApiError::bad(format!("bad query string: {e}")))?;
        for (name, _) in &pairs {
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::bad(format!(
                    "unknown parameter `{name}` (this endpoint takes: {})",
                    allowed.join(", ")
                )));
            }
        }
        let mut seen: Vec<&str> = Vec::new();
        for (name, _) in &pairs {
            if seen.contains(&name.as_str()) {
                return Err(ApiError::bad(format!("parameter `{name}` is given twice")));
            }
            seen.push(name);
        }
        Ok(Params(pairs))
    }

    /// The value of `name`; an empty value counts as absent (an HTML form sends `task=`).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// `name` parsed with `parse`, its error prefixed with the parameter.
    pub(crate) fn parse_with<T, E: std::fmt::Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> ApiResult<Option<T>> {
        self.get(name)
            .map(|v| parse(v).map_err(|e| ApiError::bad(format!("parameter `{name}`: {e}"))))
            .transpose()
    }

    /// A non-negative integer parameter.
    pub(crate) fn number(&self, name: &str) -> ApiResult<Option<u64>> {
        self.parse_with(name, |v| {
            v.parse::<u64>()
                .map_err(|_| format!("{v:?} is not a non-negative integer"))
        })
    }

    /// A count parameter at most `max`.
    pub(crate) fn count(&self, name: &str, max: usize) -> ApiResult<Option<usize>> {
        match self.number(name)? {
            None => Ok(None),
            Some(n) if n > max as u64 => Err(ApiError::bad(format!(
                "parameter `{name}`: {n} is more than the maximum of {max}"
            ))),
            #[allow(clippy::cast_possible_truncation)] // checked against max just above
            Some(n) => Ok(Some(n as usize)),
        }
    }

    /// A time parameter: Unix milliseconds or RFC 3339.
    pub(crate) fn time(&self, name: &str) -> ApiResult<Option<i64>> {
        self.parse_with(name, parse_time)
    }

    /// The entry filter of `level`, `task`, `source`, `since`, `until`.
    pub(crate) fn filter(&self) -> ApiResult<Filter> {
        Ok(Filter {
            min_level: self.parse_with("level", str::parse::<Level>)?,
            task_id: self.parse_with("task", str::parse::<TaskId>)?,
            source_prefix: self.get("source").map(str::to_owned),
            since_ms: self.time("since")?,
            until_ms: self.time("until")?,
            limit: None,
            tail: None,
        })
    }
}

/// An execution id from the path; a malformed one cannot exist, so it is a 404.
pub(crate) fn execution_id(s: &str) -> ApiResult<ExecutionId> {
    s.parse::<ExecutionId>()
        .map_err(|e| ApiError::not_found(format!("unknown execution: {e}")))
}

/// Unix milliseconds (digits, optionally negative) or RFC 3339 (`2026-11-25T12:00:00Z`).
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<i64>()
            .map_err(|_| format!("{s:?} is out of range for Unix milliseconds"));
    }
    let t = humantime::parse_rfc3339_weak(s).map_err(|_| {
        format!(
            "{s:?} is not a time: expected Unix milliseconds or RFC 3339 (2026-11-25T12:00:00Z)"
        )
    })?;
    let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).map_err(|_| "time out of range");
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => ms(d).map_err(str::to_owned),
        Err(e) => ms(e.duration()).map(|v| -v).map_err(str::to_owned),
    }
}

/// Case-insensitive text match of the `q` parameter: the needle is lowercased once.
#[derive(Debug, Clone)]
pub(crate) struct Text(String);

impl Text {
    pub(crate) fn new(q: &str) -> Text {
        Text(q.to_lowercase())
    }

    pub(crate) fn matches(&self, message: &str) -> bool {
        if message.is_ascii() && self.0.is_ascii() {
            // No allocation for the common case.
            return message
                .as_bytes()
                .windows(self.0.len().max(1))
                .any(|w| w.eq_ignore_ascii_case(self.0.as_bytes()))
                || self.0.is_empty();
        }
        message.to_lowercase().contains(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_milliseconds_or_rfc3339() {
        assert_eq!(parse_time("1795608000000"), Ok(1_795_608_000_000));
        assert_eq!(parse_time("2026-11-25T12:00:00Z"), Ok(1_795_608_000_000));
        assert_eq!(parse_time("-5"), Ok(-5));
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn text_matches_case_insensitively() {
        let t = Text::new("Refused");
        assert!(t.matches("connection REFUSED by peer"));
        assert!(!t.matches("connection reset"));
        assert!(Text::new("ÉTÉ").matches("un été chaud"));
        assert!(!t.matches("ref"));
    }
}
