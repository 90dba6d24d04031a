// Drives the test page in headless Chromium with playwright-core, for tests/e2e.rs.
//
//   node driver.mjs BASE_URL
//
// Protocol with the Rust test (one JSON object per line):
// - stdout: {"step": NAME, "data": {...}} at each checkpoint, then the driver waits;
//   {"step": "done"} at the end; {"step": "error", "message": ...} on any failure.
// - stdin: the line "continue" after the test checked a checkpoint; anything else, or the
//   end of stdin, stops the driver (it closes the browser and exits 1).
//
// Every wait is bounded; the whole run is bounded by TOTAL_TIMEOUT_MS.
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const STEP_TIMEOUT_MS = 20_000;
const TOTAL_TIMEOUT_MS = 120_000;
const CHROMIUM = process.env.TOKENCACHE_E2E_CHROMIUM || "/usr/bin/chromium";

const base = process.argv[2];
if (!base || !/^http:\/\/127\.0\.0\.1:\d+$/.test(base)) {
  console.error("usage: node driver.mjs http://127.0.0.1:PORT");
  process.exit(2);
}
const pageUrl = `${base}/e2e/index.html`;

const emit = (step, data = {}) => process.stdout.write(`${JSON.stringify({ step, data })}\n`);

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function checkpoint(step, data) {
  emit(step, data);
  const next = await lines.next();
  if (next.done || next.value.trim() !== "continue") {
    throw new Error(`the test stopped the driver after step ${step}`);
  }
}

let browser;
async function main() {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: STEP_TIMEOUT_MS,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
  });
  const context = await browser.newContext();
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  const pageErrors = [];
  page.on("console", (msg) => console.error(`[page ${msg.type()}] ${msg.text()}`));
  page.on("pageerror", (err) => {
    pageErrors.push(String(err));
    console.error(`[page error] ${err}`);
  });
  // Only the test server is reachable: any other request is a failure.
  await context.route("**/*", (route) => {
    if (route.request().url().startsWith(`${base}/`)) return route.continue();
    pageErrors.push(`request outside the test server: ${route.request().url()}`);
    return route.abort();
  });

  const ready = async () => {
    await page.waitForFunction(() => window.e2e && ("ready" in window.e2e), null, {
      timeout: STEP_TIMEOUT_MS,
    });
    const state = await page.evaluate(() => ({ ready: window.e2e.ready, error: window.e2e.error }));
    if (!state.ready) throw new Error(`the page failed to start: ${state.error}`);
  };
  const call = (name, arg) => page.evaluate(([n, a]) => window.e2e[n](a), [name, arg]);
  const storage = () => call("browserStorage");

  // 1. The page starts: the bridge cache probed the native side.
  await page.goto(pageUrl, { waitUntil: "load" });
  await ready();
  await checkpoint("started", {
    cacheHasAllKeys: await page.evaluate(() => window.e2e.cacheHasAllKeys),
    secureContext: await page.evaluate(() => window.isSecureContext),
    storage: await storage(),
  });

  // 2. loginWithRedirect -> /authorize -> back to the page with a code.
  const back = page.waitForURL((url) => url.searchParams.has("code"), { timeout: STEP_TIMEOUT_MS });
  await call("login");
  await back;
  await page.waitForLoadState("load");
  const redirectedTo = page.url();
  await ready();
  const callback = await call("callback");
  await checkpoint("logged_in", { redirectedTo, callback, storage: await storage() });

  // 3. getTokenSilently: from the cache, no call to /oauth/token.
  const cached = await call("getToken");
  await checkpoint("cached", { token: cached });

  // 4. The clock moves past the access token's expiry: getTokenSilently refreshes with the
  //    cached refresh token; a second call is served from the cache again.
  const offset = await call("advanceClock", 10 * 60 * 1000);
  const refreshed = await call("getToken");
  const again = await call("getToken");
  await checkpoint("refreshed", { offsetMs: offset, token: refreshed, again });

  // 5. getUser reads the ID token from the cache.
  const user = await call("getUser");
  await checkpoint("user", { user });

  // 6. A reload: a new Auth0Client with nothing in memory finds the session in the native
  //    store, and the token that native code stored meanwhile for another API.
  await page.reload({ waitUntil: "load" });
  await ready();
  const afterReload = {
    token: await call("cachedToken"),
    nativeToken: await call("nativeToken"),
    authenticated: await call("isAuthenticated"),
    user: await call("getUser"),
    storage: await storage(),
  };
  await checkpoint("reloaded", afterReload);

  // 7. logout clears the cache, then goes to /v2/logout, which returns to the page.
  const out = page.waitForURL((url) => url.searchParams.has("logged_out"), { timeout: STEP_TIMEOUT_MS });
  await call("logout");
  await out;
  await page.waitForLoadState("load");
  await ready();
  await checkpoint("logged_out", {
    token: await call("cachedToken"),
    authenticated: await call("isAuthenticated"),
    user: await call("getUser"),
    storage: await storage(),
    pageErrors,
  });

  await browser.close();
  browser = undefined;
  emit("done");
}

const deadline = setTimeout(() => {
  emit("error", { message: `the driver took longer than ${TOTAL_TIMEOUT_MS} ms` });
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

main()
  .then(() => {
    clearTimeout(deadline);
    process.exit(0);
  })
  .catch(async (e) => {
    emit("error", { message: String(e && e.stack ? e.stack : e) });
    try {
      if (browser) await browser.close();
    } catch {
      // The browser is gone already.
    }
    process.exit(1);
  });
