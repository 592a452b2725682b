import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFile, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isVerifiable } from '../src/model/digest.js';
import { DirStore } from '../src/store/dir.js';
import { MediaType } from '../src/model/media-types.js';
import { blobFile, buildImage, corruptBlob, rawLayer } from '../testdata/builder.js';
import { check, errorsOf, imageLayout, tempDir } from './verify-fixtures.js';

/** An image of many small layers (a few bytes each), as a layout of 10,000 small blobs is made. */
function manySmallLayers(count: number) {
  const layers = Array.from({ length: count }, (_, i) => rawLayer(`small layer ${i}\n`, MediaType.ociLayerGzip));
  return buildImage({ layers });
}

test('an inventory that reads small blobs lists exactly what a plain one lists, and reads only the small regular blobs asked for', async (t) => {
  const image = manySmallLayers(5);
  const big = rawLayer(Buffer.alloc(200 * 1024, 7), MediaType.ociLayer); // over the read-with-the-listing size
  const dir = await imageLayout(t, { descriptor: image.descriptor, blobs: [...image.blobs, big] });
  const outside = join(await tempDir(t), 'outside');
  await writeFile(outside, 'outside');
  const hex = (c: string) => c.repeat(64);
  await symlink(outside, join(dir, 'blobs', 'sha256', hex('a')));
  execFileSync('mkfifo', [join(dir, 'blobs', 'sha256', hex('b'))]);
  await mkdir(join(dir, 'blobs', 'sha256', hex('c')));
  await writeFile(join(dir, 'blobs', 'sha256', 'not-a-digest'), 'x');
  await writeFile(join(dir, 'blobs', 'sha256', '.ocikit-tmp-1'), 'partial');
  await writeFile(join(dir, 'blobs', 'README'), 'stray');
  await mkdir(join(dir, 'blobs', 'blake3'));
  await writeFile(join(dir, 'blobs', 'blake3', hex('d')), 'not hashed, so not read');
  await symlink(join(dir, 'blobs', 'sha256'), join(dir, 'blobs', 'sha512'));

  const store = new DirStore(dir);
  const reading = await store.inventory({ readUpTo: 64 * 1024, budget: 16 << 20, wanted: isVerifiable });
  assert.deepEqual(reading.map(({ data: _, ...entry }) => entry), await store.inventory());
  const read = new Map(reading.filter((e) => e.data).map((e) => [e.digest, e.data]));
  const small = [...image.blobs].map((b) => b.descriptor.digest).sort();
  assert.deepEqual([...read.keys()].sort(), small, 'only the small sha256 regular files are read');
  for (const b of image.blobs) assert.deepEqual(read.get(b.descriptor.digest), b.bytes);
  const capped = await store.inventory({ readUpTo: 64 * 1024, budget: 1, wanted: isVerifiable });
  assert.equal(capped.filter((e) => e.data).length, 0, 'nothing is read past the budget');
});

test('many small blobs: each is hashed; a flipped byte, a blob longer than its descriptor (never hashed), a symlink and a FIFO are each found', async (t) => {
  const image = manySmallLayers(40);
  const dir = await imageLayout(t, image);
  const layer = (i: number) => image.layers[i]!.descriptor.digest;
  await corruptBlob(dir, layer(3));
  await appendFile(blobFile(dir, layer(5)), 'longer than the descriptor says');
  const outside = join(await tempDir(t), 'outside');
  await writeFile(outside, image.layers[7]!.bytes);
  await rm(blobFile(dir, layer(7)));
  await symlink(outside, blobFile(dir, layer(7)));
  await rm(blobFile(dir, layer(9)));
  execFileSync('mkfifo', [blobFile(dir, layer(9))]);

  const report = await check(dir);
  const about = (rule: string) => report.findings.filter((f) => f.rule === rule).map((f) => f.digest);
  assert.deepEqual(about('blob-digest-mismatch'), [layer(3)], JSON.stringify(report.findings));
  assert.deepEqual(about('blob-size-mismatch'), [layer(5)]);
  assert.deepEqual(about('blob-symlink'), [layer(7)]);
  assert.deepEqual(about('blob-not-regular'), [layer(9)]);
  assert.deepEqual(errorsOf(report), ['blob-digest-mismatch', 'blob-not-regular', 'blob-size-mismatch', 'blob-symlink']);
  assert.equal(report.summary.blobs, image.blobs.length - 3, 'the longer blob, the symlink and the FIFO are not hashed');
  const intact = image.blobs.filter((b) => ![5, 7, 9].some((i) => b.descriptor.digest === layer(i)));
  assert.equal(report.summary.bytes, intact.reduce((sum, b) => sum + b.bytes.length, 0));

  // The same layout verified with --deep reads every layer from its file instead: the same blob findings.
  const deep = await check(dir, { deep: true });
  for (const rule of ['blob-digest-mismatch', 'blob-size-mismatch', 'blob-symlink', 'blob-not-regular']) {
    assert.deepEqual(deep.findings.filter((f) => f.rule === rule), report.findings.filter((f) => f.rule === rule), rule);
  }
});

test('a small document read with the listing is the one the walk checks: a flipped byte in a manifest is a blob-digest-mismatch', async (t) => {
  const image = manySmallLayers(3);
  const dir = await imageLayout(t, image);
  await corruptBlob(dir, image.descriptor.digest);
  const report = await check(dir);
  const f = report.findings.find((x) => x.rule === 'blob-digest-mismatch');
  assert.ok(f, JSON.stringify(report.findings));
  assert.equal(f.digest, image.descriptor.digest);
  assert.equal(report.findings.some((x) => x.rule === 'blob-unreferenced'), false, 'an untrusted manifest makes no blob unreferenced');
});
