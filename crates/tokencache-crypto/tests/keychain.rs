//! The OS keychain through the `keyring` crate, against the real keystore of this machine
//! (on Linux the Secret Service: `scripts/keychain-test.sh` starts a D-Bus session and an
//! unlocked GNOME Keyring for it). Only built with the `keychain` feature, which only that
//! script turns on for tests: where no keychain can be reached, the test fails and says
//! why.
#![cfg(feature = "keychain")]

use tokencache_core::{Cacheable, ErrorKind, KeyManifestEntry, ValueCodec};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};

fn same_key(a: DataKey, b: DataKey) -> bool {
    let value = Cacheable::from(KeyManifestEntry {
        keys: vec!["x".into()],
    });
    let stored = EncryptedCodec::new(KeyRing::new(a), "ns")
        .encode("k", &value)
        .unwrap();
    EncryptedCodec::new(KeyRing::new(b), "ns")
        .decode("k", &stored)
        .map(|v| v == value)
        .unwrap_or(false)
}

/// Deletes the entry when the test ends, however it ends.
struct Cleanup(keyring::Entry);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.0.delete_credential();
    }
}

#[test]
fn load_or_create_stores_one_key_and_reads_it_back() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let service = format!("tokencache-test-{}-{nanos}", std::process::id());
    let user = "data-key";
    let entry = keyring::Entry::new(&service, user).unwrap();
    let _cleanup = Cleanup(keyring::Entry::new(&service, user).unwrap());

    // Nothing stored yet: a Config error naming the entry (or the keychain is missing).
    let err = DataKey::from_keychain(1, &service, user).unwrap_err();
    assert_ne!(
        err.kind(),
        ErrorKind::Unavailable,
        "no OS keychain reachable here: {err} (source: {:?}). On Linux run \
         scripts/keychain-test.sh, which starts a D-Bus session with GNOME Keyring",
        std::error::Error::source(&err).map(|s| s.to_string())
    );
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains(&service), "{err}");

    // Created once, then found: the same key material every time.
    let created = DataKey::keychain_load_or_create(1, &service, user).unwrap();
    let stored = entry.get_password().expect("the key is in the keychain");
    assert_eq!(DataKey::parse(1, &stored).map(|_| ()).ok(), Some(()));
    let again = DataKey::keychain_load_or_create(1, &service, user).unwrap();
    let read = DataKey::from_keychain(5, &service, user).unwrap();
    assert_eq!(read.id(), 5);
    assert!(same_key(created.clone(), again));
    assert!(same_key(
        created.clone(),
        DataKey::from_keychain(1, &service, user).unwrap()
    ));
    assert!(!same_key(created, DataKey::generate(1).unwrap()));

    // An entry that holds no key is an error, and load_or_create does not overwrite it.
    entry.set_password("not a key").unwrap();
    let err = DataKey::from_keychain(1, &service, user).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(!err.to_string().contains("not a key"));
    let err = DataKey::keychain_load_or_create(1, &service, user).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(entry.get_password().unwrap(), "not a key");
}
