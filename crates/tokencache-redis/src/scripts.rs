//! The Lua scripts that keep a namespace's entries and its key index consistent.
//!
//! Every script touches the keys of one namespace only, which all hash to one cluster
//! slot (hash tag `{namespace}`), so each runs atomically on a standalone server and on
//! a cluster alike. Entry keys are built inside the scripts from the namespace's entry
//! prefix; they share the index's slot.

use std::sync::LazyLock;

use redis::Script;

/// `KEYS[1]` index, `KEYS[2]` entry; `ARGV[1]` member (the cache key), `ARGV[2]` value,
/// `ARGV[3]` time to live in ms: `0` none, `-1` already expired (the entry is removed).
pub(crate) static SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
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
"#,
    )
});

/// `KEYS[1]` index, `KEYS[2..]` entries; `ARGV[..]` their members, in the same order.
pub(crate) static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
for i = 2, #KEYS do
  redis.call('DEL', KEYS[i])
end
for i = 1, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
end
return 1
"#,
    )
});

/// `KEYS[1]` index; `ARGV[1]` entry prefix, `ARGV[2]`/`ARGV[3]` the ZRANGEBYLEX bounds.
/// Returns the members in range whose entry exists, and removes from the index those
/// whose entry is gone (expired by its TTL).
pub(crate) static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], ARGV[3])
local live = {}
for _, m in ipairs(members) do
  if redis.call('EXISTS', ARGV[1] .. m) == 1 then
    live[#live + 1] = m
  else
    redis.call('ZREM', KEYS[1], m)
  end
end
return live
"#,
    )
});

/// `KEYS[1]` index; `ARGV[1]` entry prefix. Deletes every entry of the namespace and
/// the index; returns how many index members there were.
pub(crate) static CLEAR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, m in ipairs(members) do
  redis.call('DEL', ARGV[1] .. m)
end
redis.call('DEL', KEYS[1])
return #members
"#,
    )
});
