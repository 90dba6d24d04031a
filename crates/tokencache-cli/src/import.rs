//! `tokencache import`: stores the values of a JSON dump, e.g. of auth0-spa-js's
//! `localStorage`: one object whose members are storage keys and whose values are what
//! auth0-spa-js stores there (the value itself, or its JSON text as web storage holds it).

use std::path::Path;

use serde_json::Value;
use tokencache::{Cacheable, Error, Result};

/// The values of `dump`, in key order; anything that is not such an object, or a value
/// auth0-spa-js would not have written, is an error naming the key (never the value).
pub fn parse(dump: &str) -> Result<Vec<(String, Cacheable)>> {
    let bad = |what: String| Error::serialization(what);
    let Value::Object(members) = serde_json::from_str::<Value>(dump)
        .map_err(|e| bad("the dump is not JSON".to_owned()).with_source(e))?
    else {
        return Err(bad(
            "the dump must be one JSON object: storage key -> value".to_owned(),
        ));
    };
    let mut values = members
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            let value = Cacheable::from_json(text.as_bytes()).map_err(|e| {
                bad(format!("the value of {key} is not a token-cache value")).with_source(e)
            })?;
            Ok((key, value))
        })
        .collect::<Result<Vec<_>>>()?;
    values.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(values)
}

/// Reads the dump at `path` (`-`: standard input).
pub fn read(path: &Path) -> Result<String> {
    let io = |e: std::io::Error| {
        Error::unavailable(format!("cannot read {}", path.display())).with_source(e)
    };
    if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(io)
    } else {
        std::fs::read_to_string(path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_values_and_their_json_text() {
        let dump = r#"{
            "@@auth0spajs@@::c::a::openid": {"body": {"client_id": "c", "access_token": "at"}, "expiresAt": 99},
            "@@auth0spajs@@::c": "{\"keys\": [\"@@auth0spajs@@::c::a::openid\"]}"
        }"#;
        let values = parse(dump).unwrap();
        assert_eq!(values[0].0, "@@auth0spajs@@::c");
        assert!(values[0].1.as_manifest().is_some());
        assert_eq!(values[1].1.expires_at(), Some(99));
    }

    #[test]
    fn bad_dumps_name_the_key_not_the_value() {
        for bad in ["[]", "nope", r#"{"k": 5}"#, r#"{"k": "secret-text"}"#] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.kind(), tokencache::ErrorKind::Serialization, "{bad}");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
    }
}
