/** gc at scale (2,000 images, 10,000 blobs) and the synchronous document reads that make it fast. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { GcResult } from '../src/ops/gc.js';
import { blob, blobFile, buildImage, rawLayer, tagged, writeLayout, type Blob } from '../testdata/builder.js';
import { assertCleanError, describeRun, runOcikit } from './helpers/ocikit-process.js';
import { smallImage } from './helpers/referrer-layout.js';
import { scratchDir } from './helpers/scratch.js';
import { assertTreeUnchanged, snapshotTree } from './helpers/tree-snapshot.js';

test('gc refuses a FIFO where a manifest should be, without blocking on it, and deletes nothing', async (t) => {
  const { dir, cleanup } = await scratchDir('core-gc');
  t.after(cleanup);
  const image = smallImage('fifo');
  const orphan = blob('orphan', 'application/octet-stream');
  await writeLayout(dir, { manifests: [tagged(image.descriptor, 'latest')], blobs: [...image.blobs, orphan] });
  const manifest = blobFile(dir, image.descriptor.digest);
  await rm(manifest);
  assert.equal(spawnSync('mkfifo', [manifest]).status, 0, 'mkfifo');
  const before = await snapshotTree(dir);
  const r = await runOcikit(['gc', dir], { timeoutMs: 20_000 });
  assertCleanError(r, [2], /not a regular file.*gc deleted nothing/);
  await assertTreeUnchanged(dir, before, 'the layout');
});

test('gc of 2,000 images (10,000 blobs): every image kept, every orphan removed', async (t) => {
  const { dir, cleanup } = await scratchDir('core-gc');
  t.after(cleanup);
  const images = Array.from({ length: 2000 }, (_, i) => buildImage({
    layers: [0, 1, 2].map((j) => rawLayer(`l${i}-${j}\n`, 'application/vnd.oci.image.layer.v1.tar')), config: { Labels: { n: String(i) } },
  }));
  const orphans: Blob[] = Array.from({ length: 200 }, (_, i) => blob(`orphan ${i}\n`, 'application/octet-stream'));
  await writeLayout(dir, { manifests: images.map((im, i) => tagged(im.descriptor, `t${i}`)), blobs: [...images.flatMap((im) => im.blobs), ...orphans] });
  const started = process.hrtime.bigint();
  const r = await runOcikit(['gc', '--json', dir]);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  assert.equal(r.code, 0, describeRun(r));
  const result = JSON.parse(r.stdout) as GcResult;
  assert.equal(result.kept.count, 10_000);
  assert.deepEqual(result.removed.digests.sort(), orphans.map((o) => o.descriptor.digest).sort());
  t.diagnostic(`gc of ${result.kept.count + result.removed.count} blobs, ${result.documents} documents: ${seconds.toFixed(2)} s (target < 1 s on an idle machine; bench/ measures it)`);
  const again = await runOcikit(['gc', '--json', join(dir)]);
  assert.equal((JSON.parse(again.stdout) as GcResult).removed.count, 0);
});
