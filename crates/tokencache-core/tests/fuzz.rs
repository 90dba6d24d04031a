//! Robustness: arbitrary bytes and strings fed to every decode path of the core — key
//! strings (`CacheKey::from_key`), the stored JSON (`Cacheable::from_json`, `JsonCodec`,
//! `decode_or_miss`) — never panic and give a valid value or a typed error.
//!
//! 256 cases per property by default (proptest's own); `PROPTEST_CASES=100000` runs more.

use proptest::prelude::*;
use tokencache_core::{decode_or_miss, CacheKey, Cacheable, ErrorKind, JsonCodec, ValueCodec};

/// Valid stored JSON written by auth0-spa-js (the golden fixtures), as seeds to mutate.
const SEEDS: [&str; 5] = [
    include_str!("fixtures/entry_full.json"),
    include_str!("fixtures/entry_nulls.json"),
    include_str!("fixtures/entry_unknown_fields.json"),
    include_str!("fixtures/id_token.json"),
    include_str!("fixtures/manifest.json"),
];

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
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
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

/// Seeds with a few random edits: mostly near-valid JSON, which reaches deeper than noise.
fn mutated_json() -> impl Strategy<Value = Vec<u8>> {
    (0..SEEDS.len(), prop::collection::vec(edit(), 0..6))
        .prop_map(|(seed, edits)| apply(SEEDS[seed].as_bytes().to_vec(), &edits))
}

/// Text made of JSON's own characters and the field names of the stored types.
fn json_like() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(":".to_owned()),
        Just(",".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("\"body\"".to_owned()),
        Just("\"expiresAt\"".to_owned()),
        Just("\"keys\"".to_owned()),
        Just("\"id_token\"".to_owned()),
        Just("\"decodedToken\"".to_owned()),
        Just("\"access_token\"".to_owned()),
        Just("\"refresh_token\"".to_owned()),
        Just("\"client_id\"".to_owned()),
        Just("\"expires_in\"".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        "\"[^\"\\\\]{0,8}\"".prop_map(|s| s),
    ];
    prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

/// Whatever decoded must re-encode and decode to itself.
fn check_decoded(result: tokencache_core::Result<Cacheable>) -> Result<(), TestCaseError> {
    match result {
        Ok(v) => {
            let again = Cacheable::from_json(&v.to_json().expect("a decoded value re-encodes"))
                .expect("a re-encoded value decodes");
            prop_assert_eq!(again, v);
        }
        Err(e) => prop_assert_eq!(e.kind(), ErrorKind::Serialization, "{}", e),
    }
    Ok(())
}

fn check_codecs(bytes: &[u8]) -> Result<(), TestCaseError> {
    check_decoded(Cacheable::from_json(bytes))?;
    check_decoded(JsonCodec.decode("k", bytes))?;
    // A value that does not decode is a miss, never an error.
    let miss = decode_or_miss(&JsonCodec, "k", bytes);
    prop_assert!(miss.is_ok(), "{:?}", miss);
    Ok(())
}

/// Key strings: mostly separators, the prefix and the ID-token suffix, so that every
/// branch of the parser is reached.
fn key_like() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        Just("::".to_owned()),
        Just(":".to_owned()),
        Just("@@auth0spajs@@".to_owned()),
        Just("@@user@@".to_owned()),
        Just(" ".to_owned()),
        "[a-z]{1,3}".prop_map(|s| s),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(part, 0..12).prop_map(|p| p.concat())
}

fn check_key(s: &str) -> Result<(), TestCaseError> {
    match CacheKey::from_key(s) {
        Ok(key) => match key.validate() {
            // A key that validates writes back to a string that parses to itself.
            Ok(()) => {
                let again = CacheKey::from_key(&key.to_key()).expect("a valid key re-parses");
                prop_assert_eq!(again, key);
            }
            Err(e) => prop_assert_eq!(e.kind(), ErrorKind::InvalidKey, "{}", e),
        },
        Err(e) => prop_assert_eq!(e.kind(), ErrorKind::InvalidKey, "{}", e),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn arbitrary_bytes_decode_or_fail_typed(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_codecs(&bytes)?;
    }

    #[test]
    fn near_valid_json_decodes_or_fails_typed(bytes in mutated_json()) {
        check_codecs(&bytes)?;
    }

    #[test]
    fn json_like_text_decodes_or_fails_typed(text in json_like()) {
        check_codecs(text.as_bytes())?;
    }

    #[test]
    fn arbitrary_key_strings_parse_or_fail_typed(s in any::<String>()) {
        check_key(&s)?;
    }

    #[test]
    fn key_like_strings_parse_or_fail_typed(s in key_like()) {
        check_key(&s)?;
    }
}

#[test]
fn the_seeds_are_valid() {
    // The mutations start from valid values: otherwise they would test little.
    for seed in SEEDS {
        Cacheable::from_json(seed.as_bytes()).expect("a golden fixture decodes");
    }
}
