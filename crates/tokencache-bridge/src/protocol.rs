//! The messages of the bridge: [`Request`], [`Response`] and the error names.

use std::borrow::Cow;
use std::fmt;

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use tokencache_core::{Cacheable, Error, ErrorKind};

/// The correlation id of a request, echoed in its response: a string or an integer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// An integer id (JavaScript transports count their requests).
    Number(i64),
    /// A string id.
    Text(String),
}

impl From<i64> for RequestId {
    fn from(n: i64) -> Self {
        RequestId::Number(n)
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        RequestId::Text(s.to_owned())
    }
}

/// The operation of a [`Request`], named as auth0-spa-js's `ICache` methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// `get(key)`: the value at `key`, or no value.
    #[serde(rename = "get")]
    Get,
    /// `set(key, value)`: stores a cache value at `key`.
    #[serde(rename = "set")]
    Set,
    /// `remove(key)`: removes `key` (removing a missing key is not an error).
    #[serde(rename = "remove")]
    Remove,
    /// `allKeys()`: the keys under the bridge's prefix, when the cache can list them.
    #[serde(rename = "allKeys")]
    AllKeys,
    /// Any other operation name; answered with an `unsupported` error.
    #[serde(other, skip_serializing)]
    Unknown,
}

impl Op {
    /// The wire name of the operation (`"unknown"` for [`Op::Unknown`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
            Op::Remove => "remove",
            Op::AllKeys => "allKeys",
            Op::Unknown => "unknown",
        }
    }
}

/// One call from the webview: `{"id"?, "op", "key"?, "value"?}`.
///
/// `Debug` never prints the value (it holds tokens).
///
/// ```
/// use tokencache_bridge::{Op, Request};
///
/// let req: Request = serde_json::from_str(r#"{"id":7,"op":"get","key":"@@auth0spajs@@::app"}"#).unwrap();
/// assert_eq!(req.op, Op::Get);
/// assert_eq!(Request::get("@@auth0spajs@@::app").with_id(7), req);
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Echoed in the response, so that a transport can match replies to requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The operation.
    pub op: Op,
    /// The cache key (all operations but `allKeys`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The value to store (`set` only), as auth0-spa-js passes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl Request {
    fn new(op: Op, key: Option<String>, value: Option<Value>) -> Self {
        Request {
            id: None,
            op,
            key,
            value,
        }
    }

    /// A `get` of `key`.
    pub fn get(key: impl Into<String>) -> Self {
        Self::new(Op::Get, Some(key.into()), None)
    }

    /// A `set` of `value` (a cache value's JSON) at `key`.
    pub fn set(key: impl Into<String>, value: Value) -> Self {
        Self::new(Op::Set, Some(key.into()), Some(value))
    }

    /// A `remove` of `key`.
    pub fn remove(key: impl Into<String>) -> Self {
        Self::new(Op::Remove, Some(key.into()), None)
    }

    /// An `allKeys` request.
    pub fn all_keys() -> Self {
        Self::new(Op::AllKeys, None, None)
    }

    /// The same request with correlation id `id`.
    pub fn with_id(mut self, id: impl Into<RequestId>) -> Self {
        self.id = Some(id.into());
        self
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("op", &self.op)
            .field("key", &self.key)
            .field(
                "value",
                &format_args!(
                    "{}",
                    if self.value.is_some() {
                        "Some(<redacted>)"
                    } else {
                        "None"
                    }
                ),
            )
            .finish()
    }
}

/// The value of a successful response: a cache value (`get`) or a key list (`allKeys`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ResponseValue {
    /// The keys under the prefix (`allKeys`).
    Keys(Vec<String>),
    /// A stored value (`get`). `Debug` prints no token.
    Value(Cacheable),
}

/// The answer to one [`Request`]: `{"id"?, "ok": true, "value"?}` or
/// `{"id"?, "ok": false, "error": {"kind", "message", "temporary"}}`.
///
/// ```
/// use tokencache_bridge::{BridgeError, Response};
/// use tokencache_core::ErrorKind;
///
/// let r = Response::error(None, BridgeError::new(ErrorKind::InvalidKey, "key is outside the prefix"));
/// assert_eq!(
///     serde_json::to_string(&r).unwrap(),
///     r#"{"ok":false,"error":{"kind":"invalid_key","message":"key is outside the prefix","temporary":false}}"#
/// );
/// let back: Response = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
/// assert_eq!(back, r);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The id of the request, if it had one.
    pub id: Option<RequestId>,
    /// The value (none for `set`, `remove` and a `get` miss), or the error.
    pub result: Result<Option<ResponseValue>, BridgeError>,
}

impl Response {
    /// A successful response.
    pub fn ok(id: Option<RequestId>, value: Option<ResponseValue>) -> Self {
        Response {
            id,
            result: Ok(value),
        }
    }

    /// An error response.
    pub fn error(id: Option<RequestId>, error: BridgeError) -> Self {
        Response {
            id,
            result: Err(error),
        }
    }

    /// Whether the request succeeded.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }

    /// The response as JSON text. Encoding cannot fail for these types; should it ever, the
    /// answer is an `unexpected` error response, never a panic.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            tracing::error!(category = ?e.classify(), "cannot encode a bridge response");
            let fallback = Response::error(
                self.id.clone(),
                BridgeError::new(ErrorKind::Unexpected, "cannot encode the response"),
            );
            serde_json::to_string(&fallback).unwrap_or_else(|_| {
                r#"{"ok":false,"error":{"kind":"unexpected","message":"cannot encode the response","temporary":false}}"#
                    .to_owned()
            })
        })
    }
}

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(id) = &self.id {
            map.serialize_entry("id", id)?;
        }
        match &self.result {
            Ok(value) => {
                map.serialize_entry("ok", &true)?;
                if let Some(value) = value {
                    map.serialize_entry("value", value)?;
                }
            }
            Err(error) => {
                map.serialize_entry("ok", &false)?;
                map.serialize_entry("error", error)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Response {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default)]
            id: Option<RequestId>,
            ok: bool,
            #[serde(default)]
            value: Option<ResponseValue>,
            #[serde(default)]
            error: Option<BridgeError>,
        }
        let w = Wire::deserialize(d)?;
        let result = match (w.ok, w.error) {
            (true, _) => Ok(w.value),
            (false, Some(error)) => Err(error),
            (false, None) => return Err(D::Error::custom("error response without an error")),
        };
        Ok(Response { id: w.id, result })
    }
}

/// The error of an error response: a kind (by its [wire name](kind_name)), a message that
/// never holds a token, a value or a key, and whether a retry could help.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeError {
    /// What went wrong.
    #[serde(with = "kind_serde")]
    pub kind: ErrorKind,
    /// A description without secrets.
    pub message: String,
    /// Whether the same request may succeed later.
    #[serde(default)]
    pub temporary: bool,
}

impl BridgeError {
    /// A permanent error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        BridgeError {
            kind,
            message: message.into(),
            temporary: false,
        }
    }

    /// The same error as a [`tokencache_core::Error`], for Rust clients of the bridge.
    pub fn into_error(self) -> Error {
        let e = Error::new(self.kind, self.message);
        if self.temporary {
            e.temporary()
        } else {
            e
        }
    }
}

impl From<&Error> for BridgeError {
    fn from(e: &Error) -> Self {
        BridgeError {
            kind: e.kind(),
            message: e.message().to_owned(),
            temporary: e.is_temporary(),
        }
    }
}

impl From<Error> for BridgeError {
    fn from(e: Error) -> Self {
        BridgeError::from(&e)
    }
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", kind_name(self.kind), self.message)
    }
}

impl std::error::Error for BridgeError {}

/// The stable wire name of an error kind: the kind's name in snake_case
/// (`"unavailable"`, `"quota_exceeded"`, `"integrity"`, `"serialization"`, `"invalid_key"`,
/// `"invalid_value"`, `"unsupported"`, `"config"`, `"unexpected"`).
///
/// ```
/// use tokencache_bridge::{kind_from_name, kind_name};
/// use tokencache_core::ErrorKind;
///
/// assert_eq!(kind_name(ErrorKind::QuotaExceeded), "quota_exceeded");
/// assert_eq!(kind_from_name("quota_exceeded"), ErrorKind::QuotaExceeded);
/// assert_eq!(kind_from_name("no such kind"), ErrorKind::Unexpected);
/// ```
pub fn kind_name(kind: ErrorKind) -> Cow<'static, str> {
    Cow::Borrowed(match kind {
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::QuotaExceeded => "quota_exceeded",
        ErrorKind::Integrity => "integrity",
        ErrorKind::Serialization => "serialization",
        ErrorKind::InvalidKey => "invalid_key",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Config => "config",
        ErrorKind::Unexpected => "unexpected",
        // A kind added to the core later: its variant name in snake_case.
        other => return Cow::Owned(snake_case(&format!("{other:?}"))),
    })
}

/// The error kind of a wire name; unknown names are [`ErrorKind::Unexpected`].
pub fn kind_from_name(name: &str) -> ErrorKind {
    const KNOWN: [ErrorKind; 8] = [
        ErrorKind::Unavailable,
        ErrorKind::QuotaExceeded,
        ErrorKind::Integrity,
        ErrorKind::Serialization,
        ErrorKind::InvalidKey,
        ErrorKind::Unsupported,
        ErrorKind::Config,
        ErrorKind::Unexpected,
    ];
    KNOWN
        .into_iter()
        .find(|k| kind_name(*k) == name)
        .unwrap_or(ErrorKind::Unexpected)
}

fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

mod kind_serde {
    use super::*;

    pub(super) fn serialize<S: Serializer>(kind: &ErrorKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&kind_name(*kind))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ErrorKind, D::Error> {
        let name = Cow::<str>::deserialize(d)?;
        Ok(kind_from_name(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_of_variant_names() {
        assert_eq!(snake_case("InvalidValue"), "invalid_value");
        assert_eq!(snake_case("Unavailable"), "unavailable");
    }

    #[test]
    fn every_known_kind_round_trips() {
        for kind in [
            ErrorKind::Unavailable,
            ErrorKind::QuotaExceeded,
            ErrorKind::Integrity,
            ErrorKind::Serialization,
            ErrorKind::InvalidKey,
            ErrorKind::Unsupported,
            ErrorKind::Config,
            ErrorKind::Unexpected,
        ] {
            assert_eq!(kind_from_name(&kind_name(kind)), kind);
            assert_eq!(
                kind_name(kind),
                snake_case(&format!("{kind:?}")),
                "names follow the variant names"
            );
        }
    }

    #[test]
    fn unknown_ops_parse_and_request_debug_hides_the_value() {
        let r: Request = serde_json::from_str(
            r#"{"op":"clear","key":"k","value":{"id_token":"secret-id-token"}}"#,
        )
        .unwrap();
        assert_eq!(r.op, Op::Unknown);
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("secret-id-token"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
    }

    #[test]
    fn responses_round_trip() {
        let keys = Response::ok(
            Some(RequestId::Number(3)),
            Some(ResponseValue::Keys(vec!["a".into()])),
        );
        let text = serde_json::to_string(&keys).unwrap();
        assert_eq!(text, r#"{"id":3,"ok":true,"value":["a"]}"#);
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), keys);

        let value =
            Cacheable::from_json(br#"{"body":{"access_token":"at"},"expiresAt":9}"#).unwrap();
        let hit = Response::ok(Some("x".into()), Some(ResponseValue::Value(value)));
        let text = hit.to_json();
        assert_eq!(
            text,
            r#"{"id":"x","ok":true,"value":{"body":{"access_token":"at"},"expiresAt":9}}"#
        );
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), hit);

        let miss = Response::ok(None, None);
        assert_eq!(miss.to_json(), r#"{"ok":true}"#);
        assert!(serde_json::from_str::<Response>(r#"{"ok":false}"#).is_err());
    }
}
