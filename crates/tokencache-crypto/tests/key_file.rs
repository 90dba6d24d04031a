//! DataKey::from_file: hex or base64 in a private file; open files refused on unix.

use std::sync::Arc;

use base64::Engine as _;
use tokencache_core::{Cacheable, ErrorKind, KeyManifestEntry, ValueCodec};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};

const SECRET: [u8; 32] = [0x5a; 32];

fn write_key(dir: &std::path::Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
    path
}

/// Whether `a` and `b` are the same key material (what one encrypts the other decrypts).
fn same_key(a: DataKey, b: DataKey) -> bool {
    let value = Cacheable::from(KeyManifestEntry {
        keys: vec!["x".into()],
    });
    let ca = EncryptedCodec::new(KeyRing::new(a), "ns");
    let cb = Arc::new(EncryptedCodec::new(KeyRing::new(b), "ns"));
    let stored = ca.encode("k", &value).unwrap();
    cb.decode("k", &stored).map(|v| v == value).unwrap_or(false)
}

#[test]
fn reads_hex_and_base64_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let hex: String = SECRET.iter().map(|b| format!("{b:02x}")).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    let from_hex =
        DataKey::from_file(7, write_key(dir.path(), "hex", &format!("{hex}\n"), 0o600)).unwrap();
    let from_b64 = DataKey::from_file(7, write_key(dir.path(), "b64", &b64, 0o400)).unwrap();
    assert_eq!(from_hex.id(), 7);
    assert!(same_key(from_hex.clone(), DataKey::new(7, SECRET)));
    assert!(same_key(from_b64, DataKey::new(7, SECRET)));
    assert!(!same_key(from_hex, DataKey::new(7, [1; 32])));
}

#[test]
fn bad_files_are_config_errors_that_never_show_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let missing = DataKey::from_file(1, dir.path().join("nope")).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Config);
    let secret_ish = "not-a-key-but-secret-text";
    let err = DataKey::from_file(1, write_key(dir.path(), "bad", secret_ish, 0o600)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(!format!("{err} {err:?}").contains(secret_ish));
    let short =
        DataKey::from_file(1, write_key(dir.path(), "short", &"ab".repeat(16), 0o600)).unwrap_err();
    assert_eq!(short.kind(), ErrorKind::Config);
    let not_file = DataKey::from_file(1, dir.path()).unwrap_err();
    assert_eq!(not_file.kind(), ErrorKind::Config);
}

#[cfg(unix)]
#[test]
fn files_open_to_group_or_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hex: String = SECRET.iter().map(|b| format!("{b:02x}")).collect();
    for mode in [0o640, 0o604, 0o620, 0o602, 0o610, 0o601, 0o644, 0o666] {
        let path = write_key(dir.path(), &format!("k{mode:o}"), &hex, mode);
        let err = DataKey::from_file(1, &path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{mode:o}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(!err.to_string().contains(&hex));
    }
    for mode in [0o600, 0o400, 0o700] {
        let path = write_key(dir.path(), &format!("ok{mode:o}"), &hex, mode);
        assert!(DataKey::from_file(1, &path).is_ok(), "{mode:o}");
    }
}
