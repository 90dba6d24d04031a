// The test page: the real Auth0Client from @auth0/auth0-spa-js, whose `cache` is the
// tokencache bridge (js/tokencache-bridge of the repository) over HTTP to the Rust test
// server, which is also the authorization server. The driver (driver.mjs) calls the
// functions on `window.e2e`; nothing here decides whether the test passes.
import { Auth0Client } from "/vendor/auth0-spa-js.production.esm.js";
import { createBridgeCache, fetchTransport } from "/js/tokencache-bridge/index.js";

const status = document.getElementById("status");
const show = (text) => {
  status.textContent = text;
};

async function start() {
  // What the native side says about itself (BridgeHandler::lists_keys and the client).
  const config = await (await fetch("/e2e/config.json", { cache: "no-store" })).json();
  // No `listsKeys` option: the bridge cache asks the native side once (an `allKeys` probe).
  const cache = await createBridgeCache(fetchTransport(new URL("/tokencache", location.origin).href));
  // The test moves this clock forward instead of waiting for the access token to expire.
  let clockOffsetMs = 0;
  const client = new Auth0Client({
    domain: config.domain,
    clientId: config.clientId,
    cache,
    useRefreshTokens: true,
    authorizationParams: {
      redirect_uri: config.redirectUri,
      audience: config.audience,
      scope: config.scope,
    },
    nowProvider: () => Date.now() + clockOffsetMs,
  });
  const browserStorage = () => ({
    localStorage: Object.keys(localStorage),
    sessionStorage: Object.keys(sessionStorage),
  });
  window.e2e = {
    config,
    cacheHasAllKeys: typeof cache.allKeys === "function",
    browserStorage,
    login() {
      show("redirecting to /authorize");
      // Navigates away (after the driver's call returned); the driver waits for the
      // redirect back.
      setTimeout(() => client.loginWithRedirect().catch((e) => show(`login failed: ${e}`)), 0);
    },
    async callback() {
      const result = await client.handleRedirectCallback();
      history.replaceState({}, "", location.pathname);
      show("logged in");
      return { appState: result.appState ?? null, url: location.href };
    },
    async getToken() {
      return client.getTokenSilently();
    },
    async cachedToken() {
      return (await client.getTokenSilently({ cacheMode: "cache-only" })) ?? null;
    },
    // The token native code stored for another API (found by scope subset).
    async nativeToken() {
      const token = await client.getTokenSilently({
        cacheMode: "cache-only",
        authorizationParams: { audience: config.nativeAudience, scope: config.nativeScope },
      });
      return token ?? null;
    },
    advanceClock(ms) {
      clockOffsetMs += ms;
      return clockOffsetMs;
    },
    async getUser() {
      return (await client.getUser()) ?? null;
    },
    async isAuthenticated() {
      return client.isAuthenticated();
    },
    logout() {
      show("logging out");
      // Clears the cache, then navigates to /v2/logout, which returns to the page.
      setTimeout(
        () =>
          client
            .logout({ logoutParams: { returnTo: `${config.redirectUri}?logged_out=1` } })
            .catch((e) => show(`logout failed: ${e}`)),
        0,
      );
    },
    ready: true,
  };
  show("ready");
}

start().catch((e) => {
  window.e2e = { ready: false, error: String(e && e.stack ? e.stack : e) };
  show(`failed: ${e}`);
});
