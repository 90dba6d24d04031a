// Loads the real @auth0/auth0-spa-js into the wasm-bindgen-test page and drives it.
//
// The package is not vendored: scripts/web-test.sh runs `npm ci` in crates/tokencache-web/js,
// and wasm-bindgen-test-runner's server serves files relative to its working directory (the
// crate directory, where cargo runs the tests) when they are not generated files. So the
// package's self-contained ES module build is imported at run time from
// /js/node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.esm.js.

const PKG = "/js/node_modules/@auth0/auth0-spa-js";
const EXPECTED_VERSION = "2.28.3";
let spa;

/** Imports the package once; fails loudly when it is not installed or not the pinned version. */
export async function load_auth0() {
  if (spa) return;
  const pkg = await fetch(`${PKG}/package.json`);
  if (!pkg.ok) {
    throw new Error(`@auth0/auth0-spa-js is not installed (GET ${PKG}/package.json: ${pkg.status}); ` +
      "run scripts/web-test.sh (it runs npm ci in crates/tokencache-web/js)");
  }
  const version = (await pkg.json()).version;
  if (version !== EXPECTED_VERSION) {
    throw new Error(`@auth0/auth0-spa-js ${version} installed, ${EXPECTED_VERSION} expected`);
  }
  spa = await import(`${PKG}/dist/auth0-spa-js.production.esm.js`);
  if (typeof spa.LocalStorageCache !== "function" || typeof spa.Auth0Client !== "function") {
    throw new Error("@auth0/auth0-spa-js does not export LocalStorageCache / Auth0Client");
  }
}

// --- auth0-spa-js's own LocalStorageCache --------------------------------------------------

export function spa_local_storage_cache() {
  return new spa.LocalStorageCache();
}

/** JSON of what auth0-spa-js's cache returns for `key`, or undefined. */
export function spa_get_json(cache, key) {
  const v = cache.get(key);
  return v === undefined ? undefined : JSON.stringify(v);
}

export function spa_set_json(cache, key, json) {
  cache.set(key, JSON.parse(json));
}

export function spa_all_keys(cache) {
  return cache.allKeys();
}

/** auth0-spa-js's LocalStorageCache without allKeys: Auth0Client then keeps a key manifest. */
export function spa_manifest_mode_cache() {
  const inner = new spa.LocalStorageCache();
  return {
    get: (k) => inner.get(k),
    set: (k, v) => inner.set(k, v),
    remove: (k) => inner.remove(k),
  };
}

// --- a real Auth0Client and its CacheManager ------------------------------------------------

export function make_client(cache, clientId, nowMs) {
  return new spa.Auth0Client({
    domain: "example.test",
    clientId,
    cache,
    nowProvider: () => nowMs,
    authorizationParams: { redirect_uri: `${location.origin}/callback` },
  });
}

export async function cm_set(client, entryJson) {
  await client.cacheManager.set(JSON.parse(entryJson));
}

export async function cm_set_id_token(client, clientId, idToken, decodedJson) {
  await client.cacheManager.setIdToken(clientId, idToken, JSON.parse(decodedJson));
}

/** JSON of the body auth0-spa-js's CacheManager finds for the key parts, or undefined. */
export async function cm_get_json(client, clientId, audience, scope) {
  const body = await client.cacheManager.get(new spa.CacheKey({ clientId, audience, scope }));
  return body === undefined ? undefined : JSON.stringify(body);
}

export async function cm_get_id_token_json(client, clientId) {
  const v = await client.cacheManager.getIdToken(new spa.CacheKey({ clientId }));
  return v === undefined ? undefined : JSON.stringify(v);
}

export async function cm_clear(client, clientId) {
  await client.cacheManager.clear(clientId);
}

/** The public API: getTokenSilently served from the cache alone. */
export async function get_token_cache_only(client, audience, scope) {
  return await client.getTokenSilently({
    cacheMode: "cache-only",
    authorizationParams: { audience, scope },
  });
}

// --- benchmark loops (run in JS, so the baseline pays no wasm<->JS crossing) -------------

let sink = 0;

/** ms for `iters` gets through auth0-spa-js's LocalStorageCache, cycling over `keys`. */
export function spa_bench_get(cache, keys, iters) {
  let hits = 0;
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) {
    const v = cache.get(keys[i % keys.length]);
    if (v !== undefined && v.expiresAt > 0) hits++;
  }
  const ms = performance.now() - t0;
  if (hits !== iters) throw new Error(`auth0-spa-js get: ${hits} hits of ${iters}`);
  return ms;
}

/** ms for `iters` sets through auth0-spa-js's LocalStorageCache of the given values. */
export function spa_bench_set(cache, keys, valuesJson, iters) {
  const values = valuesJson.map((j) => JSON.parse(j));
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) {
    cache.set(keys[i % keys.length], values[i % values.length]);
  }
  return performance.now() - t0;
}

/** ms for `iters` bare localStorage.getItem calls (the storage read alone). */
export function raw_bench_get_item(keys, iters) {
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) sink += localStorage.getItem(keys[i % keys.length]).length;
  return performance.now() - t0;
}

/** ms for `iters` JSON.parse calls of the stored items (the parse alone). */
export function raw_bench_json_parse(keys, iters) {
  const items = keys.map((k) => localStorage.getItem(k));
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) sink += JSON.parse(items[i % items.length]).expiresAt > 0 ? 1 : 0;
  return performance.now() - t0;
}
