/**
 * verify --deep against zstd frames that ask for a huge window (`zstd --long=31`, or a single-segment
 * frame declaring 1 GiB of content): fzstd allocates whatever a frame asks for, so these are refused
 * from the frame header, by every decoder alike, before a byte is decoded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import * as fzstd from 'fzstd';
import { MediaType } from '../src/model/media-types.js';
import { runJob, type JobDeps } from '../src/hash/jobs.js';
import { JobRunner } from '../src/hash/job-runner.js';
import { ZstdFrameReader } from '../src/hash/zstd-frames.js';
import { describe as describeBlob, type Layer } from '../testdata/builder.js';
import { countingPool } from './helpers/hash-threads.js';
import { assertNoCrash, describeRun, runOcikit } from './helpers/ocikit-process.js';
import { imageLayout, smallImage, tempDir } from './verify-fixtures.js';

const hasZstd = spawnSync('sh', ['-c', 'command -v zstd']).status === 0;
const nativeZstd = typeof (zlib as { createZstdDecompress?: unknown }).createZstdDecompress === 'function';
const RLE_BLOCK = 128 * 1024;

/** A zstd frame with the given header (after the magic) holding `bytes` zeros as 128 KiB RLE blocks. */
function rleFrame(header: number[], bytes: number): Buffer {
  const blocks = Math.ceil(bytes / RLE_BLOCK);
  const out = Buffer.alloc(4 + header.length + blocks * 4);
  out.writeUInt32LE(0xfd2fb528, 0);
  Buffer.from(header).copy(out, 4);
  for (let i = 0; i < blocks; i++) {
    const size = Math.min(RLE_BLOCK, bytes - i * RLE_BLOCK);
    out.writeUIntLE((size << 3) | (1 << 1) | (i === blocks - 1 ? 1 : 0), 4 + header.length + i * 4, 3);
  }
  return out;
}

const GIB = 2 ** 30;
/** Single segment, 4-byte content size: the window is the content size, 1 GiB (what `zstd --long=31` wrote). */
const singleSegment = () => rleFrame([0xa0, 0, 0, 0, 0x40], GIB);
/** Window_Descriptor exponent 21: a 2 GiB window. */
const longWindow = () => rleFrame([0x00, 21 << 3], 4 * RLE_BLOCK);
/** A small sound frame, then one asking for 2 GiB: every frame is checked, not just the first. */
const secondFrame = () => Buffer.concat([rleFrame([0x00, 7 << 3], 2 * RLE_BLOCK), rleFrame([0x00, 21 << 3], RLE_BLOCK)]);

function depsFor(decoder: 'fzstd' | 'zstd program'): JobDeps {
  const deps: JobDeps = { zlib, progress: () => undefined };
  if (decoder === 'zstd program') deps.zstdProgram = { path: 'zstd', spawn };
  else deps.zstd = fzstd as unknown as JobDeps['zstd'];
  return deps;
}

const decoders = ['fzstd' as const, ...(hasZstd ? ['zstd program' as const] : [])];
const bombs: Array<[string, () => Buffer, number]> = [
  ['a single-segment frame of 1 GiB', singleSegment, GIB],
  ['a --long=31 window', longWindow, 2 * GIB],
  ['a huge window in the second frame', secondFrame, 2 * GIB],
];

for (const decoder of decoders) {
  for (const [what, bomb, window] of bombs) {
    test(`${decoder}: ${what} is refused from its header, fast and in flat memory`, async (t) => {
      if (nativeZstd) return t.skip('this runtime decodes zstd with zlib');
      const file = join(await tempDir(t), 'layer.zst');
      await writeFile(file, bomb());
      const rss = process.memoryUsage().rss;
      const started = performance.now();
      const job = { kind: 'deep' as const, source: { file, offset: 0, length: null, noFollow: true }, algorithm: 'sha256' as const, maxLayerBytes: 64 * GIB, checkTar: true };
      const result = await runJob(job, depsFor(decoder));
      const seconds = (performance.now() - started) / 1000;
      assert.equal(result.deep?.decompressError, `zstd window of ${window} bytes is over the 128 MiB limit`, JSON.stringify(result));
      assert.ok(seconds < 5, `${seconds.toFixed(2)} s`);
      assert.ok(process.memoryUsage().rss - rss < 200 * 2 ** 20, `RSS grew by ${((process.memoryUsage().rss - rss) / 2 ** 20).toFixed(0)} MiB`);
    });
  }
}

test('a zstd layer whose media type does not say so is decoded on a hashing thread, and window-checked there too', async (t) => {
  if (nativeZstd) return t.skip('this runtime decodes zstd with zlib');
  const dir = await tempDir(t);
  const bomb = join(dir, 'bomb'), sound = join(dir, 'sound');
  await writeFile(bomb, longWindow());
  await writeFile(sound, rleFrame([0x00, 7 << 3], 2 * RLE_BLOCK));
  const { threads, answered } = countingPool();
  const runner = new JobRunner({ jobs: 2, workersOnly: true }, threads);
  t.after(() => runner.close());
  const deep = (file: string) => ({ job: { kind: 'deep' as const, source: { file, offset: 0, length: null, noFollow: true }, algorithm: 'sha256', maxLayerBytes: 64 * GIB, checkTar: false }, size: 10 << 20 });
  const [refused, decoded] = await runner.run([deep(bomb), deep(sound)]);
  assert.equal(answered(), 2, 'both ran on workers');
  assert.equal(refused!.deep?.decompressError, `zstd window of ${2 * GIB} bytes is over the 128 MiB limit`, JSON.stringify(refused));
  assert.deepEqual(decoded!.deep, { compression: 'zstd', uncompressedBytes: 2 * RLE_BLOCK, diffId: `sha256:${crypto.createHash('sha256').update(Buffer.alloc(2 * RLE_BLOCK)).digest('hex')}` });
});

test('the frame reader passes windows up to 128 MiB and real zstd output', () => {
  const reader = new ZstdFrameReader();
  const frame = rleFrame([0x00, 17 << 3], 3 * RLE_BLOCK); // exactly 2^27
  for (let i = 0; i < frame.length; i += 3) reader.push(frame.subarray(i, i + 3)); // headers split across chunks
  assert.throws(() => new ZstdFrameReader().push(rleFrame([0x00, (17 << 3) | 1], RLE_BLOCK)), /zstd window of 150994944 bytes is over the 128 MiB limit/);
  if (!hasZstd) return;
  const input = crypto.randomBytes(3 << 20);
  const real = spawnSync('zstd', ['-c', '-q', '--long=27', '-19'], { input, maxBuffer: 1 << 26 });
  assert.equal(real.status, 0);
  new ZstdFrameReader().push(real.stdout);
});

test('verify --deep on a 37 KB layer asking for a 1 GiB window: one decompress finding, exit 1, within seconds', async (t) => {
  const bytes = singleSegment();
  const layer: Layer = { tar: Buffer.alloc(0), bytes, compression: 'zstd', diffId: `sha256:${'0'.repeat(64)}`, descriptor: describeBlob(bytes, MediaType.ociLayerZstd) };
  const dir = await imageLayout(t, smallImage({ layers: [layer], configExtra: { rootfs: { type: 'layers', diff_ids: [layer.diffId] } } }));
  // An empty PATH hides the zstd program, so the fzstd fallback decodes.
  for (const env of [{ PATH: '' }, ...(hasZstd ? [{}] : [])]) {
    const started = performance.now();
    const r = await runOcikit(['verify', '--deep', dir], { env, timeoutMs: 30_000 });
    assertNoCrash(r);
    assert.equal(r.code, 1, describeRun(r));
    assert.match(r.stdout, /zstd window of 1073741824 bytes is over the 128 MiB limit/, describeRun(r));
    assert.ok(performance.now() - started < 10_000, `${JSON.stringify(env)}: ${(performance.now() - started).toFixed(0)} ms`);
  }
});
