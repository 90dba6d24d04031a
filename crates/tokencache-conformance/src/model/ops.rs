//! The operations of the model test, their proptest strategies, and how they run on a
//! `CacheManager`.

use std::fmt;

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;
use tokencache_core::{
    CacheEntry, CacheKey, CacheManager, Error, ErrorKind, GetOptions, ManualClock,
};

use crate::harness::{decoded, to_json};

/// Client ids, weighted by repetition: the manifest's own, one that extends it, a
/// Unicode one, and one that cannot be part of a key.
const CLIENTS: &[&str] = &[
    "app", "app", "app", "app", "app-2", "app-2", "app-2", "ç客户", "ç客户", "ç客户", "bad::c",
];
const AUDIENCES: &[&str] = &["https://api.example.com/v2?x=1#f", "api", "api-2"];
const SCOPES: &[&str] = &["openid", "read", "write", "profile"];
const REFRESH_TOKENS: &[&str] = &["rt-1", "rt-2", "rt-3"];

/// A synthetic access token: `at-<n>`, followed by 16 KiB when `big`.
#[derive(Clone, Copy)]
pub(super) struct Tok {
    n: u8,
    big: bool,
}

impl Tok {
    fn value(self) -> String {
        let mut s = format!("at-{}", self.n);
        if self.big {
            s.push_str(&"x".repeat(16 * 1024));
        }
        s
    }
}

impl fmt::Debug for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at-{}{}", self.n, if self.big { "+16KiB" } else { "" })
    }
}

/// One manager operation (or a clock step).
#[derive(Clone, Debug)]
pub(super) enum Op {
    Set {
        client: &'static str,
        audience: &'static str,
        scope: String,
        token: Tok,
        refresh_token: Option<&'static str>,
        id_token: Option<u8>,
        expires_in: i64,
    },
    Get {
        client: &'static str,
        audience: Option<&'static str>,
        scope: Option<String>,
        leeway: i64,
        use_mrrt: bool,
        cache_only: bool,
        /// Through `CacheManager::get_with` (the body shown in place), not `get`.
        lent: bool,
    },
    SetIdToken {
        client: &'static str,
        n: u8,
    },
    GetIdToken {
        client: &'static str,
        audience: Option<&'static str>,
        scope: Option<String>,
    },
    Remove {
        client: &'static str,
        audience: Option<&'static str>,
        scope: Option<String>,
    },
    Clear {
        client: Option<&'static str>,
    },
    StripRefreshToken {
        refresh_token: &'static str,
    },
    UpdateEntry {
        old: &'static str,
        new: &'static str,
        client: &'static str,
        use_mrrt: bool,
    },
    RefreshTokensByAudience {
        audience: &'static str,
        client: &'static str,
    },
    Advance {
        ms: i64,
    },
}

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    proptest::sample::select(pool)
}

/// Up to `max` distinct scopes of the pool, in a random order, joined by spaces ("" when none).
fn scope(max: usize) -> impl Strategy<Value = String> {
    vec(0..SCOPES.len(), 0..=max).prop_map(|picked| {
        let mut distinct: Vec<&str> = Vec::new();
        for i in picked {
            if !distinct.contains(&SCOPES[i]) {
                distinct.push(SCOPES[i]);
            }
        }
        distinct.join(" ")
    })
}

fn opt_scope() -> impl Strategy<Value = Option<String>> {
    prop_oneof![1 => Just(None), 5 => scope(2).prop_map(Some)]
}

fn opt_audience() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![1 => Just(None), 12 => pick(AUDIENCES).prop_map(Some)]
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    let token = (any::<u8>(), prop::bool::weighted(0.05)).prop_map(|(n, big)| Tok { n, big });
    let set = (
        pick(CLIENTS),
        prop_oneof![12 => pick(AUDIENCES), 1 => Just("")],
        scope(3),
        token,
        prop::option::weighted(0.6, pick(REFRESH_TOKENS)),
        prop::option::weighted(0.3, any::<u8>()),
        0..15i64,
    )
        .prop_map(
            |(client, audience, scope, token, refresh_token, id_token, expires_in)| Op::Set {
                client,
                audience,
                scope,
                token,
                refresh_token,
                id_token,
                expires_in,
            },
        );
    let get = (
        pick(CLIENTS),
        opt_audience(),
        opt_scope(),
        0..3i64,
        any::<bool>(),
        prop::bool::weighted(0.2),
        any::<bool>(),
    )
        .prop_map(
            |(client, audience, scope, leeway, use_mrrt, cache_only, lent)| Op::Get {
                client,
                audience,
                scope,
                leeway,
                use_mrrt,
                cache_only,
                lent,
            },
        );
    prop_oneof![
        6 => set,
        6 => get,
        1 => (pick(CLIENTS), any::<u8>()).prop_map(|(client, n)| Op::SetIdToken { client, n }),
        2 => (pick(CLIENTS), opt_audience(), opt_scope())
            .prop_map(|(client, audience, scope)| Op::GetIdToken { client, audience, scope }),
        2 => (pick(CLIENTS), opt_audience(), opt_scope())
            .prop_map(|(client, audience, scope)| Op::Remove { client, audience, scope }),
        1 => prop_oneof![2 => Just(None), 6 => pick(CLIENTS).prop_map(Some), 1 => Just(Some(""))]
            .prop_map(|client| Op::Clear { client }),
        1 => pick(REFRESH_TOKENS).prop_map(|refresh_token| Op::StripRefreshToken { refresh_token }),
        1 => (pick(REFRESH_TOKENS), pick(REFRESH_TOKENS), pick(CLIENTS), any::<bool>())
            .prop_map(|(old, new, client, use_mrrt)| Op::UpdateEntry { old, new, client, use_mrrt }),
        2 => (pick(AUDIENCES), pick(CLIENTS))
            .prop_map(|(audience, client)| Op::RefreshTokensByAudience { audience, client }),
        3 => (0..4000i64).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// What an operation returned, comparable between the manager and the model.
#[derive(PartialEq)]
pub(super) enum Outcome {
    Done,
    Body(Option<Value>),
    IdToken(Option<Value>),
    Tokens(Vec<String>),
    Failed(ErrorKind),
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Done => f.write_str("Ok(())"),
            Outcome::Body(v) => write!(f, "body {}", short(v)),
            Outcome::IdToken(v) => write!(f, "id token {}", short(v)),
            Outcome::Tokens(t) => write!(f, "refresh tokens {t:?}"),
            Outcome::Failed(k) => write!(f, "Err({k:?})"),
        }
    }
}

/// JSON with long strings (16 KiB tokens) abbreviated, for messages.
pub(super) fn short<T: serde::Serialize>(v: &T) -> String {
    fn cut(v: Value) -> Value {
        match v {
            Value::String(s) if s.len() > 40 => Value::String(format!(
                "{}…({} bytes)",
                &s[..s.char_indices().nth(12).map_or(s.len(), |(i, _)| i)],
                s.len()
            )),
            Value::Array(a) => Value::Array(a.into_iter().map(cut).collect()),
            Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, cut(v))).collect()),
            v => v,
        }
    }
    cut(to_json(v)).to_string()
}

fn outcome<T>(r: Result<T, Error>, f: impl FnOnce(T) -> Outcome) -> Outcome {
    match r {
        Ok(v) => f(v),
        Err(e) => Outcome::Failed(e.kind()),
    }
}

pub(super) fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

pub(super) fn cache_entry(op: &Op) -> Option<CacheEntry> {
    let Op::Set {
        client,
        audience,
        scope,
        token,
        refresh_token,
        id_token,
        expires_in,
    } = op
    else {
        return None;
    };
    let mut e = CacheEntry::new(
        *client,
        *audience,
        scope.as_str(),
        token.value(),
        *expires_in as f64,
    );
    e.token_type = Some("Bearer".into());
    e.refresh_token = refresh_token.map(str::to_owned);
    if let Some(n) = id_token {
        e = e.with_id_token(format!("id-{n}"), decoded(&format!("user-{n}")));
    }
    Some(e)
}

/// Runs `op` on the manager (a clock step moves the shared clock).
pub(super) async fn on_manager(m: &CacheManager, clock: &ManualClock, op: &Op) -> Outcome {
    match op {
        Op::Set { .. } => outcome(m.set(cache_entry(op).expect("a set")).await, |_| {
            Outcome::Done
        }),
        Op::Get {
            client,
            audience,
            scope,
            leeway,
            use_mrrt,
            cache_only,
            lent,
        } => {
            let key = CacheKey::new(*client, *audience, scope.as_deref());
            let opts = GetOptions::default()
                .leeway(*leeway)
                .mrrt(*use_mrrt)
                .cache_only(*cache_only);
            if *lent {
                outcome(m.get_with(&key, opts, to_json).await, Outcome::Body)
            } else {
                outcome(m.get(&key, opts).await, |b| {
                    Outcome::Body(b.map(|b| to_json(&*b)))
                })
            }
        }
        Op::SetIdToken { client, n } => outcome(
            m.set_id_token(client, &format!("idt-{n}"), decoded(&format!("own-{n}")))
                .await,
            |_| Outcome::Done,
        ),
        Op::GetIdToken {
            client,
            audience,
            scope,
        } => {
            let key = CacheKey::new(*client, *audience, scope.as_deref());
            outcome(m.get_id_token(&key).await, |t| {
                Outcome::IdToken(t.map(|t| to_json(&t)))
            })
        }
        Op::Remove {
            client,
            audience,
            scope,
        } => outcome(m.remove(client, *audience, scope.as_deref()).await, |_| {
            Outcome::Done
        }),
        Op::Clear { client } => outcome(m.clear(*client).await, |_| Outcome::Done),
        Op::StripRefreshToken { refresh_token } => {
            outcome(m.strip_refresh_token(refresh_token).await, |_| {
                Outcome::Done
            })
        }
        Op::UpdateEntry {
            old,
            new,
            client,
            use_mrrt,
        } => outcome(m.update_entry(old, new, client, *use_mrrt).await, |_| {
            Outcome::Done
        }),
        Op::RefreshTokensByAudience { audience, client } => outcome(
            m.refresh_tokens_by_audience(audience, client).await,
            Outcome::Tokens,
        ),
        Op::Advance { ms } => {
            clock.advance_ms(*ms);
            Outcome::Done
        }
    }
}
