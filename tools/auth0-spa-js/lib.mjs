// The real @auth0/auth0-spa-js CacheManager, driven from plain Node.
//
// The package does not export its CacheManager. Every Auth0Client builds one in its
// constructor, over the `cache` option it was given (with a CacheKeyManifest when that
// cache has no `allKeys`) and the `nowProvider` option, and keeps it in the field
// `cacheManager` (private in the TypeScript types, an ordinary property at run time).
// `cacheManagerOf` builds such a client and hands that manager out; nothing else of the
// client is used. The constructor needs no browser globals.
//
// Used by:
//   - the differential test of tokencache-core (runScenario, through
//     crates/tokencache-core/tests/differential/run.mjs),
//   - the golden fixture generator (crates/tokencache-core/tests/fixtures/generate.mjs),
//   - bench.mjs (the package's own timings).

import { createRequire } from 'node:module';
import * as spa from '@auth0/auth0-spa-js';

const require = createRequire(import.meta.url);

/** The npm name of the package under test. */
export const PACKAGE = '@auth0/auth0-spa-js';
/** The installed version (package.json pins it exactly). */
export const VERSION = require(`${PACKAGE}/package.json`).version;

export const { Auth0Client, CacheKey, InMemoryCache, LocalStorageCache } = spa;

/**
 * The package's CacheManager over `cache`, for client `clientId`, reading the time
 * (ms since the epoch) from `now()`.
 */
export function cacheManagerOf(cache, { clientId, now }) {
  const client = new Auth0Client({
    domain: 'example.test',
    clientId,
    cache,
    nowProvider: now,
    authorizationParams: { redirect_uri: 'http://localhost/callback' },
  });
  const manager = client.cacheManager;
  for (const method of ['get', 'set', 'remove', 'clear', 'updateEntry', 'getRefreshTokensByAudience']) {
    if (typeof manager?.[method] !== 'function') {
      throw new Error(`${PACKAGE} ${VERSION}: Auth0Client.cacheManager has no ${method}(); the harness needs updating`);
    }
  }
  return manager;
}

/**
 * A cache (the package's ICache shape) that keeps every value as a JSON string in a Map,
 * as localStorage does: what it holds shares no object with the manager, and `text`
 * is exactly what was stored. With `listsKeys`, it has `allKeys()` (the keys in the order
 * they were first set, as a Map and the package's own caches give them); without, the
 * manager keeps a key manifest.
 */
export function jsonStringCache({ listsKeys }) {
  const text = new Map();
  const cache = {
    get: (key) => (text.has(key) ? JSON.parse(text.get(key)) : undefined),
    set: (key, value) => {
      text.set(key, JSON.stringify(value));
    },
    remove: (key) => {
      text.delete(key);
    },
  };
  if (listsKeys) cache.allKeys = () => Array.from(text.keys());
  return { cache, text };
}

// A JSON `null` is an omitted argument in JavaScript (the package's defaults apply).
const arg = (value) => (value === null ? undefined : value);

// A result as plain JSON data: `undefined` becomes null, undefined members disappear.
const plain = (value) => (value === undefined ? null : JSON.parse(JSON.stringify(value)));

const keyOf = (op) => new CacheKey({ clientId: op.clientId, audience: arg(op.audience), scope: arg(op.scope) });

// Thrown for an op this harness does not know: a broken document, not a result.
class UnknownOp extends Error {}

// One operation of a scenario on `manager`; `clock.advance(seconds)` moves the time.
async function apply(manager, clock, op) {
  switch (op.op) {
    case 'set':
      return manager.set(op.entry);
    case 'get':
      return manager.get(keyOf(op), op.leeway ?? 0, op.useMrrt ?? false, arg(op.cacheMode));
    case 'setIdToken':
      return manager.setIdToken(op.clientId, op.idToken, op.decodedToken);
    case 'getIdToken':
      return manager.getIdToken(keyOf(op));
    case 'remove':
      return manager.remove(op.clientId, arg(op.audience), arg(op.scope));
    case 'clear':
      return manager.clear(arg(op.clientId));
    case 'stripRefreshToken':
      return manager.stripRefreshToken(op.refreshToken);
    case 'updateEntry':
      return manager.updateEntry(op.oldRefreshToken, op.newRefreshToken, op.clientId, op.useMrrt ?? false);
    case 'refreshTokensByAudience':
      return manager.getRefreshTokensByAudience(op.audience, op.clientId);
    case 'advance':
      clock.advance(op.seconds ?? 0);
      return undefined;
    default:
      throw new UnknownOp(`unknown op ${JSON.stringify(op.op)}`);
  }
}

/**
 * Runs one scenario document through the package's CacheManager:
 *
 *   { mode: "allKeys" | "manifest", startMs, clientId, ops: [op, ...] }
 *
 * (see README.md for the ops). `mode` decides whether the cache lists its keys or the
 * manager keeps a manifest under `clientId` (default "c1"); the clock starts at
 * `startMs` and moves only with `advance`.
 *
 * Returns `{version, results, store}`: one result per op (the resolved value as JSON,
 * null for undefined, `{error: message}` when the call threw) and every stored key with
 * its parsed JSON value, keys sorted. An unknown op rejects the whole scenario.
 */
export async function runScenario(doc) {
  const mode = doc.mode ?? 'allKeys';
  if (mode !== 'allKeys' && mode !== 'manifest') throw new TypeError(`unknown mode ${JSON.stringify(mode)}`);
  let nowMs = Number(doc.startMs ?? 0);
  const clock = {
    advance: (seconds) => {
      nowMs += Math.round(seconds * 1000);
    },
  };
  const { cache, text } = jsonStringCache({ listsKeys: mode === 'allKeys' });
  const manager = cacheManagerOf(cache, { clientId: doc.clientId ?? 'c1', now: () => nowMs });

  const results = [];
  for (const op of doc.ops ?? []) {
    if (!op || typeof op.op !== 'string') throw new TypeError(`not an op: ${JSON.stringify(op)}`);
    let result;
    try {
      result = plain(await apply(manager, clock, op));
    } catch (e) {
      if (e instanceof UnknownOp) throw e;
      result = { error: String(e?.message ?? e) };
    }
    results.push(result);
  }

  const store = {};
  for (const key of Array.from(text.keys()).sort()) store[key] = JSON.parse(text.get(key));
  return { version: VERSION, results, store };
}
