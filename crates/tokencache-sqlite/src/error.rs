//! The one place where SQLite errors become tokencache errors.

use rusqlite::ErrorCode;
use tokencache_core::{Error, ErrorKind};

/// Maps a rusqlite error to a tokencache [`Error`]. Messages name what failed, never a
/// value: every statement binds its values, so SQLite's own messages (kept as the source)
/// hold no tokens either.
pub(crate) fn map_err(e: rusqlite::Error) -> Error {
    let mapped = match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                Error::unavailable("the database is locked by another connection or process")
                    .temporary()
            }
            ErrorCode::DiskFull => Error::quota_exceeded("the disk holding the database is full"),
            ErrorCode::TooBig => Error::quota_exceeded("the value is too large for SQLite"),
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                Error::unexpected("the database file is corrupt or not a SQLite database")
            }
            ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly => {
                Error::unavailable("the database file cannot be opened or written")
            }
            ErrorCode::SystemIoFailure => Error::unavailable("disk I/O error on the database"),
            ErrorCode::OutOfMemory => Error::unavailable("SQLite ran out of memory"),
            _ => Error::unexpected("SQLite error"),
        },
        _ => Error::unexpected("SQLite API error"),
    };
    mapped.with_source(e)
}

/// Whether `e` is a busy/locked database, worth retrying.
pub(crate) fn is_busy(e: &Error) -> bool {
    e.kind() == ErrorKind::Unavailable && e.is_temporary()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn busy_is_temporary_and_full_is_quota() {
        for code in [rusqlite::ffi::SQLITE_BUSY, rusqlite::ffi::SQLITE_LOCKED] {
            let e = map_err(failure(code));
            assert_eq!(e.kind(), ErrorKind::Unavailable);
            assert!(is_busy(&e));
        }
        assert_eq!(
            map_err(failure(rusqlite::ffi::SQLITE_FULL)).kind(),
            ErrorKind::QuotaExceeded
        );
        let corrupt = map_err(failure(rusqlite::ffi::SQLITE_CORRUPT));
        assert_eq!(corrupt.kind(), ErrorKind::Unexpected);
        assert!(!is_busy(&corrupt));
        assert!(!is_busy(&map_err(failure(rusqlite::ffi::SQLITE_IOERR))));
        assert_eq!(
            map_err(rusqlite::Error::QueryReturnedNoRows).kind(),
            ErrorKind::Unexpected
        );
    }
}
