//! How backends that store bytes or strings turn a [`Cacheable`] into bytes and back.

use std::fmt;

use crate::cache::MaybeSendSync;
use crate::error::{ErrorKind, Result};
use crate::types::Cacheable;

/// Turns values into the bytes a backend stores, and back.
///
/// [`JsonCodec`] writes the auth0-spa-js JSON; the encryption layer (tokencache-crypto)
/// wraps any codec. The storage `key` is passed so that a codec can bind a value to the
/// key it is stored under.
pub trait ValueCodec: MaybeSendSync + fmt::Debug {
    /// The stored form of `value` at `key`.
    fn encode(&self, key: &str, value: &Cacheable) -> Result<Vec<u8>>;

    /// The value of the stored `bytes` at `key`. A value that is not a cache value is an
    /// [`ErrorKind::Serialization`] error; one that fails authentication an
    /// [`ErrorKind::Integrity`] error.
    fn decode(&self, key: &str, bytes: &[u8]) -> Result<Cacheable>;

    /// The stored form re-encoded under the codec's current settings (a new key after a
    /// key rotation), or `None` when `bytes` are already current. Default: always current.
    fn recode(&self, key: &str, bytes: &[u8]) -> Result<Option<Vec<u8>>> {
        let _ = (key, bytes);
        Ok(None)
    }

    /// Whether [`ValueCodec::encode`] always yields UTF-8 text (so string stores can keep it as is).
    fn is_text(&self) -> bool {
        false
    }
}

/// The auth0-spa-js JSON form, byte for byte what `JSON.stringify` would produce up to
/// field order.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonCodec;

impl ValueCodec for JsonCodec {
    fn encode(&self, _key: &str, value: &Cacheable) -> Result<Vec<u8>> {
        value.to_json()
    }

    fn decode(&self, _key: &str, bytes: &[u8]) -> Result<Cacheable> {
        Cacheable::from_json(bytes)
    }

    fn is_text(&self) -> bool {
        true
    }
}

/// Decodes a stored value the way every backend must: a value that does not decode is a
/// miss (as in auth0-spa-js), logged with its key but never its content; any other error
/// (an authentication failure above all) is returned.
///
/// ```
/// use tokencache_core::{decode_or_miss, JsonCodec};
///
/// assert!(decode_or_miss(&JsonCodec, "k", b"garbage").unwrap().is_none());
/// assert!(decode_or_miss(&JsonCodec, "k", br#"{"keys":[]}"#).unwrap().is_some());
/// ```
pub fn decode_or_miss<C: ValueCodec + ?Sized>(
    codec: &C,
    key: &str,
    bytes: &[u8],
) -> Result<Option<Cacheable>> {
    match codec.decode(key, bytes) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == ErrorKind::Serialization => {
            tracing::warn!(key, error = %e, "stored value does not decode; treated as a miss");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

impl<C: ValueCodec + ?Sized> ValueCodec for std::sync::Arc<C> {
    fn encode(&self, key: &str, value: &Cacheable) -> Result<Vec<u8>> {
        (**self).encode(key, value)
    }
    fn decode(&self, key: &str, bytes: &[u8]) -> Result<Cacheable> {
        (**self).decode(key, bytes)
    }
    fn recode(&self, key: &str, bytes: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).recode(key, bytes)
    }
    fn is_text(&self) -> bool {
        (**self).is_text()
    }
}
