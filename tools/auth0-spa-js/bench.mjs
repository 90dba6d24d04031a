#!/usr/bin/env node
// Times the real @auth0/auth0-spa-js CacheManager over the package's own InMemoryCache
// (which lists its keys, so no key manifest is involved), with the data shapes of
// tokencache's own benchmarks (benches/src/lib.rs), so the numbers compare.
//
//   node bench.mjs [--sizes 10,100,1000,10000] [--runs 7] [--target-ms 150] [--json | --md]
//
// Data: one client, "bench-client"; N other entries at audiences https://other-<i>.test
// with scope "openid profile email", and one target entry at https://api.test with
// scope "openid profile email read write"; every entry has an access token at-<tag>, a
// refresh token rt-<tag>, token_type Bearer and expires_in 86400. The clock stands still,
// so nothing expires.
//
// Workloads, each with N other keys for every N of --sizes:
//   exact_hit  get(the target's exact key)
//   subset     get(scope "read openid"): the exact key misses, the target is found by
//              scope among the client's keys
//   miss       get(audience https://absent.test, scope "openid"): nothing matches
//   set        set() overwriting one fixed key (scope "openid bench-set") with a fresh entry
//   clear      clear("bench-client") of the N others and the target; the cache is refilled
//              before every call, outside the timed part
//   all_keys   allKeys() of the InMemoryCache itself (what a lookup by scope lists)
//
// Every call is awaited, as a caller of the async API must. A cell is calibrated to last
// about --target-ms, warmed up once, then timed --runs times; the median ns/op is reported.
//
// Output: progress on stderr; on stdout a plain table, a Markdown table (--md), or
// exactly one JSON object (--json):
//   {"package","version","node","cpu","date","results":[{"op","others","ns_per_op"}, ...]}

import os from 'node:os';
import { CacheKey, InMemoryCache, PACKAGE, VERSION, cacheManagerOf } from './lib.mjs';

const OPS = ['exact_hit', 'subset', 'miss', 'set', 'clear', 'all_keys'];

function parseArgs(argv) {
  const opts = { sizes: [10, 100, 1000, 10000], runs: 7, targetMs: 150, format: 'text' };
  const value = (i, name) => {
    if (i >= argv.length) throw new Error(`${name} needs a value`);
    return argv[i];
  };
  const positive = (text, name) => {
    const n = Number(text);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not ${JSON.stringify(text)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--sizes') {
      opts.sizes = value(++i, a).split(',').map((s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 0) throw new Error(`--sizes takes whole numbers, not ${JSON.stringify(s)}`);
        return n;
      });
    } else if (a === '--runs') opts.runs = Math.round(positive(value(++i, a), a));
    else if (a === '--target-ms') opts.targetMs = positive(value(++i, a), a);
    else if (a === '--json') opts.format = 'json';
    else if (a === '--md') opts.format = 'md';
    else throw new Error(`unknown argument ${JSON.stringify(a)}`);
  }
  return opts;
}

// ---- data --------------------------------------------------------------------------

const CLIENT = 'bench-client';
const NOW_MS = Date.now();
const TARGET = { audience: 'https://api.test', scope: 'openid profile email read write' };
const SUBSET_SCOPE = 'read openid';
const MISS = { audience: 'https://absent.test', scope: 'openid' };
const SET_SCOPE = 'openid bench-set';
const OTHER_SCOPE = 'openid profile email';

const entry = (audience, scope, tag) => ({
  client_id: CLIENT,
  audience,
  scope,
  access_token: `at-${tag}`,
  refresh_token: `rt-${tag}`,
  token_type: 'Bearer',
  expires_in: 86400,
});

async function populate(manager, others) {
  for (let i = 0; i < others; i++) await manager.set(entry(`https://other-${i}.test`, OTHER_SCOPE, i));
  await manager.set(entry(TARGET.audience, TARGET.scope, 'target'));
}

// A manager over a fresh InMemoryCache holding `others` other entries and the target.
async function prepared(others) {
  const cache = new InMemoryCache().enclosedCache;
  const manager = cacheManagerOf(cache, { clientId: CLIENT, now: () => NOW_MS });
  if (manager.keyManifest) throw new Error('the InMemoryCache lists its keys: no key manifest expected');
  await populate(manager, others);
  return { manager, cache };
}

const key = (audience, scope) => new CacheKey({ clientId: CLIENT, audience, scope });

// The workload `op` with `others` other keys: `call(i)` is the timed operation; `reset`,
// when present, runs untimed before every call.
async function workload(op, others) {
  const { manager, cache } = await prepared(others);
  const lookup = (k, wanted) => ({
    call: () => manager.get(k),
    check: async () => {
      const got = (await manager.get(k))?.access_token;
      if (got !== wanted) throw new Error(`${op} with ${others} others found ${got} instead of ${wanted}`);
    },
  });
  switch (op) {
    case 'exact_hit':
      return lookup(key(TARGET.audience, TARGET.scope), 'at-target');
    case 'subset':
      return lookup(key(TARGET.audience, SUBSET_SCOPE), 'at-target');
    case 'miss':
      return lookup(key(MISS.audience, MISS.scope), undefined);
    case 'set':
      return { call: (i) => manager.set(entry(TARGET.audience, SET_SCOPE, i)), check: async () => {} };
    case 'clear':
      return {
        call: () => manager.clear(CLIENT),
        reset: () => populate(manager, others),
        check: async () => {
          await manager.clear(CLIENT);
          const left = await manager.get(key(TARGET.audience, TARGET.scope));
          if (left !== undefined) throw new Error('clear left the target entry');
          await populate(manager, others);
        },
      };
    case 'all_keys':
      return {
        call: () => cache.allKeys(),
        check: async () => {
          const listed = (await cache.allKeys()).length;
          if (listed <= others) throw new Error(`all_keys with ${others} others listed ${listed} keys`);
        },
      };
    default:
      throw new Error(`unknown workload ${op}`);
  }
}

// ---- timing ------------------------------------------------------------------------

const clockNs = () => process.hrtime.bigint();

// Nanoseconds spent in `iterations` calls (only in the calls, for a workload with reset).
async function timed(w, iterations, first) {
  if (w.reset) {
    let spent = 0n;
    for (let i = 0; i < iterations; i++) {
      await w.reset();
      const t0 = clockNs();
      await w.call(first + i);
      spent += clockNs() - t0;
    }
    return Number(spent);
  }
  const t0 = clockNs();
  for (let i = 0; i < iterations; i++) await w.call(first + i);
  return Number(clockNs() - t0);
}

// Median ns/op over `runs` timed batches of about `targetMs` each.
async function measure(w, { runs, targetMs }) {
  const target = targetMs * 1e6;
  let iterations = 1;
  let done = 0;
  for (;;) {
    const ns = await timed(w, iterations, done);
    done += iterations;
    if (ns >= target / 8 || iterations >= 1 << 24) {
      iterations = Math.max(1, Math.round((iterations * target) / Math.max(ns, 1)));
      break;
    }
    iterations *= 4;
  }
  await timed(w, iterations, done); // warm-up at full size
  done += iterations;
  const perOp = [];
  for (let r = 0; r < runs; r++) {
    perOp.push((await timed(w, iterations, done)) / iterations);
    done += iterations;
  }
  perOp.sort((a, b) => a - b);
  return perOp[(perOp.length - 1) >> 1];
}

// ---- output ------------------------------------------------------------------------

const human = (ns) => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e4 ? `${(ns / 1e3).toFixed(1)} µs` : `${Math.round(ns)} ns`);

function table(report, sizes, markdown) {
  const header = ['op \\ other keys', ...sizes.map(String)];
  const rows = OPS.map((op) => [
    op,
    ...sizes.map((n) => human(report.results.find((r) => r.op === op && r.others === n).ns_per_op)),
  ]);
  const lines = [
    `${report.package} ${report.version}, Node ${report.node}, ${report.cpu}, ${report.date}`,
    'median time per call',
    '',
  ];
  if (markdown) {
    const line = (cells) => `| ${cells.join(' | ')} |`;
    lines.push(line(header), line(header.map(() => '---')), ...rows.map(line));
  } else {
    const width = header.map((_, c) => Math.max(...[header, ...rows].map((r) => r[c].length)));
    const line = (cells) => cells.map((s, c) => (c === 0 ? s.padEnd(width[c]) : s.padStart(width[c]))).join('  ');
    lines.push(line(header), ...rows.map(line));
  }
  return lines.join('\n');
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${e.message}\nusage: node bench.mjs [--sizes 10,100,1000,10000] [--runs 7] [--target-ms 150] [--json | --md]\n`);
    process.exit(2);
  }
  const results = [];
  for (const op of OPS) {
    for (const others of opts.sizes) {
      const w = await workload(op, others);
      await w.check();
      const ns = await measure(w, opts);
      results.push({ op, others, ns_per_op: Math.round(ns * 10) / 10 });
      process.stderr.write(`${op} with ${others} other keys: ${human(ns)}\n`);
    }
  }
  const report = {
    package: PACKAGE,
    version: VERSION,
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    date: new Date().toISOString(),
    results,
  };
  if (opts.format === 'json') process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(`${table(report, opts.sizes, opts.format === 'md')}\n`);
}

await main();
