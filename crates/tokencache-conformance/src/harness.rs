//! What every check uses: the [`Subject`] it runs on, failure reporting that names the
//! check ([`Check`]), and the entries and keys the checks write.

use std::fmt::{Debug, Display};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokencache_core::{
    Cache, CacheEntry, CacheKey, CacheManager, Cacheable, DecodedToken, EntryBody, ErrorKind,
    GetOptions, ManualClock, Result, WrappedCacheEntry, DEFAULT_PREFIX,
};

use crate::Capabilities;

/// The client id every check's manager keeps its manifest under.
pub(crate) const MANIFEST_CLIENT: &str = "app";

/// What one check runs on: a fresh, empty cache, the clock it was built with, what the
/// cache can do, and the key prefix of the managers the check builds.
///
/// [`Suite`](crate::Suite) makes one for every check; build one yourself to run a single
/// check (see [`checks`](crate::checks)).
#[derive(Clone)]
pub struct Subject {
    pub(crate) cache: Arc<dyn Cache>,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) capabilities: Capabilities,
    pub(crate) prefix: String,
    /// The kit's own mutant tests: managers without the write lock.
    pub(crate) unserialized_writes: bool,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("capabilities", &self.capabilities)
            .field("prefix", &self.prefix)
            .field("lists_keys", &self.cache.lists_keys())
            .finish_non_exhaustive()
    }
}

impl Subject {
    /// `cache` (fresh and empty, its TTLs measured with `clock`), which can do what
    /// `capabilities` says, under managers with the default prefix.
    pub fn new(cache: Arc<dyn Cache>, clock: Arc<ManualClock>, capabilities: Capabilities) -> Self {
        Subject {
            cache,
            clock,
            capabilities,
            prefix: DEFAULT_PREFIX.to_owned(),
            unserialized_writes: false,
        }
    }

    /// Managers with this key prefix instead of [`DEFAULT_PREFIX`].
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

/// The check being run: its name, mode and subject, for failure messages and for the
/// managers and keys it uses.
pub(crate) struct Check {
    name: &'static str,
    mode: &'static str,
    pub(crate) subject: Subject,
}

impl Check {
    /// Starts check `name` on `subject`: the check, its cache and its clock.
    pub(crate) fn new(
        name: &'static str,
        subject: Subject,
    ) -> (Self, Arc<dyn Cache>, Arc<ManualClock>) {
        let mode = if subject.cache.lists_keys() {
            "listing"
        } else {
            "manifest"
        };
        tracing::debug!(check = name, mode, "conformance check");
        let (cache, clock) = (subject.cache.clone(), subject.clock.clone());
        (
            Check {
                name,
                mode,
                subject,
            },
            cache,
            clock,
        )
    }

    /// A key under the run's manager prefix: `prefix::part::part...`.
    pub(crate) fn key(&self, parts: &[&str]) -> String {
        join_key(&self.subject.prefix, parts)
    }

    /// The prefix of every key a manager of this run writes: `prefix::`.
    pub(crate) fn key_space(&self) -> String {
        format!("{}::", self.subject.prefix)
    }

    /// A manager with the test clock, the run's prefix and the manifest client id.
    pub(crate) fn manager(&self, cache: &Arc<dyn Cache>, clock: &Arc<ManualClock>) -> CacheManager {
        let mut b = CacheManager::builder(cache.clone())
            .clock(clock.clone())
            .prefix(self.subject.prefix.clone())
            .client_id(MANIFEST_CLIENT);
        if self.subject.unserialized_writes {
            b = b.unserialized_writes_for_tests();
        }
        self.ok(b.build(), "building the manager")
    }

    /// Whether the cache under test lists its keys.
    pub(crate) fn listing(&self) -> bool {
        self.mode == "listing"
    }

    #[track_caller]
    pub(crate) fn fail(&self, msg: impl Display) -> ! {
        panic!(
            "conformance check `{}` failed ({} mode): {msg}",
            self.name, self.mode
        )
    }

    /// The value of a call that must succeed.
    #[track_caller]
    pub(crate) fn ok<T>(&self, r: Result<T>, what: &str) -> T {
        match r {
            Ok(v) => v,
            Err(e) => self.fail(format_args!("{what}: unexpected error: {e}")),
        }
    }

    /// A call that must fail with `kind`.
    #[track_caller]
    pub(crate) fn err<T>(&self, r: Result<T>, kind: ErrorKind, what: &str) {
        match r {
            Err(e) if e.kind() == kind => {}
            Err(e) => self.fail(format_args!("{what}: expected a {kind} error, got: {e}")),
            Ok(_) => self.fail(format_args!("{what}: expected a {kind} error, got success")),
        }
    }

    #[track_caller]
    pub(crate) fn that(&self, cond: bool, what: impl Display) {
        if !cond {
            self.fail(what);
        }
    }

    #[track_caller]
    pub(crate) fn eq<T: PartialEq + Debug>(&self, got: T, want: T, what: &str) {
        if got != want {
            self.fail(format_args!("{what}:\n   got: {got:?}\n  want: {want:?}"));
        }
    }

    /// Equality as JSON (object field order and the Arc around bodies do not matter);
    /// the JSON of both sides is printed on failure (test tokens are synthetic).
    #[track_caller]
    pub(crate) fn json_eq<A: Serialize, B: Serialize>(&self, got: A, want: B, what: &str) {
        let (got, want) = (to_json(&got), to_json(&want));
        if got != want {
            self.fail(format_args!("{what}:\n   got: {got}\n  want: {want}"));
        }
    }
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| Value::String(format!("<not JSON: {e}>")))
}

/// A decoded ID token with a few claims.
pub(crate) fn decoded(sub: &str) -> DecodedToken {
    let mut d = DecodedToken::default();
    d.claims.insert("sub".into(), Value::from(sub));
    d.claims
        .insert("__raw".into(), Value::from(format!("raw-{sub}")));
    d.user
        .insert("name".into(), Value::from(format!("user {sub}")));
    d
}

/// A full token response.
pub(crate) fn entry(
    client: &str,
    audience: &str,
    scope: &str,
    at: &str,
    expires_in: f64,
) -> CacheEntry {
    let mut e = CacheEntry::new(client, audience, scope, at, expires_in);
    e.token_type = Some("Bearer".into());
    e
}

/// The keys the manager lists: `all_keys` (listing mode) or the manifest's lines.
pub(crate) async fn manifest_lines(t: &Check, m: &CacheManager) -> Option<Vec<String>> {
    let key = m.manifest_key()?;
    match t.ok(m.cache().get(key).await, "reading the manifest") {
        Some(Cacheable::Manifest(man)) => Some(man.keys),
        None => Some(Vec::new()),
        Some(_) => t.fail("the manifest key holds something else than a manifest"),
    }
}

/// Asserts that the manifest (manifest mode) has exactly `want` as lines, without
/// duplicates; an empty `want` means the manifest is deleted.
pub(crate) async fn assert_manifest(t: &Check, m: &CacheManager, want: &[&str]) {
    let Some(key) = m.manifest_key() else { return };
    let stored = t.ok(m.cache().get(key).await, "reading the manifest");
    if want.is_empty() {
        t.that(
            stored.is_none(),
            "an empty manifest must be deleted, but the manifest key still holds a value",
        );
        return;
    }
    let Some(Cacheable::Manifest(man)) = stored else {
        t.fail(format_args!("the manifest is missing; want lines {want:?}"));
    };
    let mut got = man.keys.clone();
    got.sort();
    let before = got.len();
    got.dedup();
    t.that(
        before == got.len(),
        format_args!("the manifest has duplicate lines: {:?}", man.keys),
    );
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    t.eq(got, want, "manifest lines");
}

/// Which of `keys` are present in the cache (read one by one, so it works in both modes).
pub(crate) async fn present(t: &Check, cache: &dyn Cache, keys: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for k in keys {
        if t.ok(cache.get(k).await, "reading a key").is_some() {
            out.push(k.clone());
        }
    }
    out
}

/// A key under the default prefix (the raw checks use it: the prefix of a cache's own
/// keys unless configured otherwise).
pub(crate) fn key(parts: &[&str]) -> String {
    join_key(DEFAULT_PREFIX, parts)
}

/// `prefix::part::part...`.
pub(crate) fn join_key(prefix: &str, parts: &[&str]) -> String {
    let mut s = String::from(prefix);
    for p in parts {
        s.push_str("::");
        s.push_str(p);
    }
    s
}

/// `now_s` of a fresh check clock.
pub(crate) const T0: i64 = crate::checks::START_MS.div_euclid(1000);

/// `manager.get` of `client`, `audience`, `scope` that must succeed.
pub(crate) async fn get(
    t: &Check,
    m: &CacheManager,
    client: &str,
    audience: Option<&str>,
    scope: Option<&str>,
    opts: GetOptions,
) -> Option<Arc<EntryBody>> {
    let k = CacheKey::new(client, audience, scope);
    t.ok(m.get(&k, opts).await, "manager.get")
}

/// `manager.set` that must succeed.
pub(crate) async fn set(t: &Check, m: &CacheManager, e: CacheEntry) {
    t.ok(m.set(e).await, "manager.set");
}

/// The raw value at `key`.
pub(crate) async fn raw(t: &Check, cache: &dyn Cache, k: &str) -> Option<Cacheable> {
    t.ok(cache.get(k).await, "raw get")
}

/// An entry with a refresh token.
pub(crate) fn with_rt(mut e: CacheEntry, rt: &str) -> CacheEntry {
    e.refresh_token = Some(rt.to_owned());
    e
}

/// The stored value `manager.set(e)` writes at `now_s`.
pub(crate) fn stored(e: &CacheEntry, now_s: i64) -> Cacheable {
    Cacheable::Entry(WrappedCacheEntry::new(
        EntryBody::from(e.clone()),
        now_s + e.expires_in as i64,
    ))
}
