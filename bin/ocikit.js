#!/usr/bin/env node
// Loads the bundled CLI through V8's code cache: compiling the bundle is most of a metadata
// command's start-up time, and Node 20 has no compile cache of its own. A stale or foreign cache is
// rejected by V8 and the bundle is simply compiled as usual.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const bundle = join(dist, 'cli.cjs');
const cacheFile = join(dist, 'cli.code-cache');
let cachedData;
try {
  cachedData = readFileSync(cacheFile);
} catch {
  // no cache yet: compile normally
}
const script = new Script(Module.wrap(readFileSync(bundle, 'utf8')), { filename: bundle, cachedData });
const module = { exports: {} };
script.runInThisContext().call(module.exports, module.exports, createRequire(bundle), module, bundle, dist);
if (process.env.OCIKIT_WRITE_CODE_CACHE) {
  process.on('exit', () => writeFileSync(cacheFile, script.createCachedData()));
}
