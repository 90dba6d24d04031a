//! The values a cache stores, in the JSON forms auth0-spa-js 2.x writes.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::json_number;
use crate::redact::{FieldNames, Redacted, RedactedOpt};

/// The decoded ID token auth0-spa-js keeps beside it: `{"claims":{..},"user":{..}}`.
///
/// Both objects are kept as JSON, whatever claims they hold; fields other than `claims`
/// and `user` survive a rewrite in `extra`. `Debug` prints claim names only: the claims
/// hold the raw ID token (`__raw`).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecodedToken {
    /// The ID token's claims (`__raw` holds the token itself). Written only when not
    /// empty, so an object stored without `claims` is written back as it was.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub claims: Map<String, Value>,
    /// The user profile derived from the claims. Written only when not empty.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub user: Map<String, Value>,
    /// Any other field, kept as it was.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl fmt::Debug for DecodedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodedToken")
            .field("claims", &FieldNames(&self.claims))
            .field("user", &FieldNames(&self.user))
            .field("extra", &FieldNames(&self.extra))
            .finish()
    }
}

/// A token response to cache, as given to [`CacheManager::set`](crate::CacheManager::set)
/// (auth0-spa-js's `CacheEntry`).
///
/// ```
/// use tokencache_core::CacheEntry;
///
/// let e = CacheEntry::new("client", "https://api", "openid read", "at-123", 3600.0)
///     .with_refresh_token("rt-456");
/// assert_eq!(e.refresh_token.as_deref(), Some("rt-456"));
/// assert!(!format!("{e:?}").contains("at-123"));
/// ```
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The client (application) id.
    pub client_id: String,
    /// The API audience.
    pub audience: String,
    /// The space-separated scopes granted.
    pub scope: String,
    /// The access token.
    pub access_token: String,
    /// Lifetime of the access token in seconds.
    #[serde(with = "json_number::f64_int")]
    pub expires_in: f64,
    /// The ID token, if one came with the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The token type (`Bearer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// The refresh token, if one came with the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The decoded ID token.
    #[serde(
        rename = "decodedToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub decoded_token: Option<DecodedToken>,
    /// The scope string the authorization server returned.
    #[serde(
        rename = "oauthTokenScope",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub oauth_token_scope: Option<String>,
}

impl CacheEntry {
    /// An entry with the required fields.
    pub fn new(
        client_id: impl Into<String>,
        audience: impl Into<String>,
        scope: impl Into<String>,
        access_token: impl Into<String>,
        expires_in: f64,
    ) -> Self {
        CacheEntry {
            client_id: client_id.into(),
            audience: audience.into(),
            scope: scope.into(),
            access_token: access_token.into(),
            expires_in,
            ..Default::default()
        }
    }

    /// Sets the refresh token.
    pub fn with_refresh_token(mut self, rt: impl Into<String>) -> Self {
        self.refresh_token = Some(rt.into());
        self
    }

    /// Sets the ID token and its decoded form.
    pub fn with_id_token(mut self, id_token: impl Into<String>, decoded: DecodedToken) -> Self {
        self.id_token = Some(id_token.into());
        self.decoded_token = Some(decoded);
        self
    }
}

impl fmt::Debug for CacheEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheEntry")
            .field("client_id", &self.client_id)
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("access_token", &Redacted)
            .field("expires_in", &self.expires_in)
            .field("id_token", &RedactedOpt(&self.id_token))
            .field("token_type", &self.token_type)
            .field("refresh_token", &RedactedOpt(&self.refresh_token))
            .field("decoded_token", &RedactedOpt(&self.decoded_token))
            .field("oauth_token_scope", &self.oauth_token_scope)
            .finish()
    }
}

/// The `body` of a stored token entry: every [`CacheEntry`] field, each optional (an
/// expired entry keeps only `refresh_token`, `audience` and `scope`), and any other
/// field kept in `extra` so that it survives a read-modify-write. An explicit JSON
/// `null` reads as absent.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EntryBody {
    /// The client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The space-separated scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// Lifetime in seconds, as given when the entry was set.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "json_number::opt_f64"
    )]
    pub expires_in: Option<f64>,
    /// The ID token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The token type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// The refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The decoded ID token.
    #[serde(
        rename = "decodedToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub decoded_token: Option<DecodedToken>,
    /// The scope string the authorization server returned.
    #[serde(
        rename = "oauthTokenScope",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub oauth_token_scope: Option<String>,
    /// Fields this version does not know, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl EntryBody {
    /// The body auth0-spa-js keeps once the access token expired:
    /// `{refresh_token, audience, scope}`.
    pub fn refresh_only(&self) -> EntryBody {
        EntryBody {
            refresh_token: self.refresh_token.clone(),
            audience: self.audience.clone(),
            scope: self.scope.clone(),
            ..Default::default()
        }
    }

    /// The refresh token, when present and not empty (JavaScript treats `""` as absent).
    pub fn refresh_token(&self) -> Option<&str> {
        self.refresh_token.as_deref().filter(|s| !s.is_empty())
    }
}

impl From<CacheEntry> for EntryBody {
    fn from(e: CacheEntry) -> Self {
        EntryBody {
            client_id: Some(e.client_id),
            audience: Some(e.audience),
            scope: Some(e.scope),
            access_token: Some(e.access_token),
            expires_in: Some(e.expires_in),
            id_token: e.id_token,
            token_type: e.token_type,
            refresh_token: e.refresh_token,
            decoded_token: e.decoded_token,
            oauth_token_scope: e.oauth_token_scope,
            extra: Map::new(),
        }
    }
}

impl fmt::Debug for EntryBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryBody")
            .field("client_id", &self.client_id)
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("access_token", &RedactedOpt(&self.access_token))
            .field("expires_in", &self.expires_in)
            .field("id_token", &RedactedOpt(&self.id_token))
            .field("token_type", &self.token_type)
            .field("refresh_token", &RedactedOpt(&self.refresh_token))
            .field("decoded_token", &RedactedOpt(&self.decoded_token))
            .field("oauth_token_scope", &self.oauth_token_scope)
            .field("extra", &FieldNames(&self.extra))
            .finish()
    }
}

/// A stored token entry: `{"body":{..},"expiresAt":n}`, `expiresAt` in whole seconds
/// since the epoch. The body sits behind an [`Arc`], so that reading an entry from an
/// in-memory cache copies no token bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WrappedCacheEntry {
    /// The cached response.
    pub body: Arc<EntryBody>,
    /// When the access token expires, in seconds since the epoch.
    #[serde(rename = "expiresAt", with = "json_number::floor_i64")]
    pub expires_at: i64,
}

impl WrappedCacheEntry {
    /// An entry with `body` that expires at `expires_at` (seconds since the epoch).
    pub fn new(body: impl Into<Arc<EntryBody>>, expires_at: i64) -> Self {
        WrappedCacheEntry {
            body: body.into(),
            expires_at,
        }
    }

    /// The stored form of `entry` set at `now_s` (whole seconds since the epoch): it
    /// expires at `now_s + floor(expires_in)`, as auth0-spa-js computes it (and compares
    /// whole seconds, so rounding down changes no outcome).
    ///
    /// An `expires_in` that is NaN, infinite or negative is an
    /// [`ErrorKind::InvalidValue`](crate::ErrorKind::InvalidValue) error: such an entry
    /// would be stored already expired, or never expire.
    ///
    /// ```
    /// use tokencache_core::{CacheEntry, ErrorKind, WrappedCacheEntry};
    ///
    /// let e = CacheEntry::new("c", "https://api", "read", "at", 3599.9);
    /// assert_eq!(WrappedCacheEntry::from_entry(e, 1_000).unwrap().expires_at, 4_599);
    /// let bad = CacheEntry::new("c", "https://api", "read", "at", f64::NAN);
    /// let err = WrappedCacheEntry::from_entry(bad, 1_000).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidValue);
    /// ```
    pub fn from_entry(entry: CacheEntry, now_s: i64) -> Result<Self> {
        let expires_in = entry.expires_in;
        if !expires_in.is_finite() || expires_in < 0.0 {
            return Err(Error::invalid_value(
                "expires_in must be a finite, non-negative number of seconds",
            ));
        }
        // `as` saturates: an absurdly long lifetime stays the longest one.
        let expires_at = now_s.saturating_add(expires_in.floor() as i64);
        Ok(WrappedCacheEntry::new(EntryBody::from(entry), expires_at))
    }
}

/// The key manifest: `{"keys":[..]}`, the keys a manager wrote, for caches that cannot
/// list their keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyManifestEntry {
    /// The keys, in the order they were added.
    pub keys: Vec<String>,
}

/// A stored ID token: `{"id_token":"..","decodedToken":{..}}`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct IdTokenEntry {
    /// The raw ID token.
    pub id_token: String,
    /// The decoded ID token.
    #[serde(rename = "decodedToken")]
    pub decoded_token: DecodedToken,
}

impl fmt::Debug for IdTokenEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokenEntry")
            .field("id_token", &Redacted)
            .field("decoded_token", &self.decoded_token)
            .finish()
    }
}

/// Anything a [`Cache`](crate::Cache) stores. Cloning is cheap for token entries.
///
/// Its JSON form is that of the variant, with no tag, exactly as auth0-spa-js stores it:
///
/// ```
/// use tokencache_core::Cacheable;
///
/// let v = Cacheable::from_json(br#"{"keys":["@@auth0spajs@@::c::a::s"]}"#).unwrap();
/// assert!(matches!(v, Cacheable::Manifest(_)));
/// assert_eq!(v.to_json_string().unwrap(), r#"{"keys":["@@auth0spajs@@::c::a::s"]}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cacheable {
    /// A token entry.
    Entry(WrappedCacheEntry),
    /// The key manifest.
    Manifest(KeyManifestEntry),
    /// An ID token entry.
    IdToken(IdTokenEntry),
}

/// One pass over the stored JSON; the variant is chosen by the fields present.
#[derive(Deserialize)]
struct RawCacheable {
    #[serde(default)]
    body: Option<Arc<EntryBody>>,
    #[serde(rename = "expiresAt", default, with = "json_number::floor_i64::opt")]
    expires_at: Option<i64>,
    #[serde(default)]
    keys: Option<Vec<String>>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(rename = "decodedToken", default)]
    decoded_token: Option<DecodedToken>,
}

impl<'de> Deserialize<'de> for Cacheable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let raw = RawCacheable::deserialize(d)?;
        match raw {
            RawCacheable {
                body: Some(body),
                expires_at: Some(expires_at),
                ..
            } => Ok(Cacheable::Entry(WrappedCacheEntry { body, expires_at })),
            RawCacheable {
                body: Some(_),
                expires_at: None,
                ..
            } => Err(D::Error::custom("token entry without expiresAt")),
            RawCacheable {
                keys: Some(keys), ..
            } => Ok(Cacheable::Manifest(KeyManifestEntry { keys })),
            RawCacheable {
                id_token: Some(id_token),
                decoded_token,
                ..
            } => Ok(Cacheable::IdToken(IdTokenEntry {
                id_token,
                decoded_token: decoded_token.unwrap_or_default(),
            })),
            _ => Err(D::Error::custom(
                "not a token entry, a key manifest or an id token entry",
            )),
        }
    }
}

impl Cacheable {
    /// Parses the JSON form. The error says where parsing failed, never what the value held.
    pub fn from_json(bytes: &[u8]) -> Result<Cacheable> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::serialization(format!(
                "stored value is not a cache value (line {}, column {}, {:?})",
                e.line(),
                e.column(),
                e.classify()
            ))
        })
    }

    /// The JSON form, as bytes.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self)
            .map_err(|e| Error::serialization(format!("cannot encode value: {:?}", e.classify())))
    }

    /// The JSON form, as a string.
    pub fn to_json_string(&self) -> Result<String> {
        serde_json::to_string(self)
            .map_err(|e| Error::serialization(format!("cannot encode value: {:?}", e.classify())))
    }

    /// The token entry, if this is one.
    pub fn as_entry(&self) -> Option<&WrappedCacheEntry> {
        match self {
            Cacheable::Entry(e) => Some(e),
            _ => None,
        }
    }

    /// The key manifest, if this is one.
    pub fn as_manifest(&self) -> Option<&KeyManifestEntry> {
        match self {
            Cacheable::Manifest(m) => Some(m),
            _ => None,
        }
    }

    /// The ID token entry, if this is one.
    pub fn as_id_token(&self) -> Option<&IdTokenEntry> {
        match self {
            Cacheable::IdToken(t) => Some(t),
            _ => None,
        }
    }

    /// When the access token of a token entry expires (seconds since the epoch).
    pub fn expires_at(&self) -> Option<i64> {
        self.as_entry().map(|e| e.expires_at)
    }

    /// Whether this is a token entry that holds a non-empty refresh token. Physical
    /// expiry never drops such an entry before its configured
    /// [`Retention`](crate::Retention).
    pub fn has_refresh_token(&self) -> bool {
        self.as_entry()
            .is_some_and(|e| e.body.refresh_token().is_some())
    }
}

impl From<WrappedCacheEntry> for Cacheable {
    fn from(e: WrappedCacheEntry) -> Self {
        Cacheable::Entry(e)
    }
}

impl From<KeyManifestEntry> for Cacheable {
    fn from(m: KeyManifestEntry) -> Self {
        Cacheable::Manifest(m)
    }
}

impl From<IdTokenEntry> for Cacheable {
    fn from(t: IdTokenEntry) -> Self {
        Cacheable::IdToken(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_and_nulls() {
        let v = json!({"body":{"access_token":"a","refresh_token":null,"future":{"x":1}},"expiresAt":5});
        let c: Cacheable = serde_json::from_value(v).unwrap();
        let e = c.as_entry().unwrap();
        assert_eq!(e.body.refresh_token, None);
        assert_eq!(e.body.extra["future"], json!({"x":1}));
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(
            back,
            json!({"body":{"access_token":"a","future":{"x":1}},"expiresAt":5})
        );
    }

    #[test]
    fn fractional_numbers_are_accepted() {
        let c = Cacheable::from_json(br#"{"body":{"expires_in":1.5},"expiresAt":100.7}"#).unwrap();
        let e = c.as_entry().unwrap();
        assert_eq!(e.expires_at, 100);
        assert_eq!(e.body.expires_in, Some(1.5));
        let c = Cacheable::from_json(br#"{"body":{"expires_in":86400},"expiresAt":1}"#).unwrap();
        assert_eq!(
            c.to_json_string().unwrap(),
            r#"{"body":{"expires_in":86400},"expiresAt":1}"#
        );
    }

    #[test]
    fn bad_values_are_typed_errors_without_content() {
        for bad in [
            &b"not json"[..],
            br#"{"other":1}"#,
            br#"{"body":{"access_token":"secret-token"}}"#,
            br#"{"body":{"access_token":5},"expiresAt":1}"#,
            br#"[1,2]"#,
        ] {
            let e = Cacheable::from_json(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Serialization);
            assert!(!e.to_string().contains("secret-token"));
        }
    }

    #[test]
    fn expires_in_must_be_finite_and_not_negative() {
        let at = |expires_in: f64| {
            WrappedCacheEntry::from_entry(CacheEntry::new("c", "a", "s", "t", expires_in), 1_000)
        };
        for bad in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            -0.5,
            -1e300,
        ] {
            let e = at(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidValue, "{bad}");
        }
        assert_eq!(at(0.0).unwrap().expires_at, 1_000);
        assert_eq!(at(-0.0).unwrap().expires_at, 1_000);
        assert_eq!(at(59.99).unwrap().expires_at, 1_059);
        assert_eq!(at(86400.0).unwrap().expires_at, 87_400);
        assert_eq!(at(1e300).unwrap().expires_at, i64::MAX);
        let e = at(3600.0).unwrap();
        assert_eq!(e.body.expires_in, Some(3600.0));
        assert_eq!(e.body.access_token.as_deref(), Some("t"));
    }

    #[test]
    fn debug_never_prints_tokens() {
        let mut claims = Map::new();
        claims.insert("__raw".into(), json!("raw-id-token"));
        let decoded = DecodedToken {
            claims,
            ..Default::default()
        };
        let e = CacheEntry::new("c", "a", "s", "access-secret", 1.0)
            .with_refresh_token("refresh-secret")
            .with_id_token("id-secret", decoded.clone());
        let body = EntryBody::from(e.clone());
        let id = IdTokenEntry {
            id_token: "id-secret".into(),
            decoded_token: decoded,
        };
        let all = format!(
            "{e:?} {body:?} {:?} {id:?}",
            Cacheable::Entry(WrappedCacheEntry::new(body.clone(), 1))
        );
        for secret in [
            "access-secret",
            "refresh-secret",
            "id-secret",
            "raw-id-token",
        ] {
            assert!(!all.contains(secret), "{secret} leaked: {all}");
        }
        assert!(all.contains("__raw"));
    }
}
