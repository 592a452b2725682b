/** --max-layer-bytes stops a decompression bomb at once, whichever decoder inflates it. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import * as zlib from 'node:zlib';
import * as fzstd from 'fzstd';
import { runJob, type JobDeps } from '../src/hash/jobs.js';
import { MediaType } from '../src/model/media-types.js';
import { describe as describeBlob, type Layer } from '../testdata/builder.js';
import { check, errorsOf, gzipBomb, imageLayout, smallImage, tempDir, zstdRleBomb } from './verify-fixtures.js';

const LIMIT = 10 * 1024 * 1024;
const hasZstd = spawnSync('sh', ['-c', 'command -v zstd']).status === 0;

/** Deps whose decoders count every byte they put out, so a test sees how far inflation went. */
function countingDeps(decoder: 'gzip' | 'zstd program' | 'fzstd'): { deps: JobDeps; produced: () => number } {
  let produced = 0;
  const count = (chunk: Uint8Array) => (produced += chunk.length);
  const deps: JobDeps = { zlib, progress: () => undefined };
  if (decoder === 'gzip') {
    deps.zlib = { ...zlib, createGunzip: (options?: zlib.ZlibOptions) => zlib.createGunzip(options).on('data', count) } as typeof zlib;
  } else if (decoder === 'zstd program') {
    const counted = ((...args: Parameters<typeof spawn>) => {
      const child = spawn(...args);
      child.stdout!.on('data', count);
      return child;
    }) as typeof spawn;
    deps.zstdProgram = { path: 'zstd', spawn: counted };
  } else {
    const Decompress = function (ondata: (chunk: Uint8Array, final?: boolean) => unknown) {
      return new fzstd.Decompress((chunk, final) => {
        count(chunk);
        ondata(chunk, final);
      });
    };
    deps.zstd = { Decompress } as unknown as JobDeps['zstd'];
  }
  return { deps, produced: () => produced };
}

const cases = [
  { decoder: 'gzip' as const, bomb: () => gzipBomb(2) },
  ...(hasZstd ? [{ decoder: 'zstd program' as const, bomb: () => zstdRleBomb(20) }] : []),
  { decoder: 'fzstd' as const, bomb: () => zstdRleBomb(20) },
];

for (const { decoder, bomb } of cases) {
  test(`a ${decoder} bomb stops right after --max-layer-bytes`, async (t) => {
    if ((zlib as { createZstdDecompress?: unknown }).createZstdDecompress && decoder !== 'gzip') return t.skip('this runtime decodes zstd with zlib');
    const file = join(await tempDir(t), 'bomb');
    const bytes = bomb();
    await writeFile(file, bytes);
    const { deps, produced } = countingDeps(decoder);
    const started = performance.now();
    const result = await runJob({ kind: 'deep', source: { file, offset: 0, length: null, noFollow: true }, algorithm: 'sha256', maxLayerBytes: LIMIT, checkTar: true }, deps);
    const seconds = (performance.now() - started) / 1000;
    assert.equal(result.deep?.tooLarge, true, JSON.stringify(result));
    assert.equal(result.deep?.decompressError, undefined, 'stopping the decoder is not a decompress failure');
    assert.equal(result.digest, `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`, 'the blob itself is still hashed');
    assert.ok(produced() < LIMIT + 64 * 1024 * 1024, `${decoder} inflated ${produced()} bytes past a ${LIMIT}-byte limit`);
    assert.ok(seconds < 5, `${decoder}: ${seconds.toFixed(2)} s`);
  });
}

test('verify --deep --max-layer-bytes on a 20 GiB zstd bomb layer: layer-too-large within seconds', async (t) => {
  const bytes = zstdRleBomb(20);
  const layer: Layer = { tar: Buffer.alloc(0), bytes, compression: 'zstd', diffId: `sha256:${'0'.repeat(64)}`, descriptor: describeBlob(bytes, MediaType.ociLayerZstd) };
  const dir = await imageLayout(t, smallImage({ layers: [layer], configExtra: { rootfs: { type: 'layers', diff_ids: [layer.diffId] } } }));
  for (const zstdProgram of [undefined, false as const]) {
    const started = performance.now();
    const report = await check(dir, { deep: true, maxLayerBytes: LIMIT, zstdProgram });
    const seconds = (performance.now() - started) / 1000;
    assert.deepEqual(errorsOf(report), ['layer-too-large'], JSON.stringify(report.findings));
    assert.ok(seconds < 5, `${zstdProgram === false ? 'fzstd' : 'zstd program'}: ${seconds.toFixed(2)} s`);
  }
});
