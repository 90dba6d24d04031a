//! Data keys and the key ring.

use std::fmt;

use aes_gcm::aead::{Generate, Key, KeyInit};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use tokencache_core::{Error, Result};
use zeroize::{Zeroize, Zeroizing};

/// The length of a data key in bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// AES-256 key bytes that are wiped when dropped.
///
/// `Zeroizing<Key<Aes256Gcm>>` does not compile (the key type is not `Zeroize`), so this
/// wrapper wipes the bytes itself. It lives only while a cipher is being built.
pub(crate) struct KeyBytes(pub(crate) Key<Aes256Gcm>);

impl Drop for KeyBytes {
    fn drop(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}

/// One AES-256-GCM data key with its id.
///
/// The id is stored in clear beside every value the key encrypts, so that a [`KeyRing`]
/// can pick the key that decrypts it. Key material comes from the caller (an OS keychain,
/// a secret manager, an environment variable) and is held only inside the cipher, which is
/// wiped on drop; `Debug` prints the id only.
///
/// ```
/// use tokencache_crypto::DataKey;
///
/// let key = DataKey::parse(1, &"ab".repeat(32)).unwrap(); // 64 hex digits
/// assert_eq!(key.id(), 1);
/// assert_eq!(format!("{key:?}"), "DataKey { id: 1, .. }");
/// assert!(DataKey::parse(1, "too short").is_err());
/// ```
#[derive(Clone)]
pub struct DataKey {
    id: u32,
    // `aes-gcm`'s `zeroize` feature wipes the expanded key schedule on drop.
    pub(crate) cipher: Aes256Gcm,
}

impl DataKey {
    /// A key from 32 bytes. The array is wiped after use; wipe any copy you keep.
    pub fn new(id: u32, mut bytes: [u8; KEY_LEN]) -> Self {
        let key = DataKey::from_slice(id, &bytes).expect("32 bytes is a valid key length");
        bytes.zeroize();
        key
    }

    /// A key from a slice that must hold exactly 32 bytes; any other length is an
    /// [`ErrorKind::Config`](tokencache_core::ErrorKind::Config) error.
    pub fn from_slice(id: u32, bytes: &[u8]) -> Result<Self> {
        let key = Key::<Aes256Gcm>::try_from(bytes).map_err(|_| {
            Error::config(format!(
                "a data key must be {KEY_LEN} bytes, got {} bytes",
                bytes.len()
            ))
        })?;
        let key = KeyBytes(key);
        Ok(DataKey {
            id,
            cipher: Aes256Gcm::new(&key.0),
        })
    }

    /// A fresh random key from the operating system's generator.
    pub fn generate(id: u32) -> Result<Self> {
        let key = KeyBytes(Key::<Aes256Gcm>::try_generate().map_err(|e| {
            Error::unexpected("the system random number generator failed").with_source(e)
        })?);
        Ok(DataKey {
            id,
            cipher: Aes256Gcm::new(&key.0),
        })
    }

    /// A key from text: 64 hex digits, or the base64 (standard or URL-safe, padded or
    /// not) of 32 bytes. Surrounding whitespace is ignored. Anything else is an
    /// [`ErrorKind::Config`](tokencache_core::ErrorKind::Config) error whose message never
    /// repeats the text.
    pub fn parse(id: u32, text: &str) -> Result<Self> {
        let text = text.trim();
        if text.len() == 2 * KEY_LEN {
            if let Some(bytes) = decode_hex(text) {
                return DataKey::from_slice(id, &bytes);
            }
        }
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            if let Ok(bytes) = engine.decode(text) {
                let bytes = Zeroizing::new(bytes);
                return DataKey::from_slice(id, &bytes).map_err(|_| {
                    Error::config(format!(
                        "a data key must be {KEY_LEN} bytes; the base64 text holds {} bytes",
                        bytes.len()
                    ))
                });
            }
        }
        Err(Error::config(format!(
            "a data key must be {} hex digits or the base64 of {KEY_LEN} bytes",
            2 * KEY_LEN
        )))
    }

    /// A key parsed (see [`DataKey::parse`]) from the environment variable `var`, for
    /// command-line tools. A missing variable is an
    /// [`ErrorKind::Config`](tokencache_core::ErrorKind::Config) error.
    pub fn from_env(id: u32, var: &str) -> Result<Self> {
        let value = Zeroizing::new(std::env::var(var).map_err(|_| {
            Error::config(format!(
                "environment variable {var} is not set or not unicode"
            ))
        })?);
        DataKey::parse(id, &value)
            .map_err(|e| Error::config(format!("environment variable {var}: {}", e.message())))
    }

    /// The key id stored beside each value this key encrypts.
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// `text` as bytes when it is hex, in a buffer wiped on drop.
fn decode_hex(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() / 2));
    for pair in text.as_bytes().chunks_exact(2) {
        out.push(nibble(pair[0])? << 4 | nibble(pair[1])?);
    }
    Some(out)
}

/// The keys an [`EncryptedCodec`](crate::EncryptedCodec) uses: one active key that
/// encrypts every write, and older keys still accepted for reading.
///
/// To rotate: build a ring whose active key is the new one and which still holds the
/// old ones ([`KeyRing::rotate`] does that to an existing ring), open the store with it,
/// and re-encode the stored values (the SQLite backend's `rotate`, which uses
/// [`ValueCodec::recode`](tokencache_core::ValueCodec::recode)); then the old keys can go.
///
/// ```
/// use tokencache_crypto::{DataKey, KeyRing};
///
/// let mut ring = KeyRing::new(DataKey::generate(1).unwrap());
/// ring.rotate(DataKey::generate(2).unwrap()).unwrap();
/// assert_eq!(ring.active_id(), 2);
/// assert_eq!(ring.key_ids(), vec![1, 2]);
/// assert_eq!(format!("{ring:?}"), "KeyRing { active: 2, keys: [1, 2] }");
/// ```
#[derive(Clone)]
pub struct KeyRing {
    active: DataKey,
    /// Keys accepted for reading only, never the active one.
    old: Vec<DataKey>,
}

impl KeyRing {
    /// A ring whose only key is `active`.
    pub fn new(active: DataKey) -> Self {
        KeyRing {
            active,
            old: Vec::new(),
        }
    }

    /// Adds a key accepted for reading only. A second key with an id already in the ring
    /// is an [`ErrorKind::Config`](tokencache_core::ErrorKind::Config) error.
    pub fn with_old_key(mut self, key: DataKey) -> Result<Self> {
        self.check_new_id(key.id)?;
        self.old.push(key);
        Ok(self)
    }

    /// Makes `new_active` the key for writing; the previous active key stays for reading.
    /// A key with an id already in the ring is an
    /// [`ErrorKind::Config`](tokencache_core::ErrorKind::Config) error.
    pub fn rotate(&mut self, new_active: DataKey) -> Result<()> {
        self.check_new_id(new_active.id)?;
        let previous = std::mem::replace(&mut self.active, new_active);
        self.old.push(previous);
        Ok(())
    }

    /// Drops the read-only key `id` (once nothing is stored under it any more).
    /// Returns whether it was in the ring; the active key cannot be removed.
    pub fn remove_old_key(&mut self, id: u32) -> bool {
        let before = self.old.len();
        self.old.retain(|k| k.id != id);
        self.old.len() != before
    }

    /// The id of the key that encrypts writes.
    pub fn active_id(&self) -> u32 {
        self.active.id
    }

    /// The ids of every key in the ring, ascending.
    pub fn key_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .old
            .iter()
            .map(|k| k.id)
            .chain([self.active.id])
            .collect();
        ids.sort_unstable();
        ids
    }

    pub(crate) fn active(&self) -> &DataKey {
        &self.active
    }

    pub(crate) fn get(&self, id: u32) -> Option<&DataKey> {
        if self.active.id == id {
            Some(&self.active)
        } else {
            self.old.iter().find(|k| k.id == id)
        }
    }

    fn check_new_id(&self, id: u32) -> Result<()> {
        if self.get(id).is_some() {
            Err(Error::config(format!(
                "key id {id} is already in the key ring"
            )))
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active", &self.active.id)
            .field("keys", &self.key_ids())
            .finish()
    }
}
