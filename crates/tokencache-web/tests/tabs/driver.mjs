// Drives the tabs of the three-tab refresh test in headless Chromium with playwright-core,
// for tests/tabs.rs, which decides what to do and checks every answer.
//
//   node driver.mjs BASE_URL IDP_URL
//
// Protocol (one JSON object per line): tests/tabs.rs writes a command on stdin, the driver
// answers on stdout with {"ok": true, "data": ...} or {"ok": false, "error": MESSAGE}; after
// an error, or at the end of stdin, it closes the browser and exits (1 after an error).
// Commands ({"op": NAME, ...}):
//   open {count}            opens `count` more tabs of BASE_URL/tabs/index.html in the one
//                           browser context (so they share localStorage and Web Locks);
//                           answers {tabs: [{index, secureContext, webLocks}]}
//   seed {tab, refreshToken, expiresIn}   stores the test's entry from that tab
//   start {tabs, tasks, delayMs}          each tab starts `tasks` concurrent calls at
//                           the same moment, delayMs from now; answers {startAtMs}
//   results {tabs}          waits for those tabs' reports; answers {reports: [...]}
//   exchanges {tabs}        each tab's exchanges at the provider; answers {exchanges: [[...]]}
//   storage {tab}           that tab's view of localStorage, raw; answers {items}
//   close {tab}             closes that tab; answers {closedAtMs}
//   exit                    closes the browser; the driver exits 0
//
// Every wait is bounded; the whole run is bounded by TOTAL_TIMEOUT_MS. Nothing the tabs
// hold (tokens) is printed: page console lines go to stderr, and the module logs none.
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const STEP_TIMEOUT_MS = 30_000;
const TOTAL_TIMEOUT_MS = 100_000;
const READY_TIMEOUT_MS = 15_000;
const CHROMIUM = process.env.TOKENCACHE_TABS_CHROMIUM || "/usr/bin/chromium";

const [base, idp] = process.argv.slice(2);
const loopback = /^http:\/\/127\.0\.0\.1:\d+$/;
if (!loopback.test(base ?? "") || !loopback.test(idp ?? "")) {
  console.error("usage: node driver.mjs http://127.0.0.1:PORT http://127.0.0.1:IDP_PORT");
  process.exit(2);
}

const reply = (msg) => process.stdout.write(`${JSON.stringify(msg)}\n`);

let browser;
let context;
const tabs = [];
const problems = [];

function tab(index) {
  const page = tabs[index];
  if (!page) throw new Error(`no open tab ${index}`);
  return page;
}

async function open(count) {
  const opened = [];
  for (let n = 0; n < count; n++) {
    const index = tabs.length;
    const page = await context.newPage();
    tabs.push(page);
    page.on("console", (msg) => console.error(`[tab ${index} ${msg.type()}] ${msg.text()}`));
    page.on("pageerror", (err) => {
      problems.push(`tab ${index}: ${err}`);
      console.error(`[tab ${index} error] ${err}`);
    });
    await page.goto(`${base}/tabs/index.html`, { waitUntil: "load" });
    await page.waitForFunction(() => window.tabs && "ready" in window.tabs, null, {
      timeout: READY_TIMEOUT_MS,
    });
    const state = await page.evaluate(() => ({
      ready: window.tabs.ready,
      error: window.tabs.error ?? null,
      webLocks: window.tabs.webLocks ?? false,
      secureContext: window.isSecureContext,
    }));
    if (!state.ready) throw new Error(`tab ${index} failed to start: ${state.error}`);
    opened.push({ index, secureContext: state.secureContext, webLocks: state.webLocks });
  }
  return { tabs: opened };
}

const commands = {
  open: ({ count }) => open(count),
  async seed({ tab: i, refreshToken, expiresIn }) {
    await tab(i).evaluate(([rt, s]) => window.tabs.seed(rt, s), [refreshToken, expiresIn]);
    return {};
  },
  async start({ tabs: which, tasks, delayMs }) {
    const startAtMs = Date.now() + delayMs;
    for (const i of which) {
      await tab(i).evaluate(([u, n, at]) => window.tabs.start(u, n, at), [idp, tasks, startAtMs]);
    }
    return { startAtMs };
  },
  async results({ tabs: which }) {
    const reports = await Promise.all(which.map((i) => tab(i).evaluate(() => window.tabs.result())));
    return { reports };
  },
  async exchanges({ tabs: which }) {
    const all = [];
    for (const i of which) all.push(await tab(i).evaluate(() => window.tabs.exchanges()));
    return { exchanges: all };
  },
  async storage({ tab: i }) {
    return { items: await tab(i).evaluate(() => window.tabs.storage()) };
  },
  async close({ tab: i }) {
    await tab(i).close();
    tabs[i] = null;
    return { closedAtMs: Date.now() };
  },
};

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
  context = await browser.newContext();
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  // Only the page server and the provider are reachable: any other request is a failure.
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(`${base}/`) || url.startsWith(`${idp}/`)) return route.continue();
    problems.push(`request outside the test servers: ${url}`);
    return route.abort();
  });

  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const { op, ...args } = JSON.parse(line);
    if (op === "exit") break;
    const command = commands[op];
    if (!command) throw new Error(`unknown command ${op}`);
    const data = await command(args);
    if (problems.length) throw new Error(`page problems: ${problems.join("; ")}`);
    reply({ ok: true, data });
  }
  await browser.close();
  browser = undefined;
}

const deadline = setTimeout(() => {
  reply({ ok: false, error: `the driver took longer than ${TOTAL_TIMEOUT_MS} ms` });
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

main()
  .then(() => {
    clearTimeout(deadline);
    process.exit(0);
  })
  .catch(async (e) => {
    reply({ ok: false, error: String(e && e.stack ? e.stack : e) });
    try {
      if (browser) await browser.close();
    } catch {
      // The browser is gone already.
    }
    process.exit(1);
  });
