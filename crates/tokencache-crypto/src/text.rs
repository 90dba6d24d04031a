//! [`TextCodec`]: any codec's bytes as text, for string stores.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use tokencache_core::{Cacheable, Error, Result, ValueCodec};

/// The prefix that marks a value in [`TextCodec`]'s base64 form.
pub const TEXT_MARKER: &str = "tcb64:";

/// Makes any codec usable by a store of strings (localStorage, sessionStorage): a codec
/// that already writes text is passed through; any other (an [`EncryptedCodec`]) is
/// written as [`TEXT_MARKER`] followed by the standard base64 of its bytes.
///
/// Reading a string without the marker is an
/// [`ErrorKind::Serialization`](tokencache_core::ErrorKind::Serialization) error (a miss:
/// e.g. a plaintext value written before encryption was turned on); a marked value whose
/// base64 is damaged is an [`ErrorKind::Integrity`](tokencache_core::ErrorKind::Integrity)
/// error, like any other tampering.
///
/// ```
/// use std::sync::Arc;
/// use tokencache_core::{Cacheable, KeyManifestEntry, ValueCodec};
/// use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing, TextCodec, TEXT_MARKER};
///
/// let keys = KeyRing::new(DataKey::generate(1)?);
/// let codec = TextCodec::new(Arc::new(EncryptedCodec::new(keys, "web")));
/// assert!(codec.is_text());
/// let value = Cacheable::from(KeyManifestEntry { keys: vec![] });
/// let stored = String::from_utf8(codec.encode("k", &value)?).unwrap();
/// assert!(stored.starts_with(TEXT_MARKER));
/// assert_eq!(codec.decode("k", stored.as_bytes())?, value);
/// # Ok::<(), tokencache_core::Error>(())
/// ```
///
/// [`EncryptedCodec`]: crate::EncryptedCodec
#[derive(Debug, Clone)]
pub struct TextCodec {
    inner: Arc<dyn ValueCodec>,
}

impl TextCodec {
    /// The text form of `inner`.
    pub fn new(inner: Arc<dyn ValueCodec>) -> Self {
        TextCodec { inner }
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

    fn unwrap<'a>(&self, text: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>> {
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
