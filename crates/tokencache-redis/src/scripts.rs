//! The Lua scripts that keep a namespace's entries and its key index consistent.
//!
//! The scripting contract a cluster relies on: every key a script touches is declared in
//! `KEYS` (no key is built inside a script from a string), and all of them are keys of one
//! namespace, which hash to one cluster slot (hash tag `{namespace}`), so each script runs
//! atomically on a standalone server and on a cluster alike. Listing never writes: its
//! script is flagged `no-writes`, so Redis itself refuses any write in it.

use std::sync::LazyLock;

use redis::Script;

/// `KEYS[1]` index, `KEYS[2]` entry; `ARGV[1]` member (the cache key), `ARGV[2]` value,
/// `ARGV[3]` time to live in ms: `0` none, `-1` already expired (the entry is removed).
///
/// Then index upkeep: `KEYS[3..]` entries that a listing found gone (expired by their
/// TTL), `ARGV[4..]` their members, in the same order; each member whose entry still does
/// not exist leaves the index.
pub(crate) static SET: LazyLock<Script> = LazyLock::new(|| Script::new(SET_LUA));
const SET_LUA: &str = r#"
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('ZREM', KEYS[1], ARGV[i + 1])
  end
end
local ttl = tonumber(ARGV[3])
if ttl < 0 then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
if ttl > 0 then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[2], ARGV[2])
end
redis.call('ZADD', KEYS[1], 0, ARGV[1])
return 1
"#;

/// `KEYS[1]` index, `KEYS[2..]` entries; `ARGV[..]` their members, in the same order.
pub(crate) static REMOVE: LazyLock<Script> = LazyLock::new(|| Script::new(REMOVE_LUA));
const REMOVE_LUA: &str = r#"
for i = 2, #KEYS do
  redis.call('DEL', KEYS[i])
end
for i = 1, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
end
return 1
"#;

/// `KEYS[..]` entries. Read only: returns, for each, `1` when it exists and `0` when not.
pub(crate) static EXISTING: LazyLock<Script> = LazyLock::new(|| Script::new(EXISTING_LUA));
const EXISTING_LUA: &str = r#"#!lua flags=no-writes
local found = {}
for i = 1, #KEYS do
  found[i] = redis.call('EXISTS', KEYS[i])
end
return found
"#;

/// The compare-and-set of [`Cache::update`](tokencache_core::Cache::update).
///
/// `KEYS[1]` index, `KEYS[2]` entry, then, when `ARGV[5]` (the fence's lease value) is not
/// empty, `KEYS[3]` the fence's lease key; then the entries of stale index members for
/// upkeep, as in [`SET`].
///
/// `ARGV[1]` what to do: `put`, `del` or `keep`; `ARGV[2]` member (the cache key);
/// `ARGV[3]` what the entry must still hold: `0` nothing, `1` exactly the bytes `ARGV[4]`;
/// `ARGV[5]` the lease value the fence must still find (`holder:epoch`), or empty for no
/// fence; `ARGV[6]` new value and `ARGV[7]` its time to live in ms (as in [`SET`]: `0`
/// none, `-1` already expired, then the entry is removed); `ARGV[8..]` the stale members,
/// in the order of their keys.
///
/// Returns `-1` when the fence no longer holds its lease and `-2` when the entry changed
/// since it was read (nothing written in either case); else `0` (kept), `1` (stored) or
/// `2` (removed).
pub(crate) static UPDATE: LazyLock<Script> = LazyLock::new(|| Script::new(UPDATE_LUA));
const UPDATE_LUA: &str = r#"
local first = 3
if ARGV[5] ~= '' then
  first = 4
  if redis.call('GET', KEYS[3]) ~= ARGV[5] then
    return -1
  end
end
local current = redis.call('GET', KEYS[2])
if ARGV[3] == '0' then
  if current then
    return -2
  end
elseif current ~= ARGV[4] then
  return -2
end
if ARGV[1] == 'keep' then
  return 0
end
for i = first, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('ZREM', KEYS[1], ARGV[i - first + 8])
  end
end
local ttl = tonumber(ARGV[7])
if ARGV[1] == 'del' or ttl < 0 then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[1], ARGV[2])
  if ARGV[1] == 'del' then
    return 2
  end
  return 1
end
if ttl > 0 then
  redis.call('SET', KEYS[2], ARGV[6], 'PX', ttl)
else
  redis.call('SET', KEYS[2], ARGV[6])
end
redis.call('ZADD', KEYS[1], 0, ARGV[2])
return 1
"#;

/// The atomic removal of a key prefix: `KEYS[1]` index, `KEYS[2..]` the entries of the
/// index members in `[ARGV[1], ARGV[2]]` (`ZRANGEBYLEX` bounds) as the caller read them,
/// `ARGV[3..]` those members, in the same (lexicographic) order.
///
/// Removes the entries and their members only if the index still holds exactly those
/// members in the range, and returns how many entries existed; else writes nothing and
/// returns `-1` (a key of the prefix was written meanwhile: read again and retry).
pub(crate) static REMOVE_PREFIX: LazyLock<Script> =
    LazyLock::new(|| Script::new(REMOVE_PREFIX_LUA));
const REMOVE_PREFIX_LUA: &str = r#"
local found = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2])
if #found ~= #KEYS - 1 then
  return -1
end
for i = 1, #found do
  if found[i] ~= ARGV[i + 2] then
    return -1
  end
end
local removed = 0
for i = 2, #KEYS do
  removed = removed + redis.call('DEL', KEYS[i])
end
if #found > 0 then
  redis.call('ZREMRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2])
end
return removed
"#;

/// Takes a refresh lock: `KEYS[1]` lease, `KEYS[2]` epoch counter; `ARGV[1]` the new
/// holder's id (hex), `ARGV[2]` the lease's time to live in ms (at least 1).
///
/// A lease that still lives is left alone: returns `{0, its PTTL}` (`-1`: it has no TTL).
/// Else the epoch grows by one and the lease becomes `holder:epoch` with that TTL, in the
/// same script, so no other acquisition falls in between and a refused one takes no
/// epoch: returns `{1, epoch}`.
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| Script::new(ACQUIRE_LUA));
const ACQUIRE_LUA: &str = r#"
local left = redis.call('PTTL', KEYS[1])
if left ~= -2 then
  return {0, left}
end
local epoch = redis.call('INCR', KEYS[2])
local lease = string.format('%s:%d', ARGV[1], epoch)
if not redis.call('SET', KEYS[1], lease, 'NX', 'PX', ARGV[2]) then
  return {0, tonumber(ARGV[2])}
end
return {1, epoch}
"#;

/// Extends a lease (compare and extend): `KEYS[1]` lease, `ARGV[1]` the value it must
/// still hold (`holder:epoch`), `ARGV[2]` the new time to live in ms. Returns `1` when
/// extended, `0` when the lease is gone or another holder's.
pub(crate) static EXTEND: LazyLock<Script> = LazyLock::new(|| Script::new(EXTEND_LUA));
const EXTEND_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// Releases a lease (compare and release): `KEYS[1]` lease, `ARGV[1]` the value it must
/// still hold. Returns `1` when released, `0` when the lease is gone or another holder's.
/// The epoch counter stays, so the next holder gets a larger epoch.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE_LUA));
const RELEASE_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `redis.call` of every script names its key as `KEYS[...]`: no key is made
    /// from a string inside a script.
    #[test]
    fn every_key_a_script_touches_is_declared() {
        let mut calls = 0;
        for (name, lua) in [
            ("SET", SET_LUA),
            ("REMOVE", REMOVE_LUA),
            ("EXISTING", EXISTING_LUA),
            ("UPDATE", UPDATE_LUA),
            ("REMOVE_PREFIX", REMOVE_PREFIX_LUA),
            ("ACQUIRE", ACQUIRE_LUA),
            ("EXTEND", EXTEND_LUA),
            ("RELEASE", RELEASE_LUA),
        ] {
            for (i, _) in lua.match_indices("redis.call(") {
                let rest = &lua[i + "redis.call(".len()..];
                let args = &rest[..rest.find(')').expect("a closing parenthesis")];
                let mut parts = args.split(',').map(str::trim);
                let command = parts.next().unwrap_or_default();
                let key = parts.next().unwrap_or_default();
                assert!(
                    key.starts_with("KEYS["),
                    "{name}: {command} touches {key:?}, not a declared key"
                );
                calls += 1;
            }
        }
        assert_eq!(calls, 29);
        // The listing script may not write: Redis enforces the flag.
        assert!(EXISTING_LUA.starts_with("#!lua flags=no-writes\n"));
        assert!(!EXISTING_LUA.contains("ZREM") && !EXISTING_LUA.contains("DEL"));
        for script in [
            &*SET,
            &*REMOVE,
            &*EXISTING,
            &*UPDATE,
            &*REMOVE_PREFIX,
            &*ACQUIRE,
            &*EXTEND,
            &*RELEASE,
        ] {
            assert_eq!(script.get_hash().len(), 40);
        }
    }
}
