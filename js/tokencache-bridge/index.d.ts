// Type declarations for @tokencache/bridge (hand-written; see index.js).

/** An error kind of the native side (tokencache_core::ErrorKind in snake_case). */
export type ErrorKind =
  | "unavailable"
  | "quota_exceeded"
  | "integrity"
  | "serialization"
  | "invalid_key"
  | "invalid_value"
  | "unsupported"
  | "config"
  | "unexpected";

/** The known error kinds. */
export declare const ERROR_KINDS: readonly ErrorKind[];

/** Default time (ms) a transport that matches replies by id waits for one. */
export declare const DEFAULT_TIMEOUT_MS: number;

/** One call to the native side. */
export interface BridgeRequest {
  /** Correlation id, echoed in the response. */
  id?: string | number;
  op: "get" | "set" | "remove" | "allKeys";
  key?: string;
  value?: unknown;
}

/** The error of an error response. */
export interface BridgeErrorBody {
  kind: ErrorKind | string;
  message: string;
  temporary?: boolean;
}

/** The native side's answer. */
export type BridgeResponse =
  | { id?: string | number; ok: true; value?: unknown }
  | { id?: string | number; ok: false; error: BridgeErrorBody };

/** Sends one request and resolves its response (an object, or its JSON text). */
export type Transport = (request: BridgeRequest) => Promise<BridgeResponse | string>;

/** What a bridge cache rejects with. Its message never holds a token or a value. */
export declare class BridgeError extends Error {
  constructor(kind: ErrorKind | string, message: string, options?: { temporary?: boolean; cause?: unknown });
  readonly name: "BridgeError";
  /** The error kind. */
  readonly kind: ErrorKind | string;
  /** Whether the same call may succeed later. */
  readonly temporary: boolean;
}

/** An object for auth0-spa-js's `cache` option (its `ICache`). */
export interface BridgeCache {
  get<T = unknown>(key: string): Promise<T | undefined>;
  set<T = unknown>(key: string, entry: T): Promise<void>;
  remove(key: string): Promise<void>;
  /** Present only when the native side lists keys. */
  allKeys?(): Promise<string[]>;
}

/** Options of createBridgeCache. */
export interface BridgeCacheOptions {
  /** Whether the native side lists keys; when left out, it is asked once. */
  listsKeys?: boolean;
}

/** The cache at once when `listsKeys` is known. */
export declare function createBridgeCache(
  transport: Transport,
  options: BridgeCacheOptions & { listsKeys: boolean },
): BridgeCache;
/** A Promise of the cache after asking the native side once whether it lists keys. */
export declare function createBridgeCache(transport: Transport, options?: BridgeCacheOptions): Promise<BridgeCache>;

/** Asks once: true when `allKeys` works, false when it is `unsupported`. */
export declare function probeListsKeys(transport: Transport): Promise<boolean>;

/** Matches replies that arrive as separate messages to their requests by id. */
export declare function createReplyMatcher(
  post: (request: BridgeRequest & { id: string | number }) => void,
  options?: { timeoutMs?: number },
): {
  transport: Transport;
  receive(data: BridgeResponse | string): void;
  failAll(error: Error): void;
};

/** Tauri: `invoke(command, { request })`. */
export declare function tauriTransport(
  invoke: (command: string, args: { request: BridgeRequest }) => Promise<unknown>,
  options?: { command?: string },
): Transport;

/** A Capacitor-style plugin: `plugin[method]({ request: "<JSON>" })` resolving `{ value }`. */
export declare function capacitorTransport(
  plugin: Record<string, unknown>,
  options?: { method?: string },
): Transport;

/** WKWebView with a WKScriptMessageHandlerWithReply named `handlerName`. */
export declare function webkitTransport(handlerName: string, options?: { window?: unknown }): Transport;

/** Android WebView with addWebMessageListener's object named `listenerObjectName`. */
export declare function androidTransport(
  listenerObjectName: string,
  options?: { window?: unknown; timeoutMs?: number },
): Transport;

/** HTTP (development and tests): POST the request JSON to `url`. */
export declare function fetchTransport(
  url: string,
  options?: { fetch?: typeof fetch; headers?: Record<string, string> },
): Transport;

/** WebSocket (development and tests): JSON text both ways, replies matched by id. */
export declare function webSocketTransport(
  urlOrSocket: string | WebSocket,
  options?: { WebSocket?: typeof WebSocket; timeoutMs?: number },
): Transport;
