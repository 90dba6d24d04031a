//! Cache keys: `prefix::clientId::audience::scope`, as auth0-spa-js builds them.

use crate::error::{Error, Result};

/// The prefix auth0-spa-js puts before every key.
pub const DEFAULT_PREFIX: &str = "@@auth0spajs@@";
/// The last part of the key of a client's ID token entry: `prefix::clientId::@@user@@`.
pub const ID_TOKEN_SUFFIX: &str = "@@user@@";
/// The separator between key parts.
pub const SEPARATOR: &str = "::";

/// The parts of a cache key, read with [`CacheKey::client_id`], [`CacheKey::audience`],
/// [`CacheKey::scope`], [`CacheKey::prefix`] and [`CacheKey::suffix`].
///
/// An absent part and an empty one are the same (JavaScript drops both when it joins
/// the parts), so `to_key` leaves both out, the getters return `None` for both, and
/// equality does not tell them apart.
///
/// ```
/// use tokencache_core::CacheKey;
///
/// let k = CacheKey::new("client", Some("https://api"), Some("openid profile"));
/// assert_eq!(k.to_key(), "@@auth0spajs@@::client::https://api::openid profile");
/// assert_eq!(CacheKey::from_key(&k.to_key()).unwrap(), k);
/// assert!(CacheKey::from_key("no separator").is_err());
/// ```
#[derive(Clone, Debug, Eq)]
pub struct CacheKey {
    pub(crate) client_id: String,
    /// As given: may be `Some("")`, which means absent.
    pub(crate) audience: Option<String>,
    /// As given: may be `Some("")`, which means absent.
    pub(crate) scope: Option<String>,
    pub(crate) prefix: String,
    /// A last part after the scope; [`ID_TOKEN_SUFFIX`] for ID token keys.
    pub(crate) suffix: Option<String>,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

impl PartialEq for CacheKey {
    fn eq(&self, other: &Self) -> bool {
        self.client_id == other.client_id
            && non_empty(&self.audience) == non_empty(&other.audience)
            && non_empty(&self.scope) == non_empty(&other.scope)
            && self.prefix == other.prefix
            && non_empty(&self.suffix) == non_empty(&other.suffix)
    }
}

impl CacheKey {
    /// A key with the default prefix.
    pub fn new(client_id: impl Into<String>, audience: Option<&str>, scope: Option<&str>) -> Self {
        CacheKey {
            client_id: client_id.into(),
            audience: audience.map(str::to_owned),
            scope: scope.map(str::to_owned),
            prefix: DEFAULT_PREFIX.to_owned(),
            suffix: None,
        }
    }

    /// The same key under another prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The same key with a last part after the scope (only [`ID_TOKEN_SUFFIX`], after the
    /// client id, passes [`CacheKey::validate`]).
    pub fn with_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.suffix = Some(suffix.into());
        self
    }

    /// The key of a client's ID token entry: `prefix::clientId::@@user@@`.
    pub fn id_token(prefix: &str, client_id: &str) -> Self {
        CacheKey {
            client_id: client_id.to_owned(),
            audience: None,
            scope: None,
            prefix: prefix.to_owned(),
            suffix: Some(ID_TOKEN_SUFFIX.to_owned()),
        }
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The key prefix ([`DEFAULT_PREFIX`] unless set with [`CacheKey::with_prefix`]).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The last part after the client id of an ID token key ([`ID_TOKEN_SUFFIX`]),
    /// `None` for a token entry key.
    pub fn suffix(&self) -> Option<&str> {
        non_empty(&self.suffix)
    }

    /// The audience, `None` when absent or empty.
    pub fn audience(&self) -> Option<&str> {
        non_empty(&self.audience)
    }

    /// The scope, `None` when absent or empty.
    pub fn scope(&self) -> Option<&str> {
        non_empty(&self.scope)
    }

    /// Whether this is an ID token key.
    pub fn is_id_token(&self) -> bool {
        non_empty(&self.suffix) == Some(ID_TOKEN_SUFFIX)
    }

    /// The key string: the non-empty parts joined with `::`.
    pub fn to_key(&self) -> String {
        join_parts(&[
            Some(self.prefix.as_str()),
            Some(self.client_id.as_str()),
            self.audience(),
            self.scope(),
            non_empty(&self.suffix),
        ])
    }

    /// Parses a key string: `prefix::clientId`, `prefix::clientId::audience`,
    /// `prefix::clientId::audience::scope`, or `prefix::clientId::@@user@@`.
    ///
    /// Anything else (fewer than two or more than four parts, an empty part) is an
    /// [`ErrorKind::InvalidKey`](crate::ErrorKind::InvalidKey) error.
    pub fn from_key(s: &str) -> Result<CacheKey> {
        KeyRef::parse(s).map(|k| k.to_cache_key())
    }

    /// Checks that the key can be stored: it has a prefix and a client id, and its string
    /// parses back to the same parts. A part containing `::`, ending in `:` (which would
    /// merge with the separator), a scope without an audience, or an audience spelled like
    /// the ID token suffix is an [`ErrorKind::InvalidKey`](crate::ErrorKind::InvalidKey) error.
    pub fn validate(&self) -> Result<()> {
        check_parts(
            &self.prefix,
            &self.client_id,
            self.audience(),
            self.scope(),
            non_empty(&self.suffix),
        )
    }
}

/// The parts of a key string, borrowed from it: [`CacheKey::from_key`] without its
/// allocations, for looking at many stored keys (which client, which audience) cheaply.
///
/// ```
/// use tokencache_core::KeyRef;
///
/// let k = KeyRef::parse("@@auth0spajs@@::client::https://api::openid").unwrap();
/// assert_eq!((k.prefix(), k.client_id()), ("@@auth0spajs@@", "client"));
/// assert_eq!((k.audience(), k.scope()), (Some("https://api"), Some("openid")));
/// assert!(k.belongs_to("@@auth0spajs@@", "client"));
/// assert!(!k.belongs_to("@@auth0spajs@@", "cli"));
/// assert!(KeyRef::parse("p::c::a::s::extra").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRef<'a> {
    prefix: &'a str,
    client_id: &'a str,
    audience: Option<&'a str>,
    scope: Option<&'a str>,
    suffix: Option<&'a str>,
}

impl<'a> KeyRef<'a> {
    /// Parses a key string, with the rules of [`CacheKey::from_key`].
    pub fn parse(s: &'a str) -> Result<KeyRef<'a>> {
        let mut parts = SeparatorSplit(Some(s));
        let mut next = || parts.next();
        let (prefix, client, third, fourth, fifth) = (next(), next(), next(), next(), next());
        let (Some(prefix), Some(client_id)) = (prefix, client) else {
            return Err(Error::invalid_key("key has no client part"));
        };
        if fifth.is_some() {
            return Err(Error::invalid_key("key has more than four parts"));
        }
        let all = [Some(prefix), Some(client_id), third, fourth];
        if all.iter().flatten().any(|p| p.is_empty()) {
            return Err(Error::invalid_key("key has an empty part"));
        }
        let mut key = KeyRef {
            prefix,
            client_id,
            audience: None,
            scope: None,
            suffix: None,
        };
        match (third, fourth) {
            (Some(ID_TOKEN_SUFFIX), None) => key.suffix = Some(ID_TOKEN_SUFFIX),
            (audience, scope) => (key.audience, key.scope) = (audience, scope),
        }
        Ok(key)
    }

    /// The key prefix.
    pub fn prefix(&self) -> &'a str {
        self.prefix
    }

    /// The client id.
    pub fn client_id(&self) -> &'a str {
        self.client_id
    }

    /// The audience, if the key has one.
    pub fn audience(&self) -> Option<&'a str> {
        self.audience
    }

    /// The scope, if the key has one.
    pub fn scope(&self) -> Option<&'a str> {
        self.scope
    }

    /// [`ID_TOKEN_SUFFIX`] for an ID token key.
    pub fn suffix(&self) -> Option<&'a str> {
        self.suffix
    }

    /// Whether this is an ID token key.
    pub fn is_id_token(&self) -> bool {
        self.suffix == Some(ID_TOKEN_SUFFIX)
    }

    /// Whether the key is under `prefix` and of `client_id`.
    pub fn belongs_to(&self, prefix: &str, client_id: &str) -> bool {
        self.prefix == prefix && self.client_id == client_id
    }

    /// The owned key.
    pub fn to_cache_key(&self) -> CacheKey {
        CacheKey {
            client_id: self.client_id.to_owned(),
            audience: self.audience.map(str::to_owned),
            scope: self.scope.map(str::to_owned),
            prefix: self.prefix.to_owned(),
            suffix: self.suffix.map(str::to_owned),
        }
    }
}

/// `str::split(SEPARATOR)`, by a plain scan for `:` (a `str` pattern sets up a substring
/// search on every split, the larger part of parsing a key).
struct SeparatorSplit<'a>(Option<&'a str>);

impl<'a> Iterator for SeparatorSplit<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.0?;
        let bytes = rest.as_bytes();
        let mut at = 0;
        while let Some(i) = bytes[at..].iter().position(|&b| b == b':') {
            let i = at + i;
            if bytes.get(i + 1) == Some(&b':') {
                self.0 = Some(&rest[i + 2..]);
                return Some(&rest[..i]);
            }
            at = i + 1;
        }
        self.0 = None;
        Some(rest)
    }
}

/// Checks, without allocating, that `prefix::client::audience::scope` (or the ID token
/// key, with `suffix`) parses back to the same parts.
pub(crate) fn check_parts(
    prefix: &str,
    client: &str,
    audience: Option<&str>,
    scope: Option<&str>,
    suffix: Option<&str>,
) -> Result<()> {
    if prefix.is_empty() {
        return Err(Error::invalid_key("the key prefix is empty"));
    }
    if client.is_empty() {
        return Err(Error::invalid_key("the client id is empty"));
    }
    if [Some(prefix), Some(client), audience, scope, suffix]
        .into_iter()
        .flatten()
        .any(merges_with_separator)
    {
        return Err(Error::invalid_key(
            "a key part contains '::' or ends in ':', so the key would not parse back",
        ));
    }
    match (audience, scope, suffix) {
        (None, Some(_), _) => Err(Error::invalid_key(
            "a scope without an audience would parse back as the audience",
        )),
        (Some(ID_TOKEN_SUFFIX), None, _) => Err(Error::invalid_key(
            "an audience spelled like the id token suffix would parse back as an id token key",
        )),
        (None, None, Some(ID_TOKEN_SUFFIX)) | (_, _, None) => Ok(()),
        _ => Err(Error::invalid_key(
            "only the id token suffix can end a key, after the client id",
        )),
    }
}

/// Whether `part` contains `::` or ends in `:`: a `:` followed by another `:` or by the
/// end. Looks at eight bytes at a time (a key is checked on every lookup).
fn merges_with_separator(part: &str) -> bool {
    const COLONS: u64 = u64::from_le_bytes([b':'; 8]);
    const LOW7: u64 = u64::from_le_bytes([0x7f; 8]);
    /// The high bit of each byte of `bytes` (eight of them, little-endian: byte i is
    /// bits 8i..8i+8) that is `:`. Exact: no carry crosses a byte.
    fn colon_bits(bytes: &[u8]) -> u64 {
        let mut word = [0; 8];
        word.copy_from_slice(bytes);
        let x = u64::from_le_bytes(word) ^ COLONS;
        !((((x & LOW7) + LOW7) | x) | LOW7)
    }
    let bytes = part.as_bytes();
    let len = bytes.len();
    if len < 8 {
        let mut after_colon = false;
        for &b in bytes {
            let colon = b == b':';
            if colon && after_colon {
                return true;
            }
            after_colon = colon;
        }
        return after_colon;
    }
    // Whole words, each with the last byte of the one before.
    let mut after_colon = false;
    let mut at = 0;
    while at + 8 <= len {
        let m = colon_bits(&bytes[at..at + 8]);
        if m & (m >> 8) != 0 || (after_colon && m & 0x80 != 0) {
            return true;
        }
        after_colon = m >> 63 != 0;
        at += 8;
    }
    // The last eight bytes (overlapping the last whole word when `len` is not a multiple
    // of eight, so every pair of neighbours the words left out lies inside it), and
    // whether the last byte is a ':'.
    let m = colon_bits(&bytes[len - 8..]);
    m & (m >> 8) != 0 || m >> 63 != 0
}

/// Joins the non-empty parts of a key with `::`.
pub(crate) fn join_parts(parts: &[Option<&str>]) -> String {
    let len = parts.iter().flatten().map(|p| p.len() + 2).sum::<usize>();
    let mut out = String::with_capacity(len);
    for p in parts.iter().flatten().filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push_str(SEPARATOR);
        }
        out.push_str(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_strings_as_auth0_spa_js() {
        assert_eq!(
            CacheKey::new("c", Some("a"), Some("s1 s2")).to_key(),
            "@@auth0spajs@@::c::a::s1 s2"
        );
        assert_eq!(CacheKey::new("c", None, None).to_key(), "@@auth0spajs@@::c");
        assert_eq!(
            CacheKey::new("c", Some(""), Some("s")).to_key(),
            "@@auth0spajs@@::c::s"
        );
        assert_eq!(
            CacheKey::id_token(DEFAULT_PREFIX, "c").to_key(),
            "@@auth0spajs@@::c::@@user@@"
        );
    }

    #[test]
    fn empty_parts_read_as_absent() {
        let k = CacheKey::new("c", Some(""), Some(""));
        assert_eq!((k.audience(), k.scope(), k.suffix()), (None, None, None));
        assert_eq!(k, CacheKey::new("c", None, None));
        let k = CacheKey::new("c", Some("a"), Some("s")).with_prefix("p");
        assert_eq!(k.prefix(), "p");
        assert_eq!(k.client_id(), "c");
        assert_eq!((k.audience(), k.scope()), (Some("a"), Some("s")));
        assert!(!k.is_id_token());
    }

    #[test]
    fn from_key_parses_and_rejects() {
        let k = CacheKey::from_key("@@auth0spajs@@::c::@@user@@").unwrap();
        assert!(k.is_id_token());
        assert_eq!(k.audience(), None);
        assert_eq!(k.suffix(), Some(ID_TOKEN_SUFFIX));
        assert_eq!((k.prefix(), k.client_id()), ("@@auth0spajs@@", "c"));
        let k = CacheKey::from_key("p::c::https://x.example/api::openid").unwrap();
        assert_eq!(k.audience(), Some("https://x.example/api"));
        for bad in ["", "p", "p::", "::c", "p::c::", "p::::a", "p::c::a::s::x"] {
            let e = CacheKey::from_key(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidKey, "{bad}");
            assert!(KeyRef::parse(bad).is_err(), "{bad}");
        }
        // The borrowed parse reads the same parts as the owned one.
        for good in [
            "p::c",
            "p::c::a",
            "p::c::a::s t",
            "p::c::@@user@@",
            "p::c:::x::s",
        ] {
            let (owned, borrowed) = (
                CacheKey::from_key(good).unwrap(),
                KeyRef::parse(good).unwrap(),
            );
            assert_eq!(borrowed.to_cache_key(), owned, "{good}");
            assert_eq!(
                (
                    borrowed.prefix(),
                    borrowed.client_id(),
                    borrowed.audience(),
                    borrowed.scope()
                ),
                (
                    owned.prefix(),
                    owned.client_id(),
                    owned.audience(),
                    owned.scope()
                ),
                "{good}"
            );
            assert_eq!(
                (borrowed.suffix(), borrowed.is_id_token()),
                (owned.suffix(), owned.is_id_token())
            );
            assert!(borrowed.belongs_to("p", "c") && !borrowed.belongs_to("p", "c:"));
        }
    }

    /// The key parser's split is `str::split("::")`.
    #[test]
    fn separator_split_matches_str_split() {
        let alphabet = [':', 'a', '\u{e9}'];
        let mut words = vec![String::new()];
        for len in 0..=8 {
            for w in &words {
                let ours: Vec<&str> = SeparatorSplit(Some(w)).collect();
                let std: Vec<&str> = w.split(SEPARATOR).collect();
                assert_eq!(ours, std, "{w:?}");
            }
            if len < 8 {
                words = words
                    .iter()
                    .flat_map(|w| alphabet.map(|c| format!("{w}{c}")))
                    .collect();
            }
        }
    }

    /// The word-at-a-time check says what `contains("::") || ends_with(':')` says, for
    /// every string of up to 9 bytes (one word and one more byte) over `:`, `;` (one above `:`, where a borrow would
    /// show), `9` (one below) and `a`, and for longer strings with `::` at each offset.
    #[test]
    fn separator_check_matches_the_plain_definition() {
        let plain = |p: &str| p.contains(SEPARATOR) || p.ends_with(':');
        let alphabet = [':', ';', '9', 'a'];
        let mut words = vec![String::new()];
        for len in 0..=9 {
            for w in &words {
                assert_eq!(merges_with_separator(w), plain(w), "{w:?}");
            }
            if len < 9 {
                words = words
                    .iter()
                    .flat_map(|w| alphabet.map(|c| format!("{w}{c}")))
                    .collect();
            }
        }
        for len in 2..40 {
            let base: String = (0..len).map(|i| [':', 'x', ';', ':', '9'][i % 5]).collect();
            assert_eq!(merges_with_separator(&base), plain(&base), "{base:?}");
            for at in 0..len - 1 {
                let mut s: Vec<u8> = (0..len).map(|i| b"x;:9"[i % 4]).collect();
                s[at] = b':';
                s[at + 1] = b':';
                let s = String::from_utf8(s).unwrap();
                assert!(merges_with_separator(&s), "{s:?}");
                let t = s.replace(':', ";") + "\u{e9}:";
                assert_eq!(merges_with_separator(&t), plain(&t), "{t:?}");
            }
        }
    }

    #[test]
    fn validate_rejects_ambiguous_parts() {
        assert!(CacheKey::new("c", Some("https://api"), Some("a b"))
            .validate()
            .is_ok());
        assert!(CacheKey::new("ç客户", Some("aud ü"), Some("読む"))
            .validate()
            .is_ok());
        for k in [
            CacheKey::new("c::x", Some("a"), Some("s")),
            CacheKey::new("c", Some("a::b"), Some("s")),
            CacheKey::new("c", Some("a"), Some("s::t")),
            CacheKey::new("c:", Some("a"), Some("s")),
            CacheKey::new("c", None, Some("s")),
            CacheKey::new("c", Some(ID_TOKEN_SUFFIX), None),
            CacheKey::new("", Some("a"), Some("s")),
        ] {
            assert_eq!(
                k.validate().unwrap_err().kind(),
                crate::ErrorKind::InvalidKey,
                "{k:?}"
            );
        }
        assert!(CacheKey::id_token(DEFAULT_PREFIX, "c").validate().is_ok());
        // A leading ':' does not merge with the separator before it.
        assert!(CacheKey::new("c", Some(":a"), Some(":s"))
            .validate()
            .is_ok());
    }
}
