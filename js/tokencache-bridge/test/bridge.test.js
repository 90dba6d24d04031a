import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";

import {
  BridgeError,
  ERROR_KINDS,
  androidTransport,
  capacitorTransport,
  createBridgeCache,
  fetchTransport,
  probeListsKeys,
  tauriTransport,
  webSocketTransport,
  webkitTransport,
} from "../index.js";

const PREFIX = "@@auth0spajs@@::";
const KEY = "@@auth0spajs@@::app::https://api::openid read";
const TOKEN = "eyJhbGciOiJSUzI1NiJ9.secret-access-token.sig";
const entry = (token) => ({ body: { access_token: token, scope: "openid read" }, expiresAt: 2_000_000_000 });

/**
 * A native side in a few lines, following docs/bridge-protocol.md: prefix confinement,
 * cache-value check, key limit, `unsupported` allKeys when it cannot list.
 */
function fakeNative({ listsKeys = true, maxKeys = 1000 } = {}) {
  const store = new Map();
  const calls = [];
  const fail = (id, kind, message) => ({ ...(id === undefined ? {} : { id }), ok: false, error: { kind, message, temporary: false } });
  const ok = (id, value) => ({ ...(id === undefined ? {} : { id }), ok: true, ...(value === undefined ? {} : { value }) });
  const isCacheValue = (v) =>
    v && typeof v === "object" && ((v.body && typeof v.expiresAt === "number") || Array.isArray(v.keys) || typeof v.id_token === "string");
  const handle = (req) => {
    calls.push(req);
    const { id, op, key, value } = req;
    if (op === "allKeys") {
      return listsKeys ? ok(id, [...store.keys()]) : fail(id, "unsupported", "this cache cannot list its keys");
    }
    if (!["get", "set", "remove"].includes(op)) return fail(id, "unsupported", "unknown op");
    if (typeof key !== "string" || !key.startsWith(PREFIX) || key.length === PREFIX.length) {
      return fail(id, "invalid_key", "the key is not under the bridge's prefix");
    }
    if (op === "get") return ok(id, store.has(key) ? structuredClone(store.get(key)) : undefined);
    if (op === "remove") {
      store.delete(key);
      return ok(id);
    }
    if (!isCacheValue(value)) return fail(id, "serialization", "the value is not a cache value");
    if (!store.has(key) && store.size >= maxKeys) return fail(id, "quota_exceeded", "the bridge holds its limit of keys");
    store.set(key, structuredClone(value));
    return ok(id);
  };
  return { store, calls, handle, transport: async (req) => handle(req) };
}

test("get, set, remove and allKeys go through the protocol", async () => {
  const native = fakeNative();
  const cache = createBridgeCache(native.transport, { listsKeys: true });
  assert.equal(await cache.get(KEY), undefined);
  assert.equal(await cache.set(KEY, entry(TOKEN)), undefined);
  assert.deepEqual(native.store.get(KEY), entry(TOKEN));
  assert.deepEqual(await cache.get(KEY), entry(TOKEN));
  assert.deepEqual(await cache.allKeys(), [KEY]);
  await cache.remove(KEY);
  assert.equal(native.store.size, 0);
  assert.deepEqual(
    native.calls.map((c) => c.op),
    ["get", "set", "get", "allKeys", "remove"],
  );
  assert.deepEqual(native.calls[1], { op: "set", key: KEY, value: entry(TOKEN) });
});

test("allKeys exists only when the native side lists keys", async () => {
  const native = fakeNative({ listsKeys: false });
  const without = createBridgeCache(native.transport, { listsKeys: false });
  assert.equal("allKeys" in without, false);
  // auth0-spa-js keeps its manifest through get/set when allKeys is missing.
  const manifestKey = "@@auth0spajs@@::app";
  await without.set(manifestKey, { keys: [KEY] });
  await without.set(KEY, entry(TOKEN));
  assert.deepEqual(await without.get(manifestKey), { keys: [KEY] });
  assert.equal(native.calls.length, 3, "no allKeys call was made");
});

test("an unknown listsKeys is asked once", async () => {
  const listing = fakeNative();
  const cache = await createBridgeCache(listing.transport);
  assert.equal(typeof cache.allKeys, "function");
  assert.deepEqual(listing.calls, [{ op: "allKeys" }]);

  const manifestMode = fakeNative({ listsKeys: false });
  const noList = await createBridgeCache(manifestMode.transport);
  assert.equal("allKeys" in noList, false);
  assert.equal(manifestMode.calls.length, 1);
  assert.equal(await probeListsKeys(manifestMode.transport), false);

  // Any other error while asking rejects, typed.
  const broken = async () => ({ ok: false, error: { kind: "unavailable", message: "down", temporary: true } });
  await assert.rejects(createBridgeCache(broken), (e) => e instanceof BridgeError && e.kind === "unavailable" && e.temporary);
});

test("error responses reject with a BridgeError of that kind, without the value", async () => {
  const native = fakeNative({ maxKeys: 1 });
  const cache = createBridgeCache(native.transport, { listsKeys: true });
  await assert.rejects(cache.get("other-app::x"), (e) => {
    assert.ok(e instanceof BridgeError);
    assert.ok(e instanceof Error);
    assert.equal(e.kind, "invalid_key");
    assert.equal(e.temporary, false);
    return true;
  });
  await assert.rejects(cache.set(KEY, { access_token: TOKEN }), (e) => {
    assert.equal(e.kind, "serialization");
    assert.ok(!e.message.includes(TOKEN));
    assert.ok(!String(e.stack).includes(TOKEN));
    return true;
  });
  await cache.set(KEY, entry("t"));
  await assert.rejects(cache.set(`${KEY}2`, entry(TOKEN)), { name: "BridgeError", kind: "quota_exceeded" });
  assert.deepEqual([...native.store.keys()], [KEY], "nothing lost, nothing added");
  for (const kind of ["invalid_key", "serialization", "quota_exceeded", "unsupported"]) {
    assert.ok(ERROR_KINDS.includes(kind));
  }
});

test("transport failures and malformed responses are typed", async () => {
  const throwing = createBridgeCache(
    async (req) => {
      throw new Error(`socket hang up while sending ${JSON.stringify(req)}`);
    },
    { listsKeys: true },
  );
  await assert.rejects(throwing.set(KEY, entry(TOKEN)), (e) => {
    assert.equal(e.kind, "unavailable");
    assert.equal(e.temporary, true);
    assert.ok(!e.message.includes(TOKEN), "the transport's message is not repeated");
    return true;
  });
  for (const bad of [undefined, null, 42, {}, { ok: false }, "not json", { ok: "yes" }]) {
    const cache = createBridgeCache(async () => bad, { listsKeys: true });
    await assert.rejects(cache.get(KEY), { kind: "unexpected" });
  }
  const notAList = createBridgeCache(async () => ({ ok: true, value: { keys: [] } }), { listsKeys: true });
  await assert.rejects(notAList.allKeys(), { kind: "unexpected" });
  // A response given as JSON text is accepted.
  const text = createBridgeCache(async () => JSON.stringify({ ok: true, value: entry("t") }), { listsKeys: false });
  assert.deepEqual(await text.get(KEY), entry("t"));
  assert.throws(() => createBridgeCache("not a function"), TypeError);
});

test("tauriTransport invokes the plugin command with the request", async () => {
  const native = fakeNative();
  const seen = [];
  const invoke = async (command, args) => {
    seen.push(command);
    return native.handle(args.request);
  };
  const cache = createBridgeCache(tauriTransport(invoke), { listsKeys: true });
  await cache.set(KEY, entry(TOKEN));
  assert.deepEqual(await cache.allKeys(), [KEY]);
  assert.deepEqual(seen, ["plugin:tokencache|request", "plugin:tokencache|request"]);
  const custom = tauriTransport(async (command, args) => ({ ok: true, value: [command, args.request.op] }), { command: "bridge" });
  assert.deepEqual(await custom({ op: "allKeys" }), { ok: true, value: ["bridge", "allKeys"] });
  // A rejected invoke (a missing permission) is an unavailable error.
  const denied = createBridgeCache(tauriTransport(async () => Promise.reject("not allowed")), { listsKeys: false });
  await assert.rejects(denied.get(KEY), { kind: "unavailable" });
});

test("capacitorTransport sends JSON text and unwraps {value}", async () => {
  const native = fakeNative();
  const plugin = {
    async request({ request }) {
      assert.equal(typeof request, "string");
      return { value: JSON.stringify(native.handle(JSON.parse(request))) };
    },
  };
  const cache = createBridgeCache(capacitorTransport(plugin), { listsKeys: true });
  await cache.set(KEY, entry(TOKEN));
  assert.deepEqual(await cache.get(KEY), entry(TOKEN));
  await assert.rejects(cache.remove("nope"), { kind: "invalid_key" });
  // Object values are accepted too; a result without value is an error.
  const objects = capacitorTransport({ async call({ request }) { return { value: native.handle(JSON.parse(request)) }; } }, { method: "call" });
  assert.deepEqual(await objects({ op: "get", key: KEY }), { ok: true, value: entry(TOKEN) });
  const bare = createBridgeCache(capacitorTransport({ async request() { return {}; } }), { listsKeys: false });
  await assert.rejects(bare.get(KEY), { kind: "unexpected" });
  assert.throws(() => capacitorTransport({}), TypeError);
});

test("webkitTransport posts to the named reply handler", async () => {
  const native = fakeNative({ listsKeys: false });
  const win = {
    webkit: {
      messageHandlers: {
        tokencache: { postMessage: async (req) => native.handle(structuredClone(req)) },
      },
    },
  };
  const cache = await createBridgeCache(webkitTransport("tokencache", { window: win }));
  assert.equal("allKeys" in cache, false);
  await cache.set(KEY, entry(TOKEN));
  assert.deepEqual(await cache.get(KEY), entry(TOKEN));
  const missing = createBridgeCache(webkitTransport("other", { window: win }), { listsKeys: false });
  await assert.rejects(missing.get(KEY), { kind: "unavailable" });
  // The native handler's reply-with-error rejects the promise.
  win.webkit.messageHandlers.failing = { postMessage: async () => Promise.reject(new Error("handler error")) };
  await assert.rejects(createBridgeCache(webkitTransport("failing", { window: win }), { listsKeys: false }).get(KEY), {
    kind: "unavailable",
  });
});

/** An addWebMessageListener object: JSON text in, replies as message events, in any order. */
function fakeAndroidChannel(native, { useOnMessage = false, reverse = false, drop = false } = {}) {
  const listeners = [];
  const queued = [];
  const channel = {
    postMessage(text) {
      assert.equal(typeof text, "string");
      if (drop) return;
      queued.push(JSON.stringify(native.handle(JSON.parse(text))));
      // Answer the two first requests together, the second first when `reverse`.
      if (!reverse || queued.length === 2) {
        const batch = queued.splice(0);
        if (reverse) batch.reverse();
        setTimeout(() => {
          for (const data of batch) {
            if (useOnMessage) channel.onmessage({ data });
            else listeners.forEach((l) => l({ data }));
          }
        }, 1);
      }
    },
  };
  if (!useOnMessage) channel.addEventListener = (type, l) => type === "message" && listeners.push(l);
  return channel;
}

test("androidTransport matches replies by id", async () => {
  const native = fakeNative();
  const win = { tokencacheBridge: fakeAndroidChannel(native, { reverse: true }) };
  const cache = createBridgeCache(androidTransport("tokencacheBridge", { window: win }), { listsKeys: true });
  const other = `${KEY}::x`;
  await Promise.all([cache.set(KEY, entry("a")), cache.set(other, entry("b"))]);
  const [a, b] = await Promise.all([cache.get(KEY), cache.get(other)]);
  assert.deepEqual([a, b], [entry("a"), entry("b")], "each reply reached its own request");
  assert.ok(native.calls.every((c) => c.id !== undefined));

  const onmessage = { tokencacheBridge: fakeAndroidChannel(native, { useOnMessage: true }) };
  const viaOnMessage = createBridgeCache(androidTransport("tokencacheBridge", { window: onmessage }), { listsKeys: true });
  assert.deepEqual((await viaOnMessage.allKeys()).sort(), [KEY, other].sort());

  const silent = { tokencacheBridge: fakeAndroidChannel(native, { drop: true }) };
  const timingOut = createBridgeCache(androidTransport("tokencacheBridge", { window: silent, timeoutMs: 20 }), { listsKeys: false });
  await assert.rejects(timingOut.get(KEY), { kind: "unavailable", temporary: true });
  assert.throws(() => androidTransport("missing", { window: {} }), TypeError);
});

test("fetchTransport posts JSON and maps HTTP failures", async () => {
  const native = fakeNative();
  const requests = [];
  const fakeFetch = async (url, init) => {
    requests.push({ url, init });
    const body = JSON.stringify(native.handle(JSON.parse(init.body)));
    return { ok: true, status: 200, text: async () => body };
  };
  const cache = createBridgeCache(fetchTransport("http://127.0.0.1:9/tokencache", { fetch: fakeFetch }), { listsKeys: true });
  await cache.set(KEY, entry(TOKEN));
  assert.deepEqual(await cache.get(KEY), entry(TOKEN));
  assert.equal(requests[0].url, "http://127.0.0.1:9/tokencache");
  assert.equal(requests[0].init.method, "POST");
  assert.equal(requests[0].init.headers["Content-Type"], "application/json");

  const failing = fetchTransport("http://x/tokencache", { fetch: async () => ({ ok: false, status: 503 }) });
  await assert.rejects(createBridgeCache(failing, { listsKeys: false }).get(KEY), { kind: "unavailable", temporary: true });
  const forbidden = fetchTransport("http://x/tokencache", { fetch: async () => ({ ok: false, status: 403 }) });
  await assert.rejects(createBridgeCache(forbidden, { listsKeys: false }).get(KEY), { kind: "unavailable", temporary: false });
});

test("fetchTransport over real HTTP with the platform fetch", async (t) => {
  const native = fakeNative({ listsKeys: false });
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      if (req.method !== "POST" || req.headers["content-type"] !== "application/json") {
        res.writeHead(415).end();
        return;
      }
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(native.handle(JSON.parse(body))));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const url = `http://127.0.0.1:${server.address().port}/tokencache`;
  const cache = await createBridgeCache(fetchTransport(url));
  assert.equal("allKeys" in cache, false, "manifest mode, found by asking once");
  await cache.set(KEY, entry(TOKEN));
  assert.deepEqual(await cache.get(KEY), entry(TOKEN));
  await assert.rejects(cache.get("elsewhere"), { kind: "invalid_key" });
});

/** A WebSocket-like object: opens later, answers each message as a message event. */
class FakeSocket {
  static opened = [];
  constructor(url, native) {
    this.url = url;
    this.native = native;
    this.readyState = 0;
    this.listeners = { open: [], message: [], close: [] };
    this.sent = [];
    FakeSocket.opened.push(this);
  }
  addEventListener(type, l) {
    this.listeners[type].push(l);
  }
  open() {
    this.readyState = 1;
    this.listeners.open.forEach((l) => l({}));
  }
  close() {
    this.readyState = 3;
    this.listeners.close.forEach((l) => l({}));
  }
  send(text) {
    assert.equal(this.readyState, 1, "nothing is sent before the socket opens");
    this.sent.push(text);
    if (this.native) {
      const data = JSON.stringify(this.native.handle(JSON.parse(text)));
      setTimeout(() => this.listeners.message.forEach((l) => l({ data })), 1);
    }
  }
}

test("webSocketTransport queues until open and matches replies by id", async () => {
  const native = fakeNative();
  const native2 = native;
  const WS = class extends FakeSocket {
    constructor(url) {
      super(url, native2);
    }
  };
  const transport = webSocketTransport("ws://127.0.0.1:9/tokencache", { WebSocket: WS });
  const cache = createBridgeCache(transport, { listsKeys: true });
  const pending = cache.set(KEY, entry(TOKEN));
  const socket = FakeSocket.opened.at(-1);
  assert.equal(socket.url, "ws://127.0.0.1:9/tokencache");
  assert.equal(socket.sent.length, 0);
  socket.open();
  await pending;
  assert.deepEqual(await cache.get(KEY), entry(TOKEN));
  // Messages that are not replies to a pending request are ignored.
  socket.listeners.message.forEach((l) => l({ data: "garbage" }));
  socket.listeners.message.forEach((l) => l({ data: JSON.stringify({ id: "unknown", ok: true }) }));

  // A closed socket rejects what is pending.
  const silent = new FakeSocket("ws://x", null);
  silent.open();
  const viaSilent = createBridgeCache(webSocketTransport(silent), { listsKeys: false });
  const waiting = viaSilent.get(KEY);
  silent.close();
  await assert.rejects(waiting, { kind: "unavailable", temporary: true });
});
