//! Reads never write: `get`, `all_keys` and `keys_with_prefix` send no command that
//! Redis flags `write`, shown by the server's own command statistics (`CONFIG RESETSTAT`,
//! then `INFO commandstats`, each command's flags from `COMMAND INFO`), which count the
//! commands scripts run too. One test in its own binary: nothing else runs on the server
//! meanwhile (cargo runs test binaries one after another).

mod common;

use std::collections::BTreeMap;

use common::{fresh_namespace, Target};
use redis::Value;
use tokencache_core::{Cache, KeyManifestEntry};
use tokencache_redis::RedisCache;

async fn raw<T: redis::FromRedisValue>(cache: &RedisCache, cmd: &redis::Cmd) -> T {
    cmd.query_async(&mut cache.connection())
        .await
        .expect("raw redis command")
}

/// Calls per command since the last `CONFIG RESETSTAT` (`get`, `config|resetstat`, …).
async fn command_stats(cache: &RedisCache) -> BTreeMap<String, u64> {
    let info: String = raw(cache, redis::cmd("INFO").arg("commandstats")).await;
    info.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let calls = rest.split(',').find_map(|f| f.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

/// The flags Redis gives `command` (`write`, `readonly`, …).
async fn flags(cache: &RedisCache, command: &str) -> Vec<String> {
    let info: Value = raw(cache, redis::cmd("COMMAND").arg("INFO").arg(command)).await;
    let Value::Array(docs) = info else {
        panic!("COMMAND INFO {command}: {info:?}")
    };
    let Some(Value::Array(doc)) = docs.first() else {
        panic!("COMMAND INFO {command}: unknown command")
    };
    match doc.get(2) {
        Some(Value::Array(flags)) => flags
            .iter()
            .map(|f| match f {
                Value::SimpleString(s) => s.clone(),
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                other => format!("{other:?}"),
            })
            .collect(),
        other => panic!("COMMAND INFO {command}: flags {other:?}"),
    }
}

/// The commands run since the last reset that Redis flags `write`.
async fn writes(cache: &RedisCache, stats: &BTreeMap<String, u64>) -> Vec<String> {
    let mut out = Vec::new();
    for name in stats.keys() {
        if flags(cache, name).await.iter().any(|f| f == "write") {
            out.push(name.clone());
        }
    }
    out
}

#[tokio::test]
async fn gets_and_listings_send_no_write_command() {
    let cache = Target::Standalone
        .connect(RedisCache::builder(fresh_namespace("readonly")))
        .await;
    let value = || KeyManifestEntry { keys: vec![] }.into();
    for k in ["a::1", "a::2", "b::1", "gone"] {
        cache.set(k, value()).await.unwrap();
    }
    // An entry gone from Redis (as by its TTL) whose index member is still there: the
    // case where listing used to clean the index.
    let _: i64 = raw(&cache, redis::cmd("DEL").arg(cache.storage_key("gone"))).await;
    let zcard = redis::cmd("ZCARD").arg(cache.index_key()).to_owned();
    assert_eq!(raw::<i64>(&cache, &zcard).await, 4);

    let () = raw(&cache, redis::cmd("CONFIG").arg("RESETSTAT")).await;
    assert_eq!(cache.get("a::1").await.unwrap(), Some(value()));
    assert_eq!(cache.get("missing").await.unwrap(), None);
    assert_eq!(cache.get("gone").await.unwrap(), None);
    assert_eq!(
        cache.all_keys().await.unwrap().unwrap(),
        ["a::1", "a::2", "b::1"]
    );
    assert_eq!(
        cache.keys_with_prefix("a::").await.unwrap().unwrap(),
        ["a::1", "a::2"]
    );
    let stats = command_stats(&cache).await;
    // The statistics saw the reads, the script's own calls included.
    for seen in ["get", "zrangebylex", "exists"] {
        assert!(stats.contains_key(seen), "{seen} missing from {stats:?}");
    }
    assert!(
        stats.contains_key("evalsha") || stats.contains_key("eval"),
        "{stats:?}"
    );
    assert_eq!(
        writes(&cache, &stats).await,
        Vec::<String>::new(),
        "{stats:?}"
    );
    assert_eq!(
        raw::<i64>(&cache, &zcard).await,
        4,
        "a listing changed the index"
    );

    // The check does catch writes: the next `set` removes the stale member.
    let () = raw(&cache, redis::cmd("CONFIG").arg("RESETSTAT")).await;
    cache.set("c::1", value()).await.unwrap();
    let stats = command_stats(&cache).await;
    let written = writes(&cache, &stats).await;
    for w in ["set", "zadd", "zrem"] {
        assert!(written.iter().any(|x| x == w), "{w} not in {written:?}");
    }
    assert_eq!(
        raw::<i64>(&cache, &zcard).await,
        4,
        "the write removed the stale member and added its own"
    );
    assert_eq!(
        cache.all_keys().await.unwrap().unwrap(),
        ["a::1", "a::2", "b::1", "c::1"]
    );
    assert_eq!(cache.clear_namespace().await.unwrap(), 4);
    assert_eq!(raw::<i64>(&cache, &zcard).await, 0);
}
