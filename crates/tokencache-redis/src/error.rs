//! The one place where redis-rs errors become tokencache errors.

use redis::{ErrorKind as RedisKind, RedisError, ServerErrorKind};
use tokencache_core::Error;

/// Maps a redis-rs error to a core [`Error`]. `what` names the operation (never data).
///
/// Lost or refused connections, timeouts and the transient states of a server or cluster
/// (loading, failover, resharding) are temporary [`ErrorKind::Unavailable`](tokencache_core::ErrorKind::Unavailable)
/// errors; authentication and configuration problems are permanent
/// [`ErrorKind::Config`](tokencache_core::ErrorKind::Config) errors; an out-of-memory
/// server is [`ErrorKind::QuotaExceeded`](tokencache_core::ErrorKind::QuotaExceeded).
/// The source is kept: redis-rs messages name commands and servers, never arguments.
pub(crate) fn map_redis_error(what: &'static str, e: RedisError) -> Error {
    let err = match e.kind() {
        _ if e.is_timeout() => Error::unavailable(format!("redis {what}: timed out")).temporary(),
        _ if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() => {
            Error::unavailable(format!("redis {what}: connection failed")).temporary()
        }
        RedisKind::Io | RedisKind::ClusterConnectionNotFound => {
            Error::unavailable(format!("redis {what}: connection failed")).temporary()
        }
        RedisKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask,
        ) => Error::unavailable(format!("redis {what}: server not ready ({})", e.category()))
            .temporary(),
        RedisKind::AuthenticationFailed
        | RedisKind::InvalidClientConfig
        | RedisKind::Server(ServerErrorKind::NoPerm) => {
            Error::config(format!("redis {what}: {}", e.category()))
        }
        _ if e.code() == Some("OOM") => {
            Error::quota_exceeded(format!("redis {what}: server out of memory"))
        }
        _ => Error::unexpected(format!("redis {what}: {}", e.category())),
    };
    err.with_source(e)
}

/// The error of an operation that did not finish within its timeout.
pub(crate) fn timed_out(what: &'static str) -> Error {
    Error::unavailable(format!("redis {what}: timed out")).temporary()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokencache_core::ErrorKind;

    #[test]
    fn io_errors_are_temporary_unavailable() {
        let e = map_redis_error(
            "get",
            RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_temporary());
        assert_eq!(e.to_string(), "unavailable: redis get: connection failed");
    }

    #[test]
    fn client_config_errors_are_permanent() {
        let e = map_redis_error(
            "connect",
            RedisError::from((RedisKind::InvalidClientConfig, "bad url")),
        );
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.is_temporary());
    }

    #[test]
    fn unexpected_replies_are_unexpected() {
        let e = map_redis_error(
            "get",
            RedisError::from((RedisKind::UnexpectedReturnType, "not a string")),
        );
        assert_eq!(e.kind(), ErrorKind::Unexpected);
        assert!(!e.is_temporary());
    }
}
