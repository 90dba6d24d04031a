//! The reference model: the design's semantics over a `BTreeMap`, written for clarity
//! and independently of `CacheManager`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tokencache_core::{Cache, Cacheable, EntryBody, ErrorKind, IdTokenEntry, WrappedCacheEntry};

use super::ops::{cache_entry, non_empty, short, Op, Outcome};
use crate::harness::{decoded, join_key, to_json, MANIFEST_CLIENT};
use crate::Mode;

/// A stored value of the model, with the parts of its key.
#[derive(Clone, Debug)]
struct Stored {
    client: String,
    audience: Option<String>,
    scope: Option<String>,
    value: Cacheable,
}

impl Stored {
    /// Physical expiry may drop it: an entry expired by the clock without a refresh token.
    fn doomed(&self, now_s: i64) -> bool {
        self.value
            .as_entry()
            .is_some_and(|e| e.expires_at < now_s && rt_of(&e.body).is_none())
    }
}

/// The design's semantics over a `BTreeMap`, written for clarity, not speed.
#[derive(Debug)]
pub(super) struct Model {
    /// The key prefix of the manager.
    prefix: String,
    /// The manifest key, in manifest mode.
    manifest_key: Option<String>,
    entries: BTreeMap<String, Stored>,
    /// Manifest lines (manifest mode only). Normally the keys of `entries`; a key that
    /// physical expiry dropped keeps its line until the manager removes it.
    lines: BTreeSet<String>,
}

type Res<T> = Result<T, ErrorKind>;

fn bad_part(p: &str) -> bool {
    p.contains("::") || p.ends_with(':')
}

/// `prefix::client[::audience[::scope]]`, or the reason it is not a usable key.
fn key_of(prefix: &str, client: &str, audience: Option<&str>, scope: Option<&str>) -> Res<String> {
    let (audience, scope) = (non_empty(audience), non_empty(scope));
    if client.is_empty()
        || [Some(client), audience, scope]
            .into_iter()
            .flatten()
            .any(bad_part)
    {
        return Err(ErrorKind::InvalidKey);
    }
    if (audience.is_none() && scope.is_some()) || (audience == Some("@@user@@") && scope.is_none())
    {
        return Err(ErrorKind::InvalidKey);
    }
    let parts: Vec<&str> = [Some(client), audience, scope]
        .into_iter()
        .flatten()
        .collect();
    Ok(join_key(prefix, &parts))
}

fn id_key_of(prefix: &str, client: &str) -> Res<String> {
    if client.is_empty() || bad_part(client) {
        return Err(ErrorKind::InvalidKey);
    }
    Ok(join_key(prefix, &[client, "@@user@@"]))
}

fn client_of_key(k: &str) -> &str {
    k.split("::").nth(1).unwrap_or("")
}

fn scopes_of(s: &str) -> BTreeSet<&str> {
    s.split(' ').collect()
}

fn rt_of(body: &EntryBody) -> Option<&str> {
    non_empty(body.refresh_token.as_deref())
}

fn refresh_only(body: &EntryBody) -> EntryBody {
    EntryBody {
        refresh_token: body.refresh_token.clone(),
        audience: body.audience.clone(),
        scope: body.scope.clone(),
        ..EntryBody::default()
    }
}

impl Model {
    pub(super) fn new(mode: Mode, prefix: &str) -> Self {
        Model {
            prefix: prefix.to_owned(),
            manifest_key: (mode == Mode::Manifest).then(|| join_key(prefix, &[MANIFEST_CLIENT])),
            entries: BTreeMap::new(),
            lines: BTreeSet::new(),
        }
    }

    fn put(&mut self, key: String, stored: Stored) {
        if self.manifest_key.is_some() {
            self.lines.insert(key.clone());
        }
        self.entries.insert(key, stored);
    }

    fn delete(&mut self, key: &str) {
        self.entries.remove(key);
        self.lines.remove(key);
    }

    fn entry(&self, key: &str) -> Option<&WrappedCacheEntry> {
        self.entries.get(key).and_then(|s| s.value.as_entry())
    }

    /// Physical expiry may drop an entry that expired (by `droppable_s`: the clock, no
    /// leeway, plus the real time the case took) without a refresh token. Asks the cache
    /// about such entries and forgets those it dropped; a cache without `physical_expiry`
    /// must still hold them.
    pub(super) async fn forget_dropped(
        &mut self,
        cache: &dyn Cache,
        droppable_s: i64,
        physical_expiry: bool,
    ) -> Result<(), String> {
        let doomed: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, s)| s.doomed(droppable_s))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            match cache.get(&k).await {
                Ok(None) if !physical_expiry => {
                    return Err(format!(
                        "{k}: the cache dropped an expired entry, but its capabilities say it has no physical expiry"
                    ))
                }
                Ok(None) => {
                    self.entries.remove(&k);
                }
                Ok(Some(v)) if to_json(&v) == to_json(&self.entries[&k].value) => {}
                Ok(Some(v)) => {
                    return Err(format!(
                        "{k}: stored {}, model {}",
                        short(&v),
                        short(&self.entries[&k].value)
                    ))
                }
                Err(e) => return Err(format!("reading {k}: {e}")),
            }
        }
        Ok(())
    }

    pub(super) fn apply(&mut self, op: &Op, now_s: i64) -> Outcome {
        let done = |r: Res<()>| r.map_or_else(Outcome::Failed, |_| Outcome::Done);
        match op {
            Op::Set {
                client,
                audience,
                scope,
                expires_in,
                ..
            } => done(self.set(op, client, audience, scope, now_s + expires_in)),
            Op::Get {
                client,
                audience,
                scope,
                leeway,
                use_mrrt,
                cache_only,
                ..
            } => {
                match self.get(
                    client,
                    *audience,
                    scope.as_deref(),
                    *leeway,
                    *use_mrrt && !*cache_only,
                    now_s,
                ) {
                    Ok(b) => Outcome::Body(b.map(|b| to_json(&b))),
                    Err(k) => Outcome::Failed(k),
                }
            }
            Op::SetIdToken { client, n } => done(id_key_of(&self.prefix, client).map(|k| {
                let value = Cacheable::IdToken(IdTokenEntry {
                    id_token: format!("idt-{n}"),
                    decoded_token: decoded(&format!("own-{n}")),
                });
                self.put(
                    k,
                    Stored {
                        client: client.to_string(),
                        audience: None,
                        scope: None,
                        value,
                    },
                );
            })),
            Op::GetIdToken {
                client,
                audience,
                scope,
            } => match self.get_id_token(client, *audience, scope.as_deref(), now_s) {
                Ok(t) => Outcome::IdToken(t.map(|t| to_json(&t))),
                Err(k) => Outcome::Failed(k),
            },
            Op::Remove {
                client,
                audience,
                scope,
            } => {
                if non_empty(*audience).is_none() && non_empty(scope.as_deref()).is_none() {
                    return Outcome::Failed(ErrorKind::InvalidKey);
                }
                done(
                    key_of(&self.prefix, client, *audience, scope.as_deref())
                        .map(|k| self.delete(&k)),
                )
            }
            Op::Clear { client: None } => {
                self.entries.clear();
                self.lines.clear();
                Outcome::Done
            }
            Op::Clear { client: Some("") } => Outcome::Failed(ErrorKind::InvalidKey),
            Op::Clear { client: Some(c) } => {
                self.entries.retain(|_, s| s.client != *c);
                self.lines.retain(|k| client_of_key(k) != *c);
                Outcome::Done
            }
            Op::StripRefreshToken { refresh_token } => {
                self.rewrite_refresh_tokens(|_, rt| (rt == Some(*refresh_token)).then_some(None));
                Outcome::Done
            }
            Op::UpdateEntry {
                old,
                new,
                client,
                use_mrrt,
            } => {
                self.rewrite_refresh_tokens(|s, rt| {
                    let matches = s.client == *client
                        && non_empty(rt).is_some_and(|rt| *use_mrrt || rt == *old);
                    matches.then(|| Some(new.to_string()))
                });
                Outcome::Done
            }
            Op::RefreshTokensByAudience { audience, client } => {
                let mut tokens: Vec<String> = Vec::new();
                for s in self.entries.values() {
                    let Some(e) = s.value.as_entry() else {
                        continue;
                    };
                    if s.client == *client && s.audience.as_deref() == Some(*audience) {
                        if let Some(rt) = rt_of(&e.body) {
                            if !tokens.iter().any(|t| t == rt) {
                                tokens.push(rt.to_owned());
                            }
                        }
                    }
                }
                Outcome::Tokens(tokens)
            }
            Op::Advance { .. } => Outcome::Done,
        }
    }

    fn set(
        &mut self,
        op: &Op,
        client: &str,
        audience: &str,
        scope: &str,
        expires_at: i64,
    ) -> Res<()> {
        if audience.is_empty() && scope.is_empty() {
            return Err(ErrorKind::InvalidKey);
        }
        let key = key_of(&self.prefix, client, Some(audience), Some(scope))?;
        let e = cache_entry(op).expect("a set");
        let body = EntryBody {
            client_id: Some(e.client_id),
            audience: Some(e.audience),
            scope: Some(e.scope),
            access_token: Some(e.access_token),
            expires_in: Some(e.expires_in),
            id_token: e.id_token,
            token_type: e.token_type,
            refresh_token: e.refresh_token,
            decoded_token: e.decoded_token,
            ..EntryBody::default()
        };
        let value = Cacheable::Entry(WrappedCacheEntry::new(body, expires_at));
        let stored = Stored {
            client: client.to_owned(),
            audience: non_empty(Some(audience)).map(str::to_owned),
            scope: non_empty(Some(scope)).map(str::to_owned),
            value,
        };
        self.put(key, stored);
        Ok(())
    }

    /// Sets the refresh token of every entry for which `change` says so.
    fn rewrite_refresh_tokens(
        &mut self,
        change: impl Fn(&Stored, Option<&str>) -> Option<Option<String>>,
    ) {
        for s in self.entries.values_mut() {
            let Cacheable::Entry(e) = &s.value else {
                continue;
            };
            if let Some(rt) = change(s, e.body.refresh_token.as_deref()) {
                let mut body = (*e.body).clone();
                body.refresh_token = rt;
                s.value = Cacheable::Entry(WrappedCacheEntry::new(body, e.expires_at));
            }
        }
    }

    fn get(
        &mut self,
        client: &str,
        audience: Option<&str>,
        scope: Option<&str>,
        leeway: i64,
        mrrt: bool,
        now_s: i64,
    ) -> Res<Option<EntryBody>> {
        let exact = key_of(&self.prefix, client, audience, scope)?;
        let expired = |e: &WrappedCacheEntry| e.expires_at - leeway < now_s;
        let manifest_there =
            self.manifest_key.as_deref() == Some(exact.as_str()) && !self.lines.is_empty();
        // An entry that expired without a refresh token is a miss in every step: removed,
        // and the lookup goes on as if it had not been stored.
        let dead = |e: &WrappedCacheEntry| expired(e) && rt_of(&e.body).is_none();
        // Step 1: the exact key.
        match self.entries.get(&exact).map(|s| &s.value) {
            Some(Cacheable::Entry(e)) if dead(e) => self.delete(&exact),
            Some(Cacheable::Entry(_)) => return Ok(Some(self.answer(&exact, &expired))),
            Some(_) => return Ok(None),
            None if manifest_there => return Ok(None),
            None => {}
        }
        // Step 2: the best entry of the client and audience covering the wanted scopes.
        let wanted: Vec<&str> = non_empty(scope)
            .map(|s| s.split(' ').collect())
            .unwrap_or_default();
        let audience = non_empty(audience);
        let matching: Vec<(String, WrappedCacheEntry, usize)> = self
            .entries
            .iter()
            .filter(|(_, s)| {
                s.client == client && audience.is_some() && s.audience.as_deref() == audience
            })
            .filter_map(|(k, s)| {
                let stored_scopes = scopes_of(s.scope.as_deref()?);
                let e = s.value.as_entry()?;
                wanted
                    .iter()
                    .all(|w| stored_scopes.contains(w))
                    .then(|| (k.clone(), e.clone(), stored_scopes.len()))
            })
            .collect();
        let mut best: Option<(bool, usize, String)> = None;
        for (k, e, n) in matching {
            if dead(&e) {
                self.delete(&k);
            } else {
                let cand = (expired(&e), n, k);
                if best.as_ref().is_none_or(|b| cand < *b) {
                    best = Some(cand);
                }
            }
        }
        if let Some((_, _, k)) = best {
            return Ok(Some(self.answer(&k, &expired)));
        }
        // Step 3: the MRRT fallback.
        if !mrrt {
            return Ok(None);
        }
        let best = self
            .entries
            .iter()
            .filter(|(_, s)| s.client == client)
            .filter_map(|(k, s)| {
                let e = s.value.as_entry()?;
                rt_of(&e.body)?;
                let n = s.scope.as_deref().map_or(0, |s| scopes_of(s).len());
                Some(((expired(e), n, k.clone()), refresh_only(&e.body)))
            })
            .min_by(|a, b| a.0.cmp(&b.0));
        Ok(best.map(|(_, body)| body))
    }

    /// The body of the entry at `key`, which is valid or holds a refresh token: as it is
    /// when valid, else cut down to its refresh token (and stored so).
    fn answer(&mut self, key: &str, expired: &impl Fn(&WrappedCacheEntry) -> bool) -> EntryBody {
        let e = self.entry(key).cloned().expect("an entry");
        if !expired(&e) {
            return (*e.body).clone();
        }
        let cut = refresh_only(&e.body);
        let s = self.entries.get_mut(key).expect("an entry");
        s.value = Cacheable::Entry(WrappedCacheEntry::new(cut.clone(), e.expires_at));
        cut
    }

    fn get_id_token(
        &mut self,
        client: &str,
        audience: Option<&str>,
        scope: Option<&str>,
        now_s: i64,
    ) -> Res<Option<IdTokenEntry>> {
        let id_key = id_key_of(&self.prefix, client)?;
        if let Some(Cacheable::IdToken(t)) = self.entries.get(&id_key).map(|s| &s.value) {
            return Ok(Some(t.clone()));
        }
        if non_empty(audience).is_none() || non_empty(scope).is_none() {
            return Ok(None);
        }
        let body = self.get(client, audience, scope, 0, false, now_s)?;
        Ok(body.and_then(|b| match (b.id_token, b.decoded_token) {
            (Some(id_token), Some(decoded_token)) if !id_token.is_empty() => Some(IdTokenEntry {
                id_token,
                decoded_token,
            }),
            _ => None,
        }))
    }

    /// Compares what the manager can see in `cache` with the model.
    /// With `physical_expiry`, an entry that physical expiry may drop can also be gone
    /// (the cache may drop it at any time, also while the state is read).
    pub(super) async fn compare_state(
        &self,
        cache: &dyn Cache,
        droppable_s: i64,
        physical_expiry: bool,
    ) -> Result<(), String> {
        let read = |k: String| async move {
            cache
                .get(&k)
                .await
                .map_err(|e| format!("reading {k}: {e}"))
                .map(|v| (k, v))
        };
        let mut seen: BTreeMap<String, Value> = BTreeMap::new();
        match &self.manifest_key {
            None => {
                let listed = cache
                    .keys_with_prefix(&format!("{}::", self.prefix))
                    .await
                    .map_err(|e| format!("listing: {e}"))?
                    .ok_or("a listing cache returned no keys")?;
                for k in listed {
                    if let (k, Some(v)) = read(k.to_string()).await? {
                        seen.insert(k, to_json(&v));
                    }
                }
            }
            Some(mk) => {
                let lines = match cache
                    .get(mk)
                    .await
                    .map_err(|e| format!("reading the manifest: {e}"))?
                {
                    None => Vec::new(),
                    Some(Cacheable::Manifest(m)) if !m.keys.is_empty() => m.keys,
                    Some(other) => return Err(format!("the manifest key holds {}", short(&other))),
                };
                let set: BTreeSet<String> = lines.iter().cloned().collect();
                if set.len() != lines.len() || set != self.lines {
                    return Err(format!("manifest lines {lines:?}, model {:?}", self.lines));
                }
                for k in self.lines.iter().chain(self.entries.keys()) {
                    if let (k, Some(v)) = read(k.clone()).await? {
                        seen.insert(k, to_json(&v));
                    }
                }
            }
        }
        let want: BTreeMap<String, Value> = self
            .entries
            .iter()
            .filter(|(k, s)| !(physical_expiry && s.doomed(droppable_s) && !seen.contains_key(*k)))
            .map(|(k, s)| (k.clone(), to_json(&s.value)))
            .collect();
        if seen != want {
            let keys: BTreeSet<&String> = seen.keys().chain(want.keys()).collect();
            let diff: Vec<String> = keys
                .into_iter()
                .filter(|k| seen.get(*k) != want.get(*k))
                .map(|k| {
                    format!(
                        "  {k}: stored {}, model {}",
                        short(&seen.get(k)),
                        short(&want.get(k))
                    )
                })
                .collect();
            return Err(format!("final state differs:\n{}", diff.join("\n")));
        }
        Ok(())
    }
}
