// @tokencache/bridge: an auth0-spa-js `cache` whose storage is native (a tokencache
// BridgeHandler on the other side of a webview message channel).
//
// Protocol: docs/bridge-protocol.md of the tokencache repository.

/** The error kinds a native side answers with (tokencache_core::ErrorKind, snake_case). */
export const ERROR_KINDS = Object.freeze([
  "unavailable",
  "quota_exceeded",
  "integrity",
  "serialization",
  "invalid_key",
  "invalid_value",
  "unsupported",
  "config",
  "unexpected",
]);

/** Default time a transport that matches replies by id waits for one (ms). */
export const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * The error a bridge cache rejects with: `kind` is one of ERROR_KINDS, `temporary` says
 * whether the same call may succeed later. Messages never hold tokens or values.
 */
export class BridgeError extends Error {
  constructor(kind, message, { temporary = false, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "BridgeError";
    this.kind = kind;
    this.temporary = temporary;
  }
}

function errorFrom(response) {
  const e = response && typeof response === "object" ? response.error : undefined;
  if (e && typeof e === "object" && typeof e.kind === "string") {
    return new BridgeError(e.kind, String(e.message ?? e.kind), {
      temporary: e.temporary === true,
    });
  }
  return new BridgeError("unexpected", "the native side sent a malformed response");
}

/** The value of a response, or throws its BridgeError. */
function unwrap(response) {
  if (response && typeof response === "object" && response.ok === true) {
    return response.value;
  }
  throw errorFrom(response);
}

/** Accepts a response object or its JSON text (what most native channels carry). */
function parseResponse(data) {
  if (typeof data !== "string") return data;
  try {
    return JSON.parse(data);
  } catch (cause) {
    throw new BridgeError("unexpected", "the native side sent a response that is not JSON", {
      cause,
    });
  }
}

/**
 * Asks the native side once whether it lists keys: true when `allKeys` succeeds, false when
 * it answers `unsupported`; any other error rejects.
 */
export async function probeListsKeys(transport) {
  const response = parseResponse(await send(transport, { op: "allKeys" }));
  if (response && response.ok === true) return true;
  const error = errorFrom(response);
  if (error.kind === "unsupported") return false;
  throw error;
}

async function send(transport, request) {
  try {
    return await transport(request);
  } catch (cause) {
    if (cause instanceof BridgeError) throw cause;
    // The transport's own message is not repeated: it could quote the request.
    throw new BridgeError("unavailable", "the bridge transport failed", {
      temporary: true,
      cause,
    });
  }
}

/**
 * An object for auth0-spa-js's `cache` option. `get`, `set` and `remove` return Promises;
 * `allKeys` exists only when the native side lists keys (auth0-spa-js decides once, when
 * the client is built, whether to keep its own key manifest).
 *
 * With `options.listsKeys` a boolean, the cache is returned at once; without it, the native
 * side is asked once and a Promise of the cache is returned (so `await` always works).
 */
export function createBridgeCache(transport, options = {}) {
  if (typeof transport !== "function") {
    throw new TypeError("createBridgeCache needs a transport: (request) => Promise<response>");
  }
  const call = async (request) => unwrap(parseResponse(await send(transport, request)));
  const build = (listsKeys) => {
    const cache = {
      async get(key) {
        const value = await call({ op: "get", key });
        return value ?? undefined;
      },
      async set(key, value) {
        await call({ op: "set", key, value });
      },
      async remove(key) {
        await call({ op: "remove", key });
      },
    };
    if (listsKeys) {
      cache.allKeys = async () => {
        const keys = await call({ op: "allKeys" });
        if (!Array.isArray(keys)) {
          throw new BridgeError("unexpected", "allKeys answered something other than a list");
        }
        return keys;
      };
    }
    return Object.freeze(cache);
  };
  if (typeof options.listsKeys === "boolean") return build(options.listsKeys);
  return probeListsKeys(transport).then(build);
}

/**
 * For channels whose replies arrive as separate messages: gives each request an `id`,
 * and settles it when the reply with that id arrives (or after `timeoutMs`).
 * Returns `{transport, receive, failAll}`.
 */
export function createReplyMatcher(post, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const pending = new Map();
  let next = 1;
  const transport = (request) =>
    new Promise((resolve, reject) => {
      const id = request.id ?? `tc${next++}`;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new BridgeError("unavailable", "no reply from the native side in time", { temporary: true }));
      }, timeoutMs);
      pending.set(id, { resolve, reject, timer });
      try {
        post({ ...request, id });
      } catch (cause) {
        clearTimeout(timer);
        pending.delete(id);
        reject(cause);
      }
    });
  const receive = (data) => {
    let response;
    try {
      response = parseResponse(data);
    } catch {
      return; // not a bridge reply
    }
    const entry = response && typeof response === "object" ? pending.get(response.id) : undefined;
    if (!entry) return;
    pending.delete(response.id);
    clearTimeout(entry.timer);
    entry.resolve(response);
  };
  const failAll = (error) => {
    for (const [id, entry] of pending) {
      pending.delete(id);
      clearTimeout(entry.timer);
      entry.reject(error);
    }
  };
  return { transport, receive, failAll };
}

/** Tauri: `invoke(command, {request})`, resolving the response. */
export function tauriTransport(invoke, { command = "plugin:tokencache|request" } = {}) {
  if (typeof invoke !== "function") throw new TypeError("tauriTransport needs Tauri's invoke");
  return (request) => invoke(command, { request });
}

/**
 * Capacitor-style plugin: `plugin[method]({request: "<request JSON>"})`, resolving
 * `{value: <response JSON text or object>}`.
 */
export function capacitorTransport(plugin, { method = "request" } = {}) {
  if (!plugin || typeof plugin[method] !== "function") {
    throw new TypeError(`capacitorTransport needs a plugin with a ${method} method`);
  }
  return async (request) => {
    const result = await plugin[method]({ request: JSON.stringify(request) });
    if (!result || typeof result !== "object" || !("value" in result)) {
      throw new BridgeError("unexpected", "the plugin did not resolve {value}");
    }
    return parseResponse(result.value);
  };
}

/**
 * iOS/macOS WKWebView with a `WKScriptMessageHandlerWithReply` named `handlerName`:
 * `postMessage(request)` returns a Promise of the reply (an object or JSON text).
 */
export function webkitTransport(handlerName, { window: win = globalThis.window } = {}) {
  return async (request) => {
    const handler = win?.webkit?.messageHandlers?.[handlerName];
    if (!handler) {
      throw new BridgeError("unavailable", `no WebKit message handler named ${handlerName}`);
    }
    return parseResponse(await handler.postMessage(request));
  };
}

/**
 * Android WebView with `WebViewCompat.addWebMessageListener(.., listenerObjectName, ..)`:
 * requests are posted as JSON text; replies (`replyProxy.postMessage`) are matched by id.
 */
export function androidTransport(listenerObjectName, { window: win = globalThis.window, timeoutMs } = {}) {
  const channel = win?.[listenerObjectName];
  if (!channel || typeof channel.postMessage !== "function") {
    throw new TypeError(`no web message listener object named ${listenerObjectName}`);
  }
  const matcher = createReplyMatcher((req) => channel.postMessage(JSON.stringify(req)), { timeoutMs });
  const onMessage = (event) => matcher.receive(event.data);
  if (typeof channel.addEventListener === "function") {
    channel.addEventListener("message", onMessage);
  } else {
    channel.onmessage = onMessage;
  }
  return matcher.transport;
}

/** HTTP (development and tests): `POST url` with the request JSON, e.g. tokencache-bridge's `http` feature. */
export function fetchTransport(url, { fetch: fetchFn = globalThis.fetch, headers = {} } = {}) {
  if (typeof fetchFn !== "function") throw new TypeError("fetchTransport needs fetch");
  return async (request) => {
    const response = await fetchFn(url, {
      method: "POST",
      headers: { ...headers, "Content-Type": "application/json" },
      body: JSON.stringify(request),
      cache: "no-store",
    });
    if (!response.ok) {
      throw new BridgeError("unavailable", `the bridge answered HTTP ${response.status}`, {
        temporary: response.status >= 500,
      });
    }
    return parseResponse(await response.text());
  };
}

/**
 * WebSocket (development and tests): JSON text both ways, replies matched by id. Takes a
 * URL (opened with `options.WebSocket`, default the global one) or an open or opening socket.
 */
export function webSocketTransport(urlOrSocket, { WebSocket: WS = globalThis.WebSocket, timeoutMs } = {}) {
  const socket = typeof urlOrSocket === "string" ? new WS(urlOrSocket) : urlOrSocket;
  const OPEN = 1;
  const queue = [];
  const matcher = createReplyMatcher(
    (req) => {
      const text = JSON.stringify(req);
      if (socket.readyState === OPEN) socket.send(text);
      else queue.push(text);
    },
    { timeoutMs },
  );
  socket.addEventListener("open", () => {
    while (queue.length) socket.send(queue.shift());
  });
  socket.addEventListener("message", (event) => matcher.receive(event.data));
  socket.addEventListener("close", () =>
    matcher.failAll(new BridgeError("unavailable", "the bridge socket closed", { temporary: true })),
  );
  return matcher.transport;
}
