//! How backends that store bytes or strings turn a [`Cacheable`] into bytes and back:
//! [`ValueCodec`], its JSON form [`JsonCodec`], and [`TextCodec`], the one text layer
//! for stores of strings.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::cache::MaybeSendSync;
use crate::error::{Error, ErrorKind, Result};
use crate::stored::Cacheable;

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

/// The prefix that marks a value in [`TextCodec`]'s base64 form.
pub const TEXT_MARKER: &str = "tcb64:";

/// Makes any codec usable by a store of strings (localStorage, sessionStorage): a codec
/// that already writes text ([`ValueCodec::is_text`]) is passed through; any other (an
/// encrypting codec) is written as [`TEXT_MARKER`] followed by the standard base64 of its
/// bytes. It is the only place that turns stored bytes into text and back.
///
/// Reading a string without the marker is an [`ErrorKind::Serialization`] error (a miss:
/// e.g. a plaintext value written before encryption was turned on); a marked value whose
/// base64 is damaged is an [`ErrorKind::Integrity`] error, like any other tampering.
///
/// ```
/// use std::sync::Arc;
/// use tokencache_core::{Cacheable, ErrorKind, JsonCodec, KeyManifestEntry, TextCodec, ValueCodec, TEXT_MARKER};
///
/// /// A codec that writes bytes that are not text.
/// #[derive(Debug)]
/// struct Flipped;
/// impl ValueCodec for Flipped {
///     fn encode(&self, key: &str, value: &Cacheable) -> tokencache_core::Result<Vec<u8>> {
///         Ok(JsonCodec.encode(key, value)?.iter().map(|b| !b).collect())
///     }
///     fn decode(&self, key: &str, bytes: &[u8]) -> tokencache_core::Result<Cacheable> {
///         JsonCodec.decode(key, &bytes.iter().map(|b| !b).collect::<Vec<_>>())
///     }
/// }
///
/// let codec = TextCodec::new(Arc::new(Flipped));
/// assert!(codec.is_text());
/// let value = Cacheable::from(KeyManifestEntry { keys: vec![] });
/// let stored = String::from_utf8(codec.encode("k", &value)?).unwrap();
/// assert!(stored.starts_with(TEXT_MARKER));
/// assert_eq!(codec.decode("k", stored.as_bytes())?, value);
/// let damaged = format!("{TEXT_MARKER}%%%");
/// assert_eq!(codec.decode("k", damaged.as_bytes()).unwrap_err().kind(), ErrorKind::Integrity);
/// # Ok::<(), tokencache_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TextCodec {
    inner: Arc<dyn ValueCodec>,
}

impl TextCodec {
    /// The text form of `inner`.
    pub fn new(inner: Arc<dyn ValueCodec>) -> Self {
        TextCodec { inner }
    }

    /// The codec it wraps.
    pub fn inner(&self) -> &Arc<dyn ValueCodec> {
        &self.inner
    }

    fn wrap(&self, bytes: Vec<u8>) -> Vec<u8> {
        if self.inner.is_text() {
            return bytes;
        }
        let mut out = String::with_capacity(TEXT_MARKER.len() + bytes.len().div_ceil(3) * 4);
        out.push_str(TEXT_MARKER);
        STANDARD.encode_string(&bytes, &mut out);
        out.into_bytes()
    }

    fn unwrap<'a>(&self, text: &'a [u8]) -> Result<Cow<'a, [u8]>> {
        if self.inner.is_text() {
            return Ok(text.into());
        }
        let payload = text
            .strip_prefix(TEXT_MARKER.as_bytes())
            .ok_or_else(|| Error::serialization("stored text is not in the marked base64 form"))?;
        STANDARD
            .decode(payload)
            .map(Into::into)
            .map_err(|_| Error::integrity("stored text has damaged base64"))
    }
}

impl ValueCodec for TextCodec {
    fn encode(&self, key: &str, value: &Cacheable) -> Result<Vec<u8>> {
        Ok(self.wrap(self.inner.encode(key, value)?))
    }

    fn decode(&self, key: &str, bytes: &[u8]) -> Result<Cacheable> {
        self.inner.decode(key, &self.unwrap(bytes)?)
    }

    fn recode(&self, key: &str, bytes: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .inner
            .recode(key, &self.unwrap(bytes)?)?
            .map(|b| self.wrap(b)))
    }

    fn is_text(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored::KeyManifestEntry;

    /// Writes the JSON with every byte inverted: not text.
    #[derive(Debug)]
    struct Inverted;

    impl ValueCodec for Inverted {
        fn encode(&self, key: &str, value: &Cacheable) -> Result<Vec<u8>> {
            Ok(JsonCodec.encode(key, value)?.iter().map(|b| !b).collect())
        }
        fn decode(&self, key: &str, bytes: &[u8]) -> Result<Cacheable> {
            JsonCodec.decode(key, &bytes.iter().map(|b| !b).collect::<Vec<_>>())
        }
    }

    fn value() -> Cacheable {
        Cacheable::from(KeyManifestEntry {
            keys: vec!["@@auth0spajs@@::c::a::s".into()],
        })
    }

    #[test]
    fn text_codec_wraps_binary_codecs_only() {
        let json = TextCodec::new(Arc::new(JsonCodec));
        assert_eq!(
            json.encode("k", &value()).unwrap(),
            value().to_json().unwrap()
        );
        assert_eq!(
            json.decode("k", &value().to_json().unwrap()).unwrap(),
            value()
        );

        let binary = TextCodec::new(Arc::new(Inverted));
        let stored = binary.encode("k", &value()).unwrap();
        let text = std::str::from_utf8(&stored).unwrap();
        let payload = text.strip_prefix(TEXT_MARKER).unwrap();
        assert!(payload
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)));
        assert_eq!(binary.decode("k", &stored).unwrap(), value());
    }

    #[test]
    fn text_codec_errors() {
        let binary = TextCodec::new(Arc::new(Inverted));
        // No marker: not ours, a miss.
        for unmarked in [&b"{\"keys\":[]}"[..], b"aGVsbG8=", b""] {
            let e = binary.decode("k", unmarked).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Serialization);
            assert!(decode_or_miss(&binary, "k", unmarked).unwrap().is_none());
        }
        // Marked but damaged: tampering, an error and never a miss.
        for damaged in ["%%%", "aGVsbG8", "aGVs bG8="] {
            let stored = format!("{TEXT_MARKER}{damaged}");
            let e = decode_or_miss(&binary, "k", stored.as_bytes()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Integrity, "{damaged}");
            assert!(!e.to_string().contains(damaged));
        }
        // Marked, valid base64 of something that is not a value: a miss.
        let stored = format!("{TEXT_MARKER}aGVsbG8=");
        assert!(decode_or_miss(&binary, "k", stored.as_bytes())
            .unwrap()
            .is_none());
    }
}
