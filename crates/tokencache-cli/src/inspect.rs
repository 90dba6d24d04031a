//! The subcommands that work on an opened cache: `keys`, `show`, `remove`, `clear`, `migrate`.

use std::sync::Arc;

use serde_json::Value;
use tokencache_core::{Cache, CacheManager, Cacheable, Error, Result};

/// What replaces a secret in `show` output.
pub const REDACTED: &str = "<redacted>";

/// Fields of a token entry's body shown as they are; every other field (tokens, the
/// decoded ID token, unknown fields) is redacted.
const PLAIN_BODY_FIELDS: &[&str] = &[
    "client_id",
    "audience",
    "scope",
    "expires_in",
    "token_type",
    "oauthTokenScope",
];

/// Every key of `cache`, sorted. A cache that cannot list its keys is an
/// [`ErrorKind::Unsupported`](tokencache_core::ErrorKind::Unsupported) error.
pub async fn keys(cache: &dyn Cache) -> Result<Vec<String>> {
    let mut keys = cache
        .all_keys()
        .await?
        .ok_or_else(|| Error::unsupported("this cache cannot list its keys"))?;
    keys.sort_unstable();
    Ok(keys)
}

/// The JSON of `value`, its secrets replaced by [`REDACTED`] unless `reveal`.
pub fn render(value: &Cacheable, reveal: bool) -> Result<Value> {
    let mut json = serde_json::to_value(value)
        .map_err(|e| Error::serialization("cannot encode the value").with_source(e))?;
    if reveal {
        return Ok(json);
    }
    match value {
        Cacheable::Entry(_) => {
            if let Some(Value::Object(body)) = json.get_mut("body") {
                for (name, v) in body.iter_mut() {
                    if !PLAIN_BODY_FIELDS.contains(&name.as_str()) {
                        *v = Value::from(REDACTED);
                    }
                }
            }
        }
        Cacheable::IdToken(_) => {
            if let Value::Object(fields) = &mut json {
                for v in fields.values_mut() {
                    *v = Value::from(REDACTED);
                }
            }
        }
        Cacheable::Manifest(_) => {}
    }
    Ok(json)
}

/// Copies every key of `from` to `to`, values as they are (expiry included). Returns the
/// number of keys copied; keys that vanish during the copy are skipped.
pub async fn migrate(from: &dyn Cache, to: &dyn Cache) -> Result<usize> {
    let mut copied = 0;
    for key in keys(from).await? {
        if let Some(value) = from.get(&key).await? {
            to.set(&key, value).await?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// Removes the keys under `prefix` through a [`CacheManager`]: every client's, or only
/// `client`'s (its entries and its ID token).
pub async fn clear(cache: Arc<dyn Cache>, prefix: &str, client: Option<&str>) -> Result<()> {
    let mut builder = CacheManager::builder(cache).prefix(prefix);
    if let Some(c) = client {
        builder = builder.client_id(c);
    }
    builder.build()?.clear(client).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokencache_core::{CacheEntry, DecodedToken, EntryBody, IdTokenEntry, WrappedCacheEntry};

    #[test]
    fn render_redacts_every_secret() {
        let mut claims = serde_json::Map::new();
        claims.insert("__raw".into(), Value::from("raw-id"));
        let decoded = DecodedToken {
            claims,
            ..Default::default()
        };
        let mut body = EntryBody::from(
            CacheEntry::new("c", "https://a", "openid", "access-secret", 60.0)
                .with_refresh_token("refresh-secret")
                .with_id_token("id-secret", decoded.clone()),
        );
        body.extra
            .insert("future_secret".into(), Value::from("xyz-secret"));
        let values = [
            Cacheable::Entry(WrappedCacheEntry::new(body, 99)),
            Cacheable::IdToken(IdTokenEntry {
                id_token: "id-secret".into(),
                decoded_token: decoded,
            }),
        ];
        for v in &values {
            let shown = render(v, false).unwrap().to_string();
            for secret in [
                "access-secret",
                "refresh-secret",
                "id-secret",
                "raw-id",
                "xyz-secret",
            ] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            assert!(shown.contains(REDACTED));
            assert!(render(v, true).unwrap().to_string().contains("id-secret"));
        }
        let shown = render(&values[0], false).unwrap();
        assert_eq!(shown["body"]["audience"], "https://a");
        assert_eq!(shown["expiresAt"], 99);
    }
}
