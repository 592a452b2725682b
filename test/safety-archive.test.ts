/**
 * The archive store against inputs built to cost it: tens of thousands of repeated entry names, and
 * paths that are not regular files. Each must end fast, with one clear OcikitError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readTree } from '../testdata/builder.js';
import { plainEntries, rawEntry, tarOf } from './helpers/hostile-tar.js';
import { assertCleanError, runOcikit } from './helpers/ocikit-process.js';
import { layoutFixture, scratchDir } from './helpers/scratch.js';

const { dir: root, cleanup } = await scratchDir('safety-archive');
test.after(cleanup);

const appEntries = plainEntries(await readTree(layoutFixture('app')));

test('20,000 names repeated with the same content are checked in seconds, not minutes', async () => {
  // Each repeated name used to filter every entry and open the file once per copy: 40,000 names took 110 s.
  const names = Array.from({ length: 20_000 }, (_, i) => `extra/f${i}`);
  const copy = names.map((name) => rawEntry({ name, data: name }));
  const archive = join(root, 'dups.tar');
  await writeFile(archive, tarOf(...appEntries, ...copy, ...copy));
  const started = Date.now();
  const r = await runOcikit(['inspect', archive], { timeoutMs: 60_000 });
  const seconds = (Date.now() - started) / 1000;
  assert.equal(r.code, 0, r.stderr);
  assert.ok(seconds < 6, `inspect took ${seconds.toFixed(1)} s`);

  const differing = join(root, 'dups-differ.tar');
  await writeFile(differing, tarOf(...appEntries, ...copy, ...copy.slice(0, -1), rawEntry({ name: names.at(-1)!, data: 'other!' })));
  assertCleanError(await runOcikit(['inspect', differing], { timeoutMs: 60_000 }), [2], /duplicate entry "extra\/f19999" with different content/);
});
