//! Where a [`DataKey`] comes from besides the caller's bytes: a key file
//! ([`DataKey::from_file`]) and the OS keychain ([`DataKey::from_keychain`],
//! [`DataKey::keychain_load_or_create`], feature `keychain`). The environment variable
//! source is [`DataKey::from_env`].

use std::io::Read;
use std::path::Path;

use tokencache_core::{Error, Result};
use zeroize::Zeroizing;

use crate::key::DataKey;

impl DataKey {
    /// A key read from the file at `path`, which holds 64 hex digits or the base64 of 32
    /// bytes (surrounding whitespace, such as a final newline, is ignored), for shells and
    /// services that keep the key in a file.
    ///
    /// On unix the file must be readable and writable by its owner only: a file whose
    /// mode gives group or others any access (`mode & 0o077 != 0`) is refused with an
    /// [`ErrorKind::Config`](tokencache_core::ErrorKind::Config) error (`chmod 600` it);
    /// so is anything but a regular file. A missing or unreadable file, or text that is
    /// not a key, is a `Config` error too; no message repeats the file's content.
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use std::os::unix::fs::PermissionsExt;
    /// use tokencache_crypto::DataKey;
    ///
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("tokencache.key");
    /// std::fs::write(&path, format!("{}\n", "ab".repeat(32))).unwrap();
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    /// assert_eq!(DataKey::from_file(3, &path)?.id(), 3);
    ///
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    /// let err = DataKey::from_file(3, &path).unwrap_err();
    /// assert_eq!(err.kind(), tokencache_core::ErrorKind::Config);
    /// # }
    /// # Ok::<(), tokencache_core::Error>(())
    /// ```
    pub fn from_file(id: u32, path: impl AsRef<Path>) -> Result<DataKey> {
        let path = path.as_ref();
        let shown = path.display();
        let cannot = |e: std::io::Error| {
            Error::config(format!("cannot read the key file {shown}: {e}")).with_source(e)
        };
        let file = std::fs::File::open(path).map_err(cannot)?;
        // The mode of the file that is read, not of whatever the path names later.
        let meta = file.metadata().map_err(cannot)?;
        if !meta.is_file() {
            return Err(Error::config(format!(
                "the key file {shown} is not a regular file"
            )));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(Error::config(format!(
                    "the key file {shown} has mode {mode:o}: group or others may read or \
                     write it; it must be private to its owner (chmod 600 {shown})"
                )));
            }
        }
        // Room for the whole file up front, so the buffer is never reallocated (which
        // would leave a copy of the key behind, unwiped).
        let capacity = usize::try_from(meta.len()).unwrap_or(0).min(4096) + 1;
        let mut text = Zeroizing::new(String::with_capacity(capacity));
        file.take(4096).read_to_string(&mut text).map_err(|e| {
            Error::config(format!("cannot read the key file {shown} as text")).with_source(e)
        })?;
        DataKey::parse(id, &text)
            .map_err(|e| Error::config(format!("the key file {shown}: {}", e.message())))
    }
}

#[cfg(feature = "keychain")]
mod keychain {
    use aes_gcm::aead::{Generate, Key};
    use aes_gcm::Aes256Gcm;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use tokencache_core::{Error, Result};
    use zeroize::Zeroizing;

    use crate::key::{DataKey, KeyBytes};

    fn entry(service: &str, user: &str) -> Result<keyring::Entry> {
        keyring::Entry::new(service, user).map_err(|e| map_keyring(service, user, e))
    }

    /// A keychain error, naming the entry, never a secret.
    fn map_keyring(service: &str, user: &str, e: keyring::Error) -> Error {
        let what = format!("OS keychain entry (service {service:?}, user {user:?})");
        match e {
            keyring::Error::NoEntry => Error::config(format!("no key in the {what}")),
            keyring::Error::PlatformFailure(_) | keyring::Error::NoStorageAccess(_) => {
                Error::unavailable(format!("the OS keychain is not available for the {what}"))
                    .with_source(e)
            }
            keyring::Error::BadEncoding(_) => {
                Error::config(format!("the {what} does not hold text"))
            }
            other => Error::config(format!("the {what} cannot be used")).with_source(other),
        }
    }

    impl DataKey {
        /// The key stored in the OS keychain (macOS Keychain, Windows Credential
        /// Manager, the Secret Service on Linux — GNOME Keyring, KWallet) under
        /// `service` and `user`, as 64 hex digits or base64 (see [`DataKey::parse`]).
        /// Feature `keychain`.
        ///
        /// No entry is an [`ErrorKind::Config`](tokencache_core::ErrorKind::Config)
        /// error; a keychain that cannot be reached (no Secret Service running, a locked
        /// keychain) an [`ErrorKind::Unavailable`](tokencache_core::ErrorKind::Unavailable)
        /// one. Messages name the entry, never the key.
        pub fn from_keychain(id: u32, service: &str, user: &str) -> Result<DataKey> {
            let text = Zeroizing::new(
                entry(service, user)?
                    .get_password()
                    .map_err(|e| map_keyring(service, user, e))?,
            );
            DataKey::parse(id, &text).map_err(|e| {
                Error::config(format!(
                    "the OS keychain entry (service {service:?}, user {user:?}): {}",
                    e.message()
                ))
            })
        }

        /// The key in the OS keychain under `service` and `user`
        /// ([`DataKey::from_keychain`]); when there is none, a fresh random key is
        /// created, stored there (as base64) and returned. Feature `keychain`.
        ///
        /// Two processes creating the key at once both read back what the keychain
        /// holds after storing theirs, so they end up with the same key in all but the
        /// narrowest race (which the SQLite backend's key check then reports).
        pub fn keychain_load_or_create(id: u32, service: &str, user: &str) -> Result<DataKey> {
            match DataKey::from_keychain(id, service, user) {
                Err(e) if e.kind() == tokencache_core::ErrorKind::Config => {
                    let entry = entry(service, user)?;
                    match entry.get_password() {
                        Err(keyring::Error::NoEntry) => {}
                        // The entry exists but holds no valid key: never overwrite it.
                        _ => return Err(e),
                    }
                    let key = KeyBytes(Key::<Aes256Gcm>::try_generate().map_err(|e| {
                        Error::unexpected("the system random number generator failed")
                            .with_source(e)
                    })?);
                    let text = Zeroizing::new(STANDARD.encode(key.0.as_slice()));
                    entry
                        .set_password(&text)
                        .map_err(|e| map_keyring(service, user, e))?;
                    tracing::info!(
                        service,
                        user,
                        key_id = id,
                        "stored a new key in the OS keychain"
                    );
                    DataKey::from_keychain(id, service, user)
                }
                other => other,
            }
        }
    }
}
