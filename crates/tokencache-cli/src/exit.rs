//! Exit codes, and the failure of a command: an error with the code it exits with.

use std::fmt;
use std::process::ExitCode;

use tokencache::{Error, ErrorKind};

/// What `tokencache` exits with. Documented in `--help` ([`EXIT_CODES_HELP`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: anything else (a bug, an unexpected answer, a value that does not decode).
    Failure = 1,
    /// 2: bad usage: an unknown option, a malformed cache location or key.
    Usage = 2,
    /// 3: not found: no value at the key, no SQLite file at the path.
    NotFound = 3,
    /// 4: unavailable: the store cannot be reached (server down, file locked), or an
    /// outside program (node, npm) failed.
    Unavailable = 4,
    /// 5: integrity: a value failed authentication (a wrong key, a tampered value).
    Integrity = 5,
    /// 6: bad configuration: a missing or malformed key, an operation the cache does not
    /// support.
    Config = 6,
}

/// The exit codes, for `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0  success
  1  any other failure
  2  bad usage (unknown option, malformed cache location or key)
  3  not found (no value at the key, no SQLite file at the path)
  4  unavailable (the store cannot be reached; node or npm failed)
  5  integrity (a value failed authentication: wrong key or tampered data)
  6  bad configuration (missing or malformed key, unsupported operation)";

impl Exit {
    /// The code of an error of `kind`.
    pub fn of(kind: ErrorKind) -> Exit {
        match kind {
            ErrorKind::Unavailable => Exit::Unavailable,
            ErrorKind::Integrity => Exit::Integrity,
            ErrorKind::Config | ErrorKind::Unsupported => Exit::Config,
            ErrorKind::InvalidKey => Exit::Usage,
            _ => Exit::Failure,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// A failed command: the error, and the code to exit with.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// What went wrong.
    pub error: Error,
}

impl Failure {
    /// A failure with an explicit exit code.
    pub fn new(exit: Exit, error: Error) -> Failure {
        Failure { exit, error }
    }

    /// A "not found" failure (exit 3).
    pub fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(Exit::NotFound, Error::config(message.into()))
    }

    /// A bad-usage failure (exit 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Usage, Error::config(message.into()))
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure {
            exit: Exit::of(error.kind()),
            error,
        }
    }
}

/// `error: <message>: <source>: ...`, as printed on stderr. Not-found and usage failures
/// print their message alone (their kind would only confuse).
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.exit {
            Exit::NotFound | Exit::Usage => f.write_str(self.error.message())?,
            _ => write!(f, "{}", self.error)?,
        }
        let mut source = std::error::Error::source(&self.error);
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// A command's result.
pub type CliResult<T = ()> = std::result::Result<T, Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_documented_code() {
        for (kind, code) in [
            (ErrorKind::Unavailable, 4),
            (ErrorKind::Integrity, 5),
            (ErrorKind::Config, 6),
            (ErrorKind::Unsupported, 6),
            (ErrorKind::InvalidKey, 2),
            (ErrorKind::Serialization, 1),
            (ErrorKind::Unexpected, 1),
        ] {
            let exit = Exit::of(kind);
            assert_eq!(exit as u8, code, "{kind:?}");
            assert!(EXIT_CODES_HELP.contains(&format!("  {code}  ")), "{code}");
        }
        let f = Failure::not_found("no value at the given key");
        assert_eq!(
            (f.exit, f.to_string().as_str()),
            (Exit::NotFound, "no value at the given key")
        );
    }
}
