#!/usr/bin/env node
// Runs scenario documents through the REAL @auth0/auth0-spa-js CacheManager.
//
//   node run.mjs [path to tools/auth0-spa-js/lib.mjs]  < scenarios.json  > results.json
//
// stdin: a JSON array of scenario documents (the format of runScenario in
// tools/auth0-spa-js/lib.mjs, the repository's harness); stdout: a JSON array of
// {version, results, store}, one per document, in order. One process runs every
// document, so the package loads once. Used by tests/differential/js.rs, which passes
// the harness's lib.mjs after installing its package.

import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Default: the harness of this repository (its node_modules must be installed).
const here = dirname(fileURLToPath(import.meta.url));
const [libPath = resolve(here, '../../../../tools/auth0-spa-js/lib.mjs')] = process.argv.slice(2);
const { runScenario } = await import(pathToFileURL(libPath).href);

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const docs = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const out = [];
for (const doc of docs) out.push(await runScenario(doc));
process.stdout.write(JSON.stringify(out));
