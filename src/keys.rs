//! Where a cache location's encryption key comes from: [`KeySource`].

use std::fmt;
use std::sync::Arc;

use tokencache_core::{Error, Result, ValueCodec};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};

/// The environment variable [`KeySource::env`] reads the key from: 64 hex digits or the
/// base64 of 32 bytes.
pub const KEY_ENV: &str = "TOKENCACHE_KEY";
/// The environment variable [`KeySource::env`] reads the key's id from (default 1).
pub const KEY_ID_ENV: &str = "TOKENCACHE_KEY_ID";

/// Where the key that encrypts a cache's values comes from. A
/// [`CacheLocation`](crate::CacheLocation) carries one, so that it holds all it needs to
/// open; values are bound to the location's namespace and key.
///
/// Plaintext is never a default: [`KeySource::Plaintext`] must be asked for by name.
///
/// For shells and services, the key can live in an environment variable
/// ([`KeySource::env`]), a private key file ([`KeySource::file`]: on unix refused unless
/// only its owner may read and write it) or, with the `keychain` feature, the OS keychain
/// (`KeySource::keychain`: created there on first use).
///
/// ```
/// use tokencache::KeySource;
///
/// # std::env::set_var("MY_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
/// let keys = KeySource::env_vars("MY_KEY", "MY_KEY_ID"); // id defaults to 1
/// assert_eq!(keys.key_ring()?.expect("a key").active_id(), 1);
/// assert_eq!(format!("{keys:?}"), "KeySource::Env(MY_KEY, id from MY_KEY_ID)");
/// assert!(KeySource::Plaintext.key_ring()?.is_none());
/// # Ok::<(), tokencache::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum KeySource {
    /// The key in the environment variable `key_var` (64 hex digits or base64) with its
    /// id in `id_var` (default 1), read when the cache opens. [`KeySource::env`] (the
    /// default) names `TOKENCACHE_KEY` and `TOKENCACHE_KEY_ID`.
    Env {
        /// The variable holding the key.
        key_var: String,
        /// The variable holding the key's id.
        id_var: String,
    },
    /// The key in the file at `path` (64 hex digits or base64 of 32 bytes), with id `id`,
    /// read when the cache opens; see
    /// [`DataKey::from_file`](crate::crypto::DataKey::from_file) (on unix the file must be
    /// private to its owner, mode `0600` or `0400`).
    File {
        /// The key file.
        path: std::path::PathBuf,
        /// The key's id.
        id: u32,
    },
    /// The key in the OS keychain under `service` and `user`, with id `id`, created and
    /// stored there when absent (`DataKey::keychain_load_or_create`). Feature `keychain`.
    #[cfg(feature = "keychain")]
    Keychain {
        /// The keychain entry's service.
        service: String,
        /// The keychain entry's user (account).
        user: String,
        /// The key's id.
        id: u32,
    },
    /// The keys of this ring (the active one encrypts, the others still decrypt); made
    /// by [`KeySource::keys`].
    Keys(Box<KeyRing>),
    /// Values go through this codec as they are (it is already bound to whatever it binds).
    Codec(Arc<dyn ValueCodec>),
    /// No encryption: the auth0-spa-js JSON. Only when asked for by name.
    Plaintext,
}

impl Default for KeySource {
    /// [`KeySource::env`].
    fn default() -> Self {
        KeySource::env()
    }
}

impl KeySource {
    /// The key in `TOKENCACHE_KEY`, its id in `TOKENCACHE_KEY_ID` (default 1).
    pub fn env() -> Self {
        KeySource::env_vars(KEY_ENV, KEY_ID_ENV)
    }

    /// The key in `key_var`, its id in `id_var` (default 1).
    pub fn env_vars(key_var: impl Into<String>, id_var: impl Into<String>) -> Self {
        KeySource::Env {
            key_var: key_var.into(),
            id_var: id_var.into(),
        }
    }

    /// The key in the file at `path`, id 1.
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use std::os::unix::fs::PermissionsExt;
    /// use tokencache::KeySource;
    ///
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("key");
    /// std::fs::write(&path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff").unwrap();
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    /// assert_eq!(KeySource::file(&path).key_ring()?.expect("a key").active_id(), 1);
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    /// assert_eq!(KeySource::file(&path).key_ring().unwrap_err().kind(), tokencache::ErrorKind::Config);
    /// # }
    /// # Ok::<(), tokencache::Error>(())
    /// ```
    pub fn file(path: impl Into<std::path::PathBuf>) -> Self {
        KeySource::File {
            path: path.into(),
            id: 1,
        }
    }

    /// The key in the OS keychain under `service` and `user`, id 1, created there when
    /// absent. Feature `keychain`.
    #[cfg(feature = "keychain")]
    pub fn keychain(service: impl Into<String>, user: impl Into<String>) -> Self {
        KeySource::Keychain {
            service: service.into(),
            user: user.into(),
            id: 1,
        }
    }

    /// The keys of `ring`.
    pub fn keys(ring: KeyRing) -> Self {
        KeySource::Keys(Box::new(ring))
    }

    /// Whether values are stored unencrypted.
    pub fn is_plaintext(&self) -> bool {
        matches!(self, KeySource::Plaintext)
    }

    /// The key ring this source gives (`None` for plaintext). An environment variable
    /// that is missing or holds no valid key is an
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) error naming the variable, never its
    /// content, and so is a key file that is missing, holds no key or (unix) is open to
    /// group or others; a keychain that cannot be reached is an
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) error; a codec of one's own has no ring to give
    /// ([`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported)).
    pub fn key_ring(&self) -> Result<Option<KeyRing>> {
        match self {
            KeySource::Env { key_var, id_var } => {
                env_key(key_var, id_var, 1).map(|k| Some(KeyRing::new(k)))
            }
            KeySource::File { path, id } => {
                DataKey::from_file(*id, path).map(|k| Some(KeyRing::new(k)))
            }
            #[cfg(feature = "keychain")]
            KeySource::Keychain { service, user, id } => {
                DataKey::keychain_load_or_create(*id, service, user).map(|k| Some(KeyRing::new(k)))
            }
            KeySource::Keys(ring) => Ok(Some((**ring).clone())),
            KeySource::Codec(_) => Err(Error::unsupported(
                "a location with a codec of its own has no key ring",
            )),
            KeySource::Plaintext => Ok(None),
        }
    }

    /// The codec of a cache in `namespace`: an [`EncryptedCodec`] bound to it, the
    /// codec given, or `None` (plaintext).
    pub fn codec(&self, namespace: &str) -> Result<Option<Arc<dyn ValueCodec>>> {
        if let KeySource::Codec(codec) = self {
            return Ok(Some(codec.clone()));
        }
        Ok(self.key_ring()?.map(|ring| {
            Arc::new(EncryptedCodec::new(ring, namespace.to_owned())) as Arc<dyn ValueCodec>
        }))
    }
}

/// The key in `key_var` with the id in `id_var`, or `default_id` when that is not set.
///
/// ```
/// # std::env::set_var("NEW_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
/// let key = tokencache::env_key("NEW_KEY", "NEW_KEY_ID", 2)?;
/// assert_eq!(key.id(), 2);
/// # Ok::<(), tokencache::Error>(())
/// ```
pub fn env_key(key_var: &str, id_var: &str, default_id: u32) -> Result<DataKey> {
    let id = match std::env::var(id_var) {
        Err(_) => default_id,
        Ok(s) => s
            .trim()
            .parse()
            .map_err(|_| Error::config(format!("{id_var} must be a number (a key id)")))?,
    };
    DataKey::from_env(id, key_var)
}

/// Names the source, never a key.
impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env { key_var, id_var } => {
                write!(f, "KeySource::Env({key_var}, id from {id_var})")
            }
            KeySource::File { path, id } => {
                write!(f, "KeySource::File({}, id {id})", path.display())
            }
            #[cfg(feature = "keychain")]
            KeySource::Keychain { service, user, id } => {
                write!(
                    f,
                    "KeySource::Keychain(service {service:?}, user {user:?}, id {id})"
                )
            }
            KeySource::Keys(ring) => write!(f, "KeySource::Keys({ring:?})"),
            KeySource::Codec(codec) => write!(f, "KeySource::Codec({codec:?})"),
            KeySource::Plaintext => f.write_str("KeySource::Plaintext"),
        }
    }
}
