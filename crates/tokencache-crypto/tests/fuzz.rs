//! Robustness: arbitrary and tampered bytes fed to every decode path of the encryption
//! layer — `EncryptedCodec::decode`/`recode`, the base64 text layer (`TextCodec`), key
//! parsing — never panic, never yield data that was not written, and give a typed error.
//!
//! 256 cases per property by default (proptest's own); `PROPTEST_CASES=100000` runs more.

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use tokencache_core::{
    decode_or_miss, CacheEntry, Cacheable, EntryBody, ErrorKind, JsonCodec, TextCodec, ValueCodec,
    WrappedCacheEntry, TEXT_MARKER,
};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};

const KEY: &str = "@@auth0spajs@@::client::https://api::openid read";

fn value() -> Cacheable {
    let e = CacheEntry::new("client", "https://api", "openid read", "at-secret", 3600.0)
        .with_refresh_token("rt-secret");
    WrappedCacheEntry::new(EntryBody::from(e), 1_700_003_600).into()
}

/// One codec (key ring of keys 1 and 2, 2 active) for every case: building a key is the
/// slow part.
fn codec() -> &'static Arc<EncryptedCodec> {
    static CODEC: OnceLock<Arc<EncryptedCodec>> = OnceLock::new();
    CODEC.get_or_init(|| {
        let mut ring = KeyRing::new(DataKey::new(1, [0x11; 32]));
        ring.rotate(DataKey::new(2, [0x22; 32])).unwrap();
        Arc::new(EncryptedCodec::new(ring, "fuzz"))
    })
}

fn text_codec() -> TextCodec {
    TextCodec::new(codec().clone())
}

fn sealed() -> &'static Vec<u8> {
    static SEALED: OnceLock<Vec<u8>> = OnceLock::new();
    SEALED.get_or_init(|| codec().encode(KEY, &value()).unwrap())
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Remove),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = bytes.len();
        match *e {
            Edit::Flip(i, b) if n > 0 => bytes[i % n] ^= b,
            Edit::Insert(i, b) => bytes.insert(i % (n + 1), b),
            Edit::Remove(i) if n > 0 => {
                bytes.remove(i % n);
            }
            Edit::Truncate(i) => bytes.truncate(i % (n + 1)),
            _ => {}
        }
    }
    bytes
}

/// Every decode path of the encrypting codec refuses `bytes` as an integrity error, or
/// (only when `bytes` is what was written) gives back the written value.
fn check_encrypted(key: &str, bytes: &[u8]) -> Result<(), TestCaseError> {
    let genuine = key == KEY && bytes == sealed().as_slice();
    let c = codec().as_ref();
    match c.decode(key, bytes) {
        Ok(v) => {
            prop_assert!(genuine, "forged bytes decoded");
            prop_assert_eq!(v, value());
        }
        Err(e) => {
            prop_assert!(!genuine, "genuine bytes refused: {}", e);
            prop_assert_eq!(e.kind(), ErrorKind::Integrity, "{}", e);
        }
    }
    match c.recode(key, bytes) {
        Ok(_) => prop_assert!(genuine, "forged bytes recoded"),
        Err(e) => prop_assert_eq!(e.kind(), ErrorKind::Integrity, "{}", e),
    }
    // Tampering is an error, never a miss.
    match decode_or_miss(c, key, bytes) {
        Ok(v) => prop_assert!(genuine && v == Some(value())),
        Err(e) => prop_assert_eq!(e.kind(), ErrorKind::Integrity, "{}", e),
    }
    let _ = EncryptedCodec::key_id_of(bytes);
    Ok(())
}

fn check_text(bytes: &[u8]) -> Result<(), TestCaseError> {
    match text_codec().decode(KEY, bytes) {
        // Only the genuine text decodes (the codec draws a fresh nonce per write, so the
        // only genuine text here is that of `sealed()`).
        Ok(v) => prop_assert_eq!(v, value()),
        Err(e) => {
            let marked = bytes.starts_with(TEXT_MARKER.as_bytes());
            let expected = if marked {
                ErrorKind::Integrity
            } else {
                ErrorKind::Serialization
            };
            prop_assert_eq!(e.kind(), expected, "{}", e);
        }
    }
    // Over a text codec (JSON) the layer passes the text through.
    match TextCodec::new(Arc::new(JsonCodec)).decode(KEY, bytes) {
        Ok(v) => prop_assert_eq!(Cacheable::from_json(bytes).ok(), Some(v)),
        Err(e) => prop_assert_eq!(e.kind(), ErrorKind::Serialization, "{}", e),
    }
    Ok(())
}

fn genuine_text() -> String {
    let mut out = String::from(TEXT_MARKER);
    out.push_str(&base64_of(sealed()));
    out
}

/// Standard base64 with padding, as `TextCodec` writes (written here, not taken from the
/// crate, so that the test checks the format).
fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn arbitrary_bytes_are_integrity_errors(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check_encrypted(KEY, &bytes)?;
    }

    #[test]
    fn a_well_formed_header_with_arbitrary_rest_is_an_integrity_error(
        key_id in prop_oneof![Just(1u32), Just(2u32), any::<u32>()],
        rest in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = vec![tokencache_crypto::FORMAT_VERSION];
        bytes.extend_from_slice(&key_id.to_be_bytes());
        bytes.extend_from_slice(&rest);
        check_encrypted(KEY, &bytes)?;
    }

    #[test]
    fn tampered_values_are_integrity_errors(edits in prop::collection::vec(edit(), 1..6)) {
        check_encrypted(KEY, &apply(sealed().clone(), &edits))?;
    }

    #[test]
    fn a_value_read_at_another_key_is_an_integrity_error(key in any::<String>()) {
        check_encrypted(&key, sealed())?;
    }

    #[test]
    fn arbitrary_text_decodes_or_fails_typed(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check_text(&bytes)?;
    }

    #[test]
    fn marked_arbitrary_text_is_an_integrity_error(rest in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut bytes = TEXT_MARKER.as_bytes().to_vec();
        bytes.extend_from_slice(&rest);
        check_text(&bytes)?;
        // Well-formed base64 of arbitrary bytes too.
        let text = format!("{TEXT_MARKER}{}", base64_of(&rest));
        check_text(text.as_bytes())?;
    }

    #[test]
    fn tampered_text_fails_typed(edits in prop::collection::vec(edit(), 1..6)) {
        check_text(&apply(genuine_text().into_bytes(), &edits))?;
    }

    #[test]
    fn arbitrary_key_text_parses_or_is_a_config_error_that_hides_it(text in any::<String>()) {
        if let Err(e) = DataKey::parse(1, &text) {
            prop_assert_eq!(e.kind(), ErrorKind::Config);
            if text.trim().chars().count() >= 12 {
                prop_assert!(!e.to_string().contains(text.trim()), "{}", e);
            }
        }
    }
}

#[test]
fn the_genuine_forms_decode() {
    // The mutations start from values that decode: otherwise they would test little.
    assert_eq!(codec().decode(KEY, sealed()).unwrap(), value());
    let text = genuine_text();
    assert_eq!(text_codec().decode(KEY, text.as_bytes()).unwrap(), value());
}
