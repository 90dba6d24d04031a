//! The commands that read or change an opened cache: `keys`, `show`, `remove`, `clear`.

use std::sync::Arc;

use serde_json::{json, Value};
use tokencache::{Cache, CacheManager, Cacheable, Error, KeyRef, Result, SEPARATOR};

use crate::exit::{CliResult, Failure};

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
/// [`ErrorKind::Unsupported`](tokencache::ErrorKind::Unsupported) error.
pub async fn keys(cache: &dyn Cache) -> Result<Vec<String>> {
    let mut keys = cache
        .all_keys()
        .await?
        .ok_or_else(|| Error::unsupported("this cache cannot list its keys"))?
        .to_strings();
    keys.sort_unstable();
    Ok(keys)
}

/// The value at `key`; none is a "not found" failure that does not repeat the key.
pub async fn value(cache: &dyn Cache, key: &str) -> CliResult<Cacheable> {
    cache
        .get(key)
        .await?
        .ok_or_else(|| Failure::not_found("no value at the given key"))
}

/// The kind of a stored value, as `show` names it.
pub fn kind(value: &Cacheable) -> &'static str {
    match value {
        Cacheable::Entry(_) => "token entry",
        Cacheable::IdToken(_) => "id token",
        Cacheable::Manifest(_) => "key manifest",
    }
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

/// `show --json`: one object with the key, the kind and the (redacted) value.
pub fn show_json(key: &str, value: &Cacheable, reveal: bool) -> Result<Value> {
    Ok(json!({ "key": key, "kind": kind(value), "value": render(value, reveal)? }))
}

/// `show` for people: the key, the kind, the expiry relative to `now_s`, then the value's
/// fields one a line (secrets redacted unless `reveal`).
pub fn show_text(key: &str, value: &Cacheable, reveal: bool, now_s: i64) -> Result<String> {
    let mut out = format!("key:        {key}\nkind:       {}\n", kind(value));
    if let Some(at) = value.expires_at() {
        let rel = if at >= now_s {
            format!("in {} s", at - now_s)
        } else {
            format!("{} s ago", now_s - at)
        };
        out.push_str(&format!("expires at: {at} (unix seconds; {rel})\n"));
    }
    let json = render(value, reveal)?;
    let fields = match value {
        Cacheable::Entry(_) => json.get("body").cloned().unwrap_or(Value::Null),
        _ => json,
    };
    if let Value::Object(map) = fields {
        for (name, v) in map {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            out.push_str(&format!("{:<11} {v}\n", format!("{name}:")));
        }
    }
    Ok(out)
}

/// The keys `clear` removes: those under `prefix` and, with `client`, exactly that
/// client's (its entries, its ID token, a manifest kept under its id).
pub fn clear_selection(all: &[String], prefix: &str, client: Option<&str>) -> Vec<String> {
    let under = format!("{prefix}{SEPARATOR}");
    all.iter()
        .filter(|k| k.starts_with(&under))
        .filter(|k| client.is_none_or(|c| KeyRef::parse(k).is_ok_and(|k| k.belongs_to(prefix, c))))
        .cloned()
        .collect()
}

/// Clears through a [`CacheManager`] (every client's keys under `prefix`, or only
/// `client`'s) and returns the keys that are gone.
pub async fn clear(
    cache: Arc<dyn Cache>,
    prefix: &str,
    client: Option<&str>,
) -> Result<Vec<String>> {
    let before = keys(&*cache).await?;
    let mut builder = CacheManager::builder(cache.clone()).prefix(prefix);
    if let Some(c) = client {
        builder = builder.client_id(c);
    }
    builder.build()?.clear(client).await?;
    let after = keys(&*cache).await?;
    Ok(before
        .into_iter()
        .filter(|k| after.binary_search(k).is_err())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokencache::{CacheEntry, DecodedToken, EntryBody, IdTokenEntry, WrappedCacheEntry};

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
            let text = show_text("k", v, false, 50).unwrap();
            for secret in [
                "access-secret",
                "refresh-secret",
                "id-secret",
                "raw-id",
                "xyz-secret",
            ] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
                assert!(!text.contains(secret), "{secret} in {text}");
            }
            assert!(shown.contains(REDACTED));
            assert!(render(v, true).unwrap().to_string().contains("id-secret"));
        }
        let shown = render(&values[0], false).unwrap();
        assert_eq!(shown["body"]["audience"], "https://a");
        assert_eq!(shown["expiresAt"], 99);
        let text = show_text("k", &values[0], false, 50).unwrap();
        assert!(
            text.contains("expires at: 99 (unix seconds; in 49 s)"),
            "{text}"
        );
        assert!(text.contains("audience:   https://a"), "{text}");
    }

    #[test]
    fn clear_selects_exactly_one_client() {
        let all: Vec<String> = [
            "@@auth0spajs@@::app::@@user@@",
            "@@auth0spajs@@::app::https://a::openid",
            "@@auth0spajs@@::app-2::https://a::openid",
            "other::app::https://a::openid",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            clear_selection(&all, "@@auth0spajs@@", Some("app")),
            all[..2]
        );
        assert_eq!(clear_selection(&all, "@@auth0spajs@@", None), all[..3]);
    }
}

/// What `verify` found.
#[derive(Debug, Default)]
pub struct Verified {
    /// Values that read, decrypt and authenticate.
    pub readable: usize,
    /// Keys listed, then gone before they were read (expired or removed meanwhile).
    pub gone: usize,
    /// Keys whose value does not decode or authenticate, with the reason's kind.
    pub bad: Vec<(String, &'static str)>,
}

/// Reads every listed value of `cache`, going on past values that fail. A listed key
/// whose read is a miss but which is still listed holds a value that does not decode
/// (backends read such a value as a miss, as auth0-spa-js does); other errors (the store
/// is unavailable) end the run.
pub async fn verify(cache: &dyn Cache) -> Result<Verified> {
    let mut found = Verified::default();
    for key in keys(cache).await? {
        match cache.get(&key).await {
            Ok(Some(_)) => found.readable += 1,
            Ok(None) => {
                let still_listed = cache
                    .keys_with_prefix(&key)
                    .await?
                    .is_some_and(|keys| keys.contains(&key));
                if still_listed {
                    found.bad.push((key, "does not decode"));
                } else {
                    found.gone += 1;
                }
            }
            Err(e) if e.kind() == tokencache::ErrorKind::Integrity => {
                found.bad.push((key, "does not authenticate"))
            }
            Err(e) if e.kind() == tokencache::ErrorKind::Serialization => {
                found.bad.push((key, "does not decode"))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}
