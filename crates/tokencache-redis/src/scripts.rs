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
        assert_eq!(calls, 10);
        // The listing script may not write: Redis enforces the flag.
        assert!(EXISTING_LUA.starts_with("#!lua flags=no-writes\n"));
        assert!(!EXISTING_LUA.contains("ZREM") && !EXISTING_LUA.contains("DEL"));
        for script in [&*SET, &*REMOVE, &*EXISTING] {
            assert_eq!(script.get_hash().len(), 40);
        }
    }
}
