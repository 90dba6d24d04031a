//! The one error type of tokencache, shared by the core and every backend.

use std::borrow::Cow;
use std::fmt;

/// A boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, independent of the backend that saw it.
///
/// Callers branch on the kind; the message and source say more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The store cannot be reached (server down, connection lost, storage disabled,
    /// database busy). Often temporary: see [`Error::is_temporary`].
    Unavailable,
    /// The store is full (localStorage quota, memory capacity smaller than one entry).
    QuotaExceeded,
    /// A stored value failed authentication: a wrong key or a tampered ciphertext.
    /// Never temporary, never treated as a miss.
    Integrity,
    /// A value could not be encoded or decoded.
    Serialization,
    /// A key, or the parts a key is built from, cannot be used: it would not parse back
    /// to the same parts, or it names the manifest itself.
    InvalidKey,
    /// A value given to store cannot be used (an `expires_in` that is not a finite,
    /// non-negative number of seconds). Nothing was stored.
    InvalidValue,
    /// The operation is not supported by this cache or configuration.
    Unsupported,
    /// The cache or manager was configured wrongly (a bad option, a missing client id).
    Config,
    /// Anything else; a bug or an unexpected answer from the store.
    Unexpected,
    /// A refresh through [`CacheManager::get_or_refresh`](crate::CacheManager::get_or_refresh)
    /// failed: the identity provider refused the refresh token (it was then removed from
    /// the cache), or the call failed or timed out (nothing was written).
    RefreshFailed,
    /// [`CacheManager::get_or_refresh`](crate::CacheManager::get_or_refresh) waited its
    /// whole `wait` for another holder's refresh lock: no refresh was made without it.
    LockTimeout,
    /// [`CacheManager::get_or_refresh`](crate::CacheManager::get_or_refresh) found neither a
    /// valid access token nor a refresh token: the user must log in again.
    MissingRefreshToken,
}

impl ErrorKind {
    /// A short lowercase name of the kind, as used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::QuotaExceeded => "quota exceeded",
            ErrorKind::Integrity => "integrity check failed",
            ErrorKind::Serialization => "serialization",
            ErrorKind::InvalidKey => "invalid key",
            ErrorKind::InvalidValue => "invalid value",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Config => "configuration",
            ErrorKind::Unexpected => "unexpected",
            ErrorKind::RefreshFailed => "refresh failed",
            ErrorKind::LockTimeout => "lock timeout",
            ErrorKind::MissingRefreshToken => "missing refresh token",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every tokencache operation: a [`ErrorKind`], a message, whether a retry
/// could help, and an optional source.
///
/// Messages never contain token values or key material: constructors take a message
/// written by the caller, and backends describe *what* failed, not the data.
///
/// ```
/// use tokencache_core::{Error, ErrorKind};
///
/// let e = Error::unavailable("redis connection refused").temporary();
/// assert_eq!(e.kind(), ErrorKind::Unavailable);
/// assert!(e.is_temporary());
/// assert_eq!(e.to_string(), "unavailable: redis connection refused");
/// ```
#[derive(thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    temporary: bool,
    #[source]
    source: Option<BoxError>,
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind)
            .field("message", &self.message)
            .field("temporary", &self.temporary);
        if let Some(s) = &self.source {
            d.field("source", &format_args!("{s}"));
        }
        d.finish()
    }
}

impl Error {
    /// A new error of `kind` with `message` (which must not contain secrets).
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind,
            message: message.into(),
            temporary: false,
            source: None,
        }
    }

    /// An [`ErrorKind::Unavailable`] error.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// An [`ErrorKind::QuotaExceeded`] error.
    pub fn quota_exceeded(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::QuotaExceeded, message)
    }

    /// An [`ErrorKind::Integrity`] error. It is never temporary.
    pub fn integrity(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Integrity, message)
    }

    /// An [`ErrorKind::Serialization`] error.
    pub fn serialization(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Serialization, message)
    }

    /// An [`ErrorKind::InvalidKey`] error.
    pub fn invalid_key(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidKey, message)
    }

    /// An [`ErrorKind::InvalidValue`] error.
    pub fn invalid_value(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidValue, message)
    }

    /// An [`ErrorKind::Unsupported`] error.
    pub fn unsupported(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// An [`ErrorKind::Config`] error.
    pub fn config(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// An [`ErrorKind::Unexpected`] error.
    pub fn unexpected(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Unexpected, message)
    }

    /// An [`ErrorKind::RefreshFailed`] error.
    pub fn refresh_failed(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::RefreshFailed, message)
    }

    /// An [`ErrorKind::LockTimeout`] error (temporary).
    pub fn lock_timeout(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::LockTimeout, message).temporary()
    }

    /// An [`ErrorKind::MissingRefreshToken`] error.
    pub fn missing_refresh_token(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::MissingRefreshToken, message)
    }

    /// A copy of the kind, message and temporariness (not the source): what the tasks
    /// that waited on one shared outcome each get.
    pub(crate) fn copy_for_waiter(&self) -> Self {
        Error {
            kind: self.kind,
            message: self.message.clone(),
            temporary: self.temporary,
            source: None,
        }
    }

    /// Marks the error as temporary: the same call may succeed later.
    /// Ignored for [`ErrorKind::Integrity`], which is never temporary.
    pub fn temporary(mut self) -> Self {
        self.temporary = self.kind != ErrorKind::Integrity;
        self
    }

    /// Attaches the underlying error. Its `Display` must not contain secrets either.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The kind of the error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying the same call could succeed (a lost connection, a busy database).
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }
}

/// The result type of tokencache operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_errors_are_never_temporary() {
        let e = Error::integrity("tampered").temporary();
        assert!(!e.is_temporary());
        assert_eq!(e.kind(), ErrorKind::Integrity);
    }

    #[test]
    fn display_and_source() {
        let io = std::io::Error::other("boom");
        let e = Error::unavailable("no server").with_source(io);
        assert_eq!(e.to_string(), "unavailable: no server");
        let src = std::error::Error::source(&e).unwrap();
        assert_eq!(src.to_string(), "boom");
        assert!(format!("{e:?}").contains("boom"));
    }
}
