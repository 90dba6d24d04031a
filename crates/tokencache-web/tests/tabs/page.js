// One tab of the three-tab refresh test: loads the example's wasm module (examples/tabs.rs,
// built with wasm-bindgen --target web and served at /pkg/) and exposes it on `window.tabs`
// for driver.mjs. Nothing here decides whether the test passes.
import init, { exchanges, seed, stampede, uses_web_locks } from "/pkg/tabs.js";

const status = document.getElementById("status");
const show = (text) => {
  status.textContent = text;
};

let running = null;

async function start() {
  await init({ module_or_path: "/pkg/tabs_bg.wasm" });
  window.tabs = {
    ready: true,
    webLocks: uses_web_locks(),
    seed(refreshToken, expiresIn) {
      return seed(refreshToken, expiresIn);
    },
    // Starts `tasks` concurrent get_or_refresh calls at `startAtMs` (Date.now() time), so
    // that the tabs begin together; the driver collects the report with `result()`.
    start(idpUrl, tasks, startAtMs) {
      if (running) throw new Error("this tab already started its calls");
      running = (async () => {
        const wait = startAtMs - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        show(`running ${tasks} calls`);
        const report = await stampede(idpUrl, tasks);
        show(`done: ${report.accessTokens.length} calls, ${report.errors.length} errors`);
        return report;
      })();
      // The driver awaits it later; keep a failure from being reported as unhandled now.
      running.catch(() => {});
      return true;
    },
    result() {
      if (!running) throw new Error("this tab did not start its calls");
      return running;
    },
    exchanges() {
      return exchanges();
    },
    // Every localStorage item, raw: what the tabs share.
    storage() {
      return Object.fromEntries(Object.keys(localStorage).map((k) => [k, localStorage.getItem(k)]));
    },
  };
  show("ready");
}

start().catch((e) => {
  window.tabs = { ready: false, error: String(e) };
  show(`failed: ${e}`);
});
