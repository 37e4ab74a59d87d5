//! What can go wrong while shipping or reading from ClickHouse, sorted by what to do about it:
//! fix the configuration (URL, credentials, schema), wait and retry (the server is down or went
//! away), or look at the store.

use std::path::PathBuf;
use std::time::Duration;

use crate::StoreError;

/// An error of the shipper or of a fleet read.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// The `--clickhouse` URL cannot be used.
    #[error(
        "invalid ClickHouse URL {url:?}: {reason} (expected http://[user[:password]@]host[:port])"
    )]
    BadUrl {
        /// The URL as given (its password masked).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made (refused, unknown host, timeout).
    #[error("cannot reach ClickHouse at {url}: {reason}{}", retried_note(*retried))]
    Unreachable {
        /// The server.
        url: String,
        /// The system's or the client's reason.
        reason: String,
        /// How long the shipper kept retrying before giving up.
        retried: Duration,
    },
    /// The connection broke while a request was under way (the server went away mid-batch).
    #[error("ClickHouse at {url} went away during {what}: {reason}{}", retried_note(*retried))]
    Interrupted {
        /// The server.
        url: String,
        /// What was under way, such as `an insert of 5000 entries (2026-11-25, v1 offset 16)`.
        what: String,
        /// The client's reason.
        reason: String,
        /// How long the shipper kept retrying before giving up.
        retried: Duration,
    },
    /// The server refused the user name or password.
    #[error("ClickHouse at {url} refused the credentials of user {user:?}: {message} (give them in the URL: http://user:password@host:8123)")]
    Credentials {
        /// The server.
        url: String,
        /// The user the shipper authenticated as.
        user: String,
        /// The server's message.
        message: String,
    },
    /// The database or table does not exist.
    #[error(
        "ClickHouse at {url} has no {what}: {message} (create it with `logstore ship --init`)"
    )]
    MissingSchema {
        /// The server.
        url: String,
        /// `database logstore` or `table logstore.logs`.
        what: String,
        /// The server's message.
        message: String,
    },
    /// Any other error the server answered with.
    #[error("ClickHouse at {url} answered HTTP {status}{}: {message}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
    Server {
        /// The server.
        url: String,
        /// HTTP status.
        status: u16,
        /// ClickHouse's error code, when the body carried one.
        code: Option<u32>,
        /// The server's message.
        message: String,
    },
    /// A response that does not have the shape asked for.
    #[error("unexpected answer from ClickHouse at {url}: {reason}")]
    Protocol {
        /// The server.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// No row of this execution is stored in ClickHouse.
    #[error("no entries stored in ClickHouse at {url} for execution {execution_id} (check the id, or whether its node ships with `logstore ship --status`)")]
    NotInFleet {
        /// The server.
        url: String,
        /// The execution asked for.
        execution_id: crate::ExecutionId,
    },
    /// The cursor file cannot be read, or belongs to another node or database.
    #[error("ship cursor {}: {reason}", path.display())]
    Cursor {
        /// The cursor file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn retried_note(retried: Duration) -> String {
    if retried.is_zero() {
        String::new()
    } else {
        format!(" (gave up after retrying for {:.0?})", retried)
    }
}

impl ShipError {
    /// Whether waiting and sending again may succeed: the server is down, restarting, or
    /// overloaded. Configuration errors (URL, credentials, schema) and protocol errors are not.
    pub fn is_transient(&self) -> bool {
        match self {
            ShipError::Unreachable { .. } | ShipError::Interrupted { .. } => true,
            // 5xx without a code is a proxy or a server that died mid-answer; codes that mean
            // "too busy" are worth waiting for.
            ShipError::Server { status, code, .. } => match code {
                None => *status >= 500,
                Some(c) => TRANSIENT_CODES.contains(c),
            },
            _ => false,
        }
    }

    /// The same error, noting how long it was retried.
    pub(crate) fn after_retrying(self, for_how_long: Duration) -> ShipError {
        match self {
            ShipError::Unreachable { url, reason, .. } => ShipError::Unreachable {
                url,
                reason,
                retried: for_how_long,
            },
            ShipError::Interrupted {
                url, what, reason, ..
            } => ShipError::Interrupted {
                url,
                what,
                reason,
                retried: for_how_long,
            },
            other => other,
        }
    }
}

/// ClickHouse error codes that say "not now" rather than "never": timeouts, too many parts or
/// queries, memory limits, a table being restarted.
const TRANSIENT_CODES: &[u32] = &[
    159, // TIMEOUT_EXCEEDED
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    319, // UNKNOWN_STATUS_OF_INSERT
    425, // SYSTEM_ERROR
];
