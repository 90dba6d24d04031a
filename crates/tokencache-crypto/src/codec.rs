//! [`EncryptedCodec`]: AES-256-GCM around any [`ValueCodec`].

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, Generate, Payload};
use aes_gcm::Nonce;
use tokencache_core::{Cacheable, Error, JsonCodec, Result, ValueCodec};
use zeroize::Zeroizing;

use crate::key::{DataKey, KeyRing};

/// The first byte of every value this codec writes.
pub const FORMAT_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN;
/// The smallest well-formed value: header, nonce and tag around an empty plaintext.
const MIN_LEN: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// Encrypts what an inner codec (default [`JsonCodec`]) produces with AES-256-GCM.
///
/// Stored form: `version (1 byte) | key id (4 bytes, big endian) | nonce (12 bytes) |
/// ciphertext | tag (16 bytes)`. Every write draws a fresh random nonce. The associated
/// data is the version, the key id, the namespace given at construction and the storage
/// key, so a value copied to another key, or into a store opened with another namespace,
/// fails to decrypt.
///
/// A value that fails authentication — a wrong key, an unknown key id, a tampered or
/// truncated value, a value moved to another key — is an
/// [`ErrorKind::Integrity`](tokencache_core::ErrorKind::Integrity) error, never a miss and
/// never data. A value that authenticates but does not decode with the inner codec is an
/// [`ErrorKind::Serialization`](tokencache_core::ErrorKind::Serialization) error (a miss,
/// through [`decode_or_miss`](tokencache_core::decode_or_miss)).
///
/// [`ValueCodec::recode`] returns the value re-encrypted under the active key when it is
/// stored under an older one: backends use it to implement key rotation.
///
/// ```
/// use std::sync::Arc;
/// use tokencache_core::{Cacheable, KeyManifestEntry, ValueCodec};
/// use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
///
/// let codec = EncryptedCodec::new(KeyRing::new(DataKey::generate(1)?), "my-app");
/// let value = Cacheable::from(KeyManifestEntry { keys: vec!["a".into()] });
/// let stored = codec.encode("k", &value)?;
/// assert_eq!(codec.decode("k", &stored)?, value);
/// // bound to its key: the same bytes under another key do not decrypt
/// assert!(codec.decode("other", &stored).is_err());
/// # Ok::<(), tokencache_core::Error>(())
/// ```
pub struct EncryptedCodec {
    keys: KeyRing,
    namespace: String,
    inner: Arc<dyn ValueCodec>,
}

impl EncryptedCodec {
    /// A codec encrypting the auth0-spa-js JSON form with `keys`, bound to `namespace`
    /// (an application or store name: values written under one namespace do not decrypt
    /// under another).
    pub fn new(keys: KeyRing, namespace: impl Into<String>) -> Self {
        EncryptedCodec::with_inner(keys, namespace, Arc::new(JsonCodec))
    }

    /// A codec encrypting what `inner` produces.
    pub fn with_inner(
        keys: KeyRing,
        namespace: impl Into<String>,
        inner: Arc<dyn ValueCodec>,
    ) -> Self {
        EncryptedCodec {
            keys,
            namespace: namespace.into(),
            inner,
        }
    }

    /// The key ring.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The namespace the values are bound to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The id of the key a stored value claims to be encrypted under (unauthenticated:
    /// for inspection tools), or `None` when `bytes` are not in this format.
    pub fn key_id_of(bytes: &[u8]) -> Option<u32> {
        match bytes {
            [FORMAT_VERSION, a, b, c, d, ..] if bytes.len() >= MIN_LEN => {
                Some(u32::from_be_bytes([*a, *b, *c, *d]))
            }
            _ => None,
        }
    }

    fn aad(&self, header: &[u8], key: &str) -> Vec<u8> {
        let ns = self.namespace.as_bytes();
        let mut aad = Vec::with_capacity(header.len() + 4 + ns.len() + key.len());
        aad.extend_from_slice(header);
        // The namespace is length-prefixed so that namespace and key cannot trade bytes.
        aad.extend_from_slice(&u32::try_from(ns.len()).unwrap_or(u32::MAX).to_be_bytes());
        aad.extend_from_slice(ns);
        aad.extend_from_slice(key.as_bytes());
        aad
    }

    fn seal(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let data_key: &DataKey = self.keys.active();
        let mut header = [0u8; HEADER_LEN];
        header[0] = FORMAT_VERSION;
        header[1..].copy_from_slice(&data_key.id().to_be_bytes());
        let nonce = Nonce::try_generate().map_err(|e| {
            Error::unexpected("the system random number generator failed").with_source(e)
        })?;
        let aad = self.aad(&header, key);
        let sealed = data_key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::unexpected("encryption failed: value too large"))?;
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + sealed.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The plaintext of `bytes` at `key` and the id of the key that opened it.
    fn open(&self, key: &str, bytes: &[u8]) -> Result<(Zeroizing<Vec<u8>>, u32)> {
        if bytes.len() < MIN_LEN || bytes[0] != FORMAT_VERSION {
            return Err(Error::integrity(
                "stored value is not an encrypted value of this format",
            ));
        }
        let (header, rest) = bytes.split_at(HEADER_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        let data_key = self.keys.get(id).ok_or_else(|| {
            Error::integrity(format!(
                "stored value is encrypted under key id {id}, which the key ring does not hold"
            ))
        })?;
        let nonce = Nonce::try_from(nonce)
            .map_err(|_| Error::integrity("stored value has a malformed nonce"))?;
        let aad = self.aad(header, key);
        let plaintext = data_key
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                Error::integrity(format!(
                    "stored value failed authentication under key id {id} \
                     (wrong key, tampered, or moved from another key or namespace)"
                ))
            })?;
        Ok((Zeroizing::new(plaintext), id))
    }
}

impl ValueCodec for EncryptedCodec {
    fn encode(&self, key: &str, value: &Cacheable) -> Result<Vec<u8>> {
        let plaintext = Zeroizing::new(self.inner.encode(key, value)?);
        self.seal(key, &plaintext)
    }

    fn decode(&self, key: &str, bytes: &[u8]) -> Result<Cacheable> {
        let (plaintext, _) = self.open(key, bytes)?;
        self.inner.decode(key, &plaintext)
    }

    fn recode(&self, key: &str, bytes: &[u8]) -> Result<Option<Vec<u8>>> {
        let (plaintext, id) = self.open(key, bytes)?;
        match self.inner.recode(key, &plaintext)? {
            Some(newer) => self.seal(key, &Zeroizing::new(newer)).map(Some),
            None if id != self.keys.active_id() => self.seal(key, &plaintext).map(Some),
            None => Ok(None),
        }
    }

    fn is_text(&self) -> bool {
        false
    }
}

impl fmt::Debug for EncryptedCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedCodec")
            .field("keys", &self.keys)
            .field("namespace", &self.namespace)
            .field("inner", &self.inner)
            .finish()
    }
}
