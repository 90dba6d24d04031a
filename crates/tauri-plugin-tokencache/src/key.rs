//! [`KeySource`]: where the encryption key of the SQLite store comes from.

use std::fmt;

use tokencache_core::Result;
use tokencache_crypto::{DataKey, KeyRing};

/// The id given to a key read by [`KeySource::env`].
pub const DEFAULT_KEY_ID: u32 = 1;

/// Where the plugin gets the AES-256-GCM key of its encrypted SQLite store. It is asked
/// once, while the plugin is set up; a failure stops the app from starting (a missing
/// key is never an unencrypted store).
///
/// - [`KeySource::env`]: 64 hex digits or base64 of 32 bytes in an environment variable
///   (see [`DataKey::parse`]);
/// - [`KeySource::key`] / [`KeySource::key_ring`]: a key the app already holds (read
///   from the OS keychain, say), or a ring with older keys for reading while rotating;
/// - [`KeySource::from_fn`]: a function run during setup that returns the key.
///
/// `Debug` never prints key material.
///
/// ```
/// use tauri_plugin_tokencache::KeySource;
/// use tokencache_crypto::DataKey;
///
/// let from_env = KeySource::env("MYAPP_TOKENCACHE_KEY");
/// assert_eq!(format!("{from_env:?}"), r#"KeySource::Env("MYAPP_TOKENCACHE_KEY")"#);
///
/// let given = KeySource::key(DataKey::parse(7, &"ab".repeat(32))?);
/// assert_eq!(format!("{given:?}"), "KeySource::Keys { active: 7, .. }");
///
/// let computed = KeySource::from_fn(|| DataKey::parse(1, &"cd".repeat(32)));
/// assert_eq!(format!("{computed:?}"), "KeySource::Fn(..)");
/// # Ok::<(), tokencache_core::Error>(())
/// ```
pub struct KeySource(Inner);

enum Inner {
    Env(String),
    // Boxed: a ring holds expanded AES key schedules (hundreds of bytes).
    Keys(Box<KeyRing>),
    Fn(Box<dyn FnOnce() -> Result<DataKey> + Send>),
}

impl KeySource {
    /// The key in the environment variable `var` (id [`DEFAULT_KEY_ID`]), read with
    /// [`DataKey::from_env`]. A missing or malformed variable is a
    /// [`Config`](tokencache_core::ErrorKind::Config) error naming the variable, never
    /// its value.
    pub fn env(var: impl Into<String>) -> Self {
        KeySource(Inner::Env(var.into()))
    }

    /// A key the app already holds.
    pub fn key(key: DataKey) -> Self {
        KeySource::key_ring(KeyRing::new(key))
    }

    /// A key ring: its active key encrypts, its older keys still decrypt.
    pub fn key_ring(keys: KeyRing) -> Self {
        KeySource(Inner::Keys(Box::new(keys)))
    }

    /// A function run once during plugin setup, returning the key (from a keychain, a
    /// secret manager, a file). Its error stops the app from starting.
    pub fn from_fn(f: impl FnOnce() -> Result<DataKey> + Send + 'static) -> Self {
        KeySource(Inner::Fn(Box::new(f)))
    }

    /// The key ring this source yields.
    pub(crate) fn resolve(self) -> Result<KeyRing> {
        match self.0 {
            Inner::Env(var) => DataKey::from_env(DEFAULT_KEY_ID, &var).map(KeyRing::new),
            Inner::Keys(keys) => Ok(*keys),
            Inner::Fn(f) => f().map(KeyRing::new),
        }
    }
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Env(var) => write!(f, "KeySource::Env({var:?})"),
            Inner::Keys(keys) => {
                write!(f, "KeySource::Keys {{ active: {}, .. }}", keys.active_id())
            }
            Inner::Fn(_) => f.write_str("KeySource::Fn(..)"),
        }
    }
}
