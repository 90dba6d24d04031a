//! Helpers that keep secrets out of `Debug` output.

use std::fmt;

/// Prints `<redacted>` for a present secret and `None` for an absent one.
pub(crate) struct RedactedOpt<'a, T>(pub(crate) &'a Option<T>);

impl<T> fmt::Debug for RedactedOpt<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => f.write_str("Some(<redacted>)"),
            None => f.write_str("None"),
        }
    }
}

/// Prints `<redacted>` in place of a secret.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Prints the field names of a JSON object, never its values.
pub(crate) struct FieldNames<'a>(pub(crate) &'a serde_json::Map<String, serde_json::Value>);

impl fmt::Debug for FieldNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}
