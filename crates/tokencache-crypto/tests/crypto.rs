//! Behaviour of the encryption layer: authentication, binding, rotation, secrecy.

use std::sync::Arc;

use tokencache_core::{
    decode_or_miss, CacheEntry, Cacheable, EntryBody, ErrorKind, TextCodec, ValueCodec,
    WrappedCacheEntry, TEXT_MARKER,
};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};

const RAW_KEY_1: [u8; 32] = [0x5a; 32];
const RAW_KEY_2: [u8; 32] = [0xc3; 32];
const ACCESS_TOKEN: &str = "at-PLAINTEXT-SECRET-4242";
const REFRESH_TOKEN: &str = "rt-PLAINTEXT-SECRET-7777";

fn entry() -> Cacheable {
    let e = CacheEntry::new("client", "https://api", "openid read", ACCESS_TOKEN, 3600.0)
        .with_refresh_token(REFRESH_TOKEN);
    WrappedCacheEntry::new(EntryBody::from(e), 1_700_003_600).into()
}

fn codec(keys: KeyRing, ns: &str) -> EncryptedCodec {
    EncryptedCodec::new(keys, ns)
}

fn ring1() -> KeyRing {
    KeyRing::new(DataKey::new(1, RAW_KEY_1))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn round_trip() {
    let c = codec(ring1(), "ns");
    let stored = c.encode("k", &entry()).unwrap();
    assert_eq!(c.decode("k", &stored).unwrap(), entry());
    assert!(!c.is_text());
    assert!(!contains(&stored, ACCESS_TOKEN.as_bytes()));
    assert!(!contains(&stored, REFRESH_TOKEN.as_bytes()));
    assert_eq!(EncryptedCodec::key_id_of(&stored), Some(1));
}

#[test]
fn wrong_key_is_an_integrity_error() {
    let stored = codec(ring1(), "ns").encode("k", &entry()).unwrap();
    // Same key id, other key material.
    let other = codec(KeyRing::new(DataKey::new(1, RAW_KEY_2)), "ns");
    let err = other.decode("k", &stored).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(!err.is_temporary());
    // decode_or_miss returns it as an error, not a miss.
    assert_eq!(
        decode_or_miss(&other, "k", &stored).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    // A key id the ring does not hold.
    let unknown = codec(KeyRing::new(DataKey::new(9, RAW_KEY_1)), "ns");
    assert_eq!(
        unknown.decode("k", &stored).unwrap_err().kind(),
        ErrorKind::Integrity
    );
}

#[test]
fn any_flipped_bit_is_an_integrity_error() {
    let c = codec(ring1(), "ns");
    let stored = c.encode("k", &entry()).unwrap();
    for i in 0..stored.len() {
        for bit in 0..8 {
            let mut bad = stored.clone();
            bad[i] ^= 1 << bit;
            let err = c.decode("k", &bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Integrity, "byte {i} bit {bit}");
            assert!(c.recode("k", &bad).is_err());
        }
    }
    // Truncated or extended values, too.
    for len in 0..stored.len() {
        assert_eq!(
            c.decode("k", &stored[..len]).unwrap_err().kind(),
            ErrorKind::Integrity
        );
    }
    let mut longer = stored.clone();
    longer.push(0);
    assert_eq!(
        c.decode("k", &longer).unwrap_err().kind(),
        ErrorKind::Integrity
    );
}

#[test]
fn a_value_moved_to_another_key_or_namespace_fails() {
    let c = codec(ring1(), "ns");
    let stored = c.encode("@@auth0spajs@@::a::api::read", &entry()).unwrap();
    assert_eq!(
        c.decode("@@auth0spajs@@::b::api::read", &stored)
            .unwrap_err()
            .kind(),
        ErrorKind::Integrity
    );
    let other_ns = codec(ring1(), "ns2");
    assert_eq!(
        other_ns
            .decode("@@auth0spajs@@::a::api::read", &stored)
            .unwrap_err()
            .kind(),
        ErrorKind::Integrity
    );
    // Namespace and key cannot trade bytes ("ns" + "xk" vs "nsx" + "k").
    let a = codec(ring1(), "ns").encode("xk", &entry()).unwrap();
    assert!(codec(ring1(), "nsx").decode("k", &a).is_err());
    // Re-labelling the key id onto another key of the ring fails too.
    let mut ring = ring1();
    ring.rotate(DataKey::new(2, RAW_KEY_1)).unwrap(); // same bytes, other id
    let c2 = codec(ring, "ns");
    let mut relabelled = stored.clone();
    relabelled[1..5].copy_from_slice(&2u32.to_be_bytes());
    assert!(c2.decode("@@auth0spajs@@::a::api::read", &stored).is_ok());
    assert_eq!(
        c2.decode("@@auth0spajs@@::a::api::read", &relabelled)
            .unwrap_err()
            .kind(),
        ErrorKind::Integrity
    );
}

#[test]
fn every_write_uses_a_fresh_nonce() {
    let c = codec(ring1(), "ns");
    let a = c.encode("k", &entry()).unwrap();
    let b = c.encode("k", &entry()).unwrap();
    assert_ne!(a, b);
    assert_ne!(a[5..17], b[5..17], "nonces differ");
}

#[test]
fn old_keys_read_after_rotation_and_recode_moves_values() {
    let before = codec(ring1(), "ns");
    let stored = before.encode("k", &entry()).unwrap();
    assert_eq!(before.recode("k", &stored).unwrap(), None);

    let mut ring = ring1();
    ring.rotate(DataKey::new(2, RAW_KEY_2)).unwrap();
    assert_eq!(ring.active_id(), 2);
    let after = codec(ring.clone(), "ns");
    assert_eq!(after.decode("k", &stored).unwrap(), entry());
    let moved = after
        .recode("k", &stored)
        .unwrap()
        .expect("under an old key");
    assert_eq!(EncryptedCodec::key_id_of(&moved), Some(2));
    assert_eq!(after.decode("k", &moved).unwrap(), entry());
    assert_eq!(after.recode("k", &moved).unwrap(), None);
    // New writes use the new key; the old ring cannot read them.
    let fresh = after.encode("k", &entry()).unwrap();
    assert_eq!(EncryptedCodec::key_id_of(&fresh), Some(2));
    assert_eq!(
        before.decode("k", &fresh).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    // Once the old key is dropped, values under it are integrity errors.
    ring.remove_old_key(1);
    assert_eq!(
        codec(ring, "ns").decode("k", &stored).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    // Duplicate ids are refused.
    assert_eq!(
        ring1()
            .with_old_key(DataKey::new(1, RAW_KEY_2))
            .unwrap_err()
            .kind(),
        ErrorKind::Config
    );
}

#[test]
fn undecodable_plaintext_is_a_miss_not_an_error() {
    /// A codec whose output the JSON codec cannot read back.
    #[derive(Debug)]
    struct Garbage;
    impl ValueCodec for Garbage {
        fn encode(&self, _: &str, _: &Cacheable) -> tokencache_core::Result<Vec<u8>> {
            Ok(b"not json".to_vec())
        }
        fn decode(&self, k: &str, b: &[u8]) -> tokencache_core::Result<Cacheable> {
            tokencache_core::JsonCodec.decode(k, b)
        }
    }
    let c = EncryptedCodec::with_inner(ring1(), "ns", Arc::new(Garbage));
    let stored = c.encode("k", &entry()).unwrap();
    assert_eq!(
        c.decode("k", &stored).unwrap_err().kind(),
        ErrorKind::Serialization
    );
    assert!(decode_or_miss(&c, "k", &stored).unwrap().is_none());
}

#[test]
fn debug_and_errors_never_show_keys_or_plaintext() {
    let mut ring = ring1();
    ring.rotate(DataKey::new(2, RAW_KEY_2)).unwrap();
    let c = codec(ring.clone(), "ns");
    let stored = c.encode("k", &entry()).unwrap();
    let mut bad = stored.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let wrong = codec(KeyRing::new(DataKey::new(2, RAW_KEY_1)), "ns");

    let mut outputs = vec![
        format!("{ring:?}"),
        format!("{c:?}"),
        format!("{:?}", DataKey::new(1, RAW_KEY_1)),
        format!("{:?}", TextCodec::new(Arc::new(codec(ring1(), "ns")))),
    ];
    for err in [
        c.decode("k", &bad).unwrap_err(),
        wrong.decode("k", &stored).unwrap_err(),
        DataKey::parse(1, &hex(&RAW_KEY_1[..31])).unwrap_err(),
        DataKey::parse(1, &format!("{}zz", &hex(&RAW_KEY_1)[..62])).unwrap_err(),
    ] {
        outputs.push(format!("{err}"));
        outputs.push(format!("{err:?}"));
    }
    assert!(outputs[0].contains("active: 2"), "{}", outputs[0]);
    for out in &outputs {
        for key in [RAW_KEY_1, RAW_KEY_2] {
            assert!(!out.to_lowercase().contains(&hex(&key[..8])), "{out}");
            assert!(!contains(out.as_bytes(), &key[..8]), "{out}");
            assert!(!out.contains(&format!("{:?}", &key[..4])), "{out}");
        }
        assert!(
            !out.contains(ACCESS_TOKEN) && !out.contains(REFRESH_TOKEN),
            "{out}"
        );
        assert!(!out.contains("4242") && !out.contains("7777"), "{out}");
    }
}

#[test]
fn keys_parse_from_hex_and_base64() {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let raw: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(250))
        .collect();
    let reference = codec(KeyRing::new(DataKey::from_slice(1, &raw).unwrap()), "ns");
    let stored = reference.encode("k", &entry()).unwrap();

    let texts = [
        hex(&raw),
        hex(&raw).to_uppercase(),
        format!("  {}\n", hex(&raw)),
        STANDARD.encode(&raw),
        URL_SAFE_NO_PAD.encode(&raw),
    ];
    for text in &texts {
        let key = DataKey::parse(1, text).unwrap();
        let c = codec(KeyRing::new(key), "ns");
        assert_eq!(c.decode("k", &stored).unwrap(), entry(), "{text}");
    }

    for bad in [
        String::new(),
        hex(&raw[..31]),
        format!("{}00", hex(&raw)),
        STANDARD.encode(&raw[..16]),
        STANDARD.encode([raw.clone(), raw.clone()].concat()),
        "not a key at all!".to_owned(),
    ] {
        assert_eq!(
            DataKey::parse(1, &bad).unwrap_err().kind(),
            ErrorKind::Config,
            "{bad}"
        );
    }
    assert_eq!(
        DataKey::from_slice(1, &raw[..31]).unwrap_err().kind(),
        ErrorKind::Config
    );

    // From the environment (a unique variable name: tests run in parallel).
    let var = "TOKENCACHE_CRYPTO_TEST_KEY_HEX";
    std::env::set_var(var, hex(&raw));
    let key = DataKey::from_env(1, var).unwrap();
    assert_eq!(
        codec(KeyRing::new(key), "ns").decode("k", &stored).unwrap(),
        entry()
    );
    std::env::set_var(var, "short");
    let err = DataKey::from_env(1, var).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(!err.to_string().contains("short"), "{err}");
    assert_eq!(
        DataKey::from_env(1, "TOKENCACHE_CRYPTO_TEST_UNSET")
            .unwrap_err()
            .kind(),
        ErrorKind::Config
    );
}

#[test]
fn text_codec_round_trips_and_detects_tampering() {
    let inner = Arc::new(codec(ring1(), "web"));
    let c = TextCodec::new(inner.clone());
    assert!(c.is_text());
    let stored = c.encode("k", &entry()).unwrap();
    let text = std::str::from_utf8(&stored).unwrap();
    assert!(text.starts_with(TEXT_MARKER));
    assert_eq!(c.decode("k", &stored).unwrap(), entry());

    // Tampering with the base64 payload never yields data.
    for i in TEXT_MARKER.len()..stored.len() {
        let mut bad = stored.clone();
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        assert!(c.decode("k", &bad).is_err(), "position {i}");
    }
    let mut bad = stored.clone();
    bad.push(b'!');
    assert_eq!(
        c.decode("k", &bad).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    // A plaintext value (no marker) is a miss, not data.
    let plain = entry().to_json().unwrap();
    assert!(decode_or_miss(&c, "k", &plain).unwrap().is_none());

    // Rotation through the text form.
    let mut ring = ring1();
    ring.rotate(DataKey::new(2, RAW_KEY_2)).unwrap();
    let c2 = TextCodec::new(Arc::new(codec(ring, "web")));
    let moved = c2.recode("k", &stored).unwrap().expect("old key");
    assert!(moved.starts_with(TEXT_MARKER.as_bytes()));
    assert_eq!(c2.decode("k", &moved).unwrap(), entry());
    assert_eq!(c2.recode("k", &moved).unwrap(), None);

    // Over a text codec it is a pass-through.
    let json = TextCodec::new(Arc::new(tokencache_core::JsonCodec));
    assert_eq!(
        json.encode("k", &entry()).unwrap(),
        entry().to_json().unwrap()
    );
}
