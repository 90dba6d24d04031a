// node --test: the harness drives the real package, and bench.mjs keeps its JSON contract.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { VERSION, runScenario } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const P = '@@auth0spajs@@';
const API = 'https://api.test';

const entry = (scope, at, expiresIn, rt) => ({
  client_id: 'app',
  audience: API,
  scope,
  access_token: at,
  expires_in: expiresIn,
  ...(rt ? { refresh_token: rt } : {}),
});
const get = (scope, extra = {}) => ({ op: 'get', clientId: 'app', audience: API, scope, leeway: 0, useMrrt: false, ...extra });

test('the installed package is the pinned one', () => {
  const pinned = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8')).dependencies['@auth0/auth0-spa-js'];
  assert.equal(pinned, '2.28.3');
  assert.equal(VERSION, pinned);
});

test('runScenario: subset lookup, expiry with a refresh token, miss', async () => {
  const out = await runScenario({
    mode: 'allKeys',
    startMs: 1_700_000_000_400,
    clientId: 'app',
    ops: [
      { op: 'set', entry: entry('openid read write', 'at-1', 60, 'rt-1') },
      get('write openid'),
      { op: 'advance', seconds: 61 },
      get('read'),
      get('admin'),
      { op: 'refreshTokensByAudience', audience: API, clientId: 'app' },
    ],
  });
  assert.equal(out.version, VERSION);
  assert.equal(out.results.length, 6);
  assert.equal(out.results[0], null);
  assert.equal(out.results[1].access_token, 'at-1');
  assert.equal(out.results[2], null);
  assert.deepEqual(out.results[3], { refresh_token: 'rt-1', audience: API, scope: 'openid read write' });
  assert.equal(out.results[4], null);
  assert.deepEqual(out.results[5], ['rt-1']);
  // The entry was cut down to its refresh token, expiresAt kept (floor(now / 1000) + 60).
  assert.deepEqual(out.store, {
    [`${P}::app::${API}::openid read write`]: {
      body: { refresh_token: 'rt-1', audience: API, scope: 'openid read write' },
      expiresAt: 1_700_000_060,
    },
  });
});

test('runScenario: manifest mode keeps a key manifest under the client id', async () => {
  const out = await runScenario({
    mode: 'manifest',
    startMs: 1_700_000_000_000,
    clientId: 'app',
    ops: [
      { op: 'set', entry: entry('openid', 'at-1', 3600) },
      { op: 'setIdToken', clientId: 'app', idToken: 'idt', decodedToken: { claims: { __raw: 'idt' }, user: { sub: 'u' } } },
      { op: 'getIdToken', clientId: 'app', audience: null, scope: null },
    ],
  });
  assert.deepEqual(out.store[`${P}::app`], { keys: [`${P}::app::${API}::openid`, `${P}::app::@@user@@`] });
  assert.deepEqual(out.results[2], { id_token: 'idt', decodedToken: { claims: { __raw: 'idt' }, user: { sub: 'u' } } });
  assert.deepEqual(Object.keys(out.store), Object.keys(out.store).sort());
});

test('runScenario: a throwing call is a result, an unknown op rejects', async () => {
  const out = await runScenario({
    mode: 'allKeys',
    startMs: 0,
    ops: [
      { op: 'set', entry: null },
      { op: 'get', clientId: 'app', audience: API, scope: 'openid', leeway: 0, useMrrt: true, cacheMode: null },
    ],
  });
  assert.equal(typeof out.results[0].error, 'string');
  assert.equal(out.results[1], null);
  assert.deepEqual(out.store, {});
  await assert.rejects(runScenario({ mode: 'allKeys', ops: [{ op: 'frobnicate' }] }), /unknown op/);
  await assert.rejects(runScenario({ mode: 'sometimes', ops: [] }), /unknown mode/);
});

test('bench.mjs --json prints one well-formed report with every op', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [join(here, 'bench.mjs'), '--json', '--sizes', '10', '--runs', '1', '--target-ms', '5'],
    { cwd: here },
  );
  const report = JSON.parse(stdout); // exactly one JSON value on stdout
  assert.deepEqual(Object.keys(report), ['package', 'version', 'node', 'cpu', 'date', 'results']);
  assert.equal(report.package, '@auth0/auth0-spa-js');
  assert.equal(report.version, '2.28.3');
  assert.equal(report.node, process.version);
  assert.equal(typeof report.cpu, 'string');
  assert.equal(new Date(report.date).toISOString(), report.date);
  assert.deepEqual(
    report.results.map((r) => r.op),
    ['exact_hit', 'subset', 'miss', 'set', 'clear', 'all_keys'],
  );
  for (const r of report.results) {
    assert.deepEqual(Object.keys(r), ['op', 'others', 'ns_per_op']);
    assert.equal(r.others, 10);
    assert.ok(Number.isFinite(r.ns_per_op) && r.ns_per_op > 0, `${r.op}: ${r.ns_per_op}`);
  }
});
