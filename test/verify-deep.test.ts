import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import * as zlib from 'node:zlib';
import { MediaType } from '../src/model/media-types.js';
import { runJob, type BlobJob } from '../src/hash/jobs.js';
import { createTarChecker } from '../src/ops/verify/layer-check.js';
import { JobRunner } from '../src/hash/job-runner.js';
import { checkContents } from '../src/ops/verify/contents.js';
import { Findings } from '../src/ops/verify/findings.js';
import { countingPool } from './helpers/hash-threads.js';
import { describe as describeBlob, gzip, layerFromTar, makeLayer, makeTar, sampleImages, type Layer, type TarFile } from '../testdata/builder.js';
import { check, errorsOf, imageLayout, rulesOf, smallImage, tempDir } from './verify-fixtures.js';

const hasTool = (name: string) => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;

/** An image whose only layer is `layer`, with a config whose diff_id matches unless told otherwise. */
function imageWith(layer: Layer, diffId = layer.diffId) {
  return smallImage({ layers: [layer], configExtra: { rootfs: { type: 'layers', diff_ids: [diffId] } } });
}

async function deepRules(t: Parameters<typeof tempDir>[0], layer: Layer, diffId?: string, options = {}) {
  const report = await check(await imageLayout(t, imageWith(layer, diffId)), { deep: true, ...options });
  return report;
}

test('diff_id mismatch is found by --deep only, where the config says it', async (t) => {
  const layer = makeLayer([{ path: 'a.txt', content: 'a\n' }]);
  const wrong = `sha256:${'0'.repeat(64)}`;
  const dir = await imageLayout(t, imageWith(layer, wrong));
  assert.deepEqual(errorsOf(await check(dir)), []);
  const report = await check(dir, { deep: true });
  assert.deepEqual(errorsOf(report), ['config-diffid-mismatch']);
  const f = report.findings[0]!;
  assert.equal(f.jsonPath, '$.rootfs.diff_ids[0]');
  assert.match(f.message, new RegExp(layer.diffId));
});

/** Both zstd decoders: the bundled pure-JS one, and the zstd program on PATH where there is one. */
const ZSTD_DECODERS = [{ name: 'fzstd', zstdProgram: false as const }, ...(hasTool('zstd') ? [{ name: 'zstd program', zstdProgram: undefined }] : [])];

test('zstd and uncompressed layers: diff_ids verified, mismatches found (fixture zstd uses raw blocks)', async (t) => {
  const { zstd } = sampleImages();
  for (const { name, zstdProgram } of ZSTD_DECODERS) {
    assert.deepEqual(rulesOf(await check(await imageLayout(t, zstd), { deep: true, zstdProgram })), [], name);
  }
  for (const compression of ['zstd', 'none'] as const) {
    const layer = makeLayer([{ path: 'z.txt', content: 'z\n'.repeat(100) }], compression);
    for (const { name, zstdProgram } of ZSTD_DECODERS) {
      assert.deepEqual(errorsOf(await deepRules(t, layer, undefined, { zstdProgram })), [], `${compression} ${name}`);
      const mismatch = await deepRules(t, layer, makeLayer([{ path: 'other' }]).diffId, { zstdProgram });
      assert.deepEqual(errorsOf(mismatch), ['config-diffid-mismatch'], `${compression} ${name}`);
    }
  }
});

test('a layer compressed by the real zstd tool (compressed blocks, checksum) verifies; a corrupt one fails to decompress', async (t) => {
  if (!hasTool('zstd')) return t.skip('zstd not installed');
  const dir = await tempDir(t);
  const files: TarFile[] = Array.from({ length: 40 }, (_, i) => ({ path: `d/f${i}.txt`, content: `line ${i}\n`.repeat(500 + i * 37) }));
  const tar = makeTar(files);
  await writeFile(join(dir, 'layer.tar'), tar);
  assert.equal(spawnSync('zstd', ['-q', '-19', '--check', join(dir, 'layer.tar'), '-o', join(dir, 'layer.zst')]).status, 0);
  const zst = await readFile(join(dir, 'layer.zst'));
  const layer: Layer = { tar, bytes: zst, compression: 'zstd', diffId: describeBlob(tar, 'x').digest, descriptor: describeBlob(zst, MediaType.ociLayerZstd) };
  const corrupt = Buffer.from(zst.subarray(0, Math.floor(zst.length * 0.6)));
  const broken: Layer = { ...layer, bytes: corrupt, descriptor: describeBlob(corrupt, MediaType.ociLayerZstd) };
  const flipped = Buffer.from(zst);
  flipped[Math.floor(flipped.length / 2)]! ^= 0xff;
  const garbled: Layer = { ...layer, bytes: flipped, descriptor: describeBlob(flipped, MediaType.ociLayerZstd) };
  for (const { name, zstdProgram } of ZSTD_DECODERS) {
    assert.deepEqual(rulesOf(await deepRules(t, layer, undefined, { zstdProgram })), [], name);
    const report = await deepRules(t, broken, undefined, { zstdProgram });
    assert.deepEqual(errorsOf(report), ['layer-decompress-failed'], name);
    assert.doesNotMatch(report.findings[0]!.message, /\n/, name);
    // fzstd does not check the frame checksum; the wrong output still shows as a diff_id mismatch.
    const wrong = errorsOf(await deepRules(t, garbled, undefined, { zstdProgram }));
    assert.ok(wrong.includes('layer-decompress-failed') || wrong.includes('config-diffid-mismatch'), `${name}: ${wrong}`);
  }
  // The option really routes zstd layers through the program: one that cannot start fails the layer.
  assert.deepEqual(errorsOf(await deepRules(t, layer, undefined, { zstdProgram: '/nonexistent/zstd' })), ['layer-decompress-failed']);
});

test('compression is told by magic bytes, not the media type', async (t) => {
  const plain = makeLayer([{ path: 'p.txt', content: 'p\n' }], 'none', { mediaType: MediaType.ociLayerGzip });
  const report = await deepRules(t, plain);
  assert.deepEqual(rulesOf(report), ['layer-compression-mismatch']);
  assert.equal(report.findings[0]!.jsonPath, '$.layers[0]');
});

test('corrupt gzip: layer-decompress-failed; inflating past --max-layer-bytes: layer-too-large', async (t) => {
  const good = makeLayer([{ path: 'big.txt', content: 'x'.repeat(100_000) }]);
  const cut = good.bytes.subarray(0, good.bytes.length - 12);
  const truncated: Layer = { ...good, bytes: cut, descriptor: describeBlob(cut, MediaType.ociLayerGzip) };
  assert.deepEqual(errorsOf(await deepRules(t, truncated)), ['layer-decompress-failed']);
  assert.deepEqual(errorsOf(await deepRules(t, good, undefined, { maxLayerBytes: 4096 })), ['layer-too-large']);
});

test('tar structure: invalid, truncated, no end marker, trailing garbage', async (t) => {
  const tar = makeTar([{ path: 'a.txt', content: 'a'.repeat(3000) }, { path: 'b.txt', content: 'b' }]);
  const cases: Array<[string, Buffer]> = [
    ['layer-tar-invalid', randomBytes(4096)],
    ['layer-tar-truncated', tar.subarray(0, 1500)],
    ['layer-tar-no-end-marker', tar.subarray(0, tar.length - 1024)],
    ['layer-tar-trailing-garbage', Buffer.concat([tar, Buffer.from('garbage after the end')])],
  ];
  for (const [rule, bytes] of cases) {
    const report = await deepRules(t, layerFromTar(bytes, 'gzip'));
    assert.deepEqual(rulesOf(report), [rule], `${rule}: ${JSON.stringify(report.findings)}`);
    assert.match(report.findings[0]!.path, /^blobs\/sha256\//);
  }
});

test('tar entries: absolute paths, "..", duplicates, whiteouts', async (t) => {
  const cases: Array<[string, TarFile[]]> = [
    ['layer-tar-absolute-path', [{ path: '/etc/passwd', content: 'x' }]],
    ['layer-tar-path-traversal', [{ path: 'a/../../etc/passwd', content: 'x' }]],
    ['layer-tar-path-traversal', [{ path: 'a', content: 'x' }, { path: 'link', type: 'hardlink', linkname: '../a' }]],
    ['layer-tar-duplicate-path', [{ path: 'a.txt', content: '1' }, { path: './a.txt', content: '2' }]],
    ['layer-whiteout-invalid', [{ path: 'd/.wh.gone', content: 'not empty' }]],
    ['layer-whiteout-invalid', [{ path: '.wh..wh..opq', type: 'dir' }]],
    ['layer-whiteout-bare', [{ path: 'd/.wh.' }]],
  ];
  for (const [rule, files] of cases) {
    const report = await deepRules(t, makeLayer(files, 'gzip', { sort: false }));
    assert.deepEqual(rulesOf(report), [rule], `${rule}: ${JSON.stringify(report.findings)}`);
  }
  const { whiteouts } = sampleImages();
  assert.deepEqual(rulesOf(await check(await imageLayout(t, whiteouts), { deep: true })), [], 'valid whiteouts and opaque markers pass');
});

test('the tar checker reads PAX and GNU long names and sizes, in chunks of any size', async (t) => {
  if (!hasTool('tar')) return t.skip('tar not installed');
  const dir = await tempDir(t);
  const long = `${'d'.repeat(120)}/${'f'.repeat(150)}-ü.txt`;
  await mkdir(join(dir, 'tree', 'd'.repeat(120)), { recursive: true });
  await writeFile(join(dir, 'tree', long), 'long name\n'.repeat(100));
  await writeFile(join(dir, 'tree', '.wh.removed'), '');
  for (const format of ['gnu', 'pax', 'ustar']) {
    if (format === 'ustar') continue; // ustar cannot hold the long name; gnu and pax are what images use
    const out = join(dir, `${format}.tar`);
    assert.equal(spawnSync('tar', [`--format=${format}`, '-cf', out, '-C', join(dir, 'tree'), '.']).status, 0);
    const bytes = await readFile(out);
    for (const chunk of [1, 7, 511, 512, 4096, bytes.length]) {
      const checker = createTarChecker();
      for (let i = 0; i < bytes.length; i += chunk) checker.push(bytes.subarray(i, i + chunk));
      const report = checker.end();
      assert.deepEqual(report.issues, [], `${format} in ${chunk}-byte chunks`);
      assert.equal(report.entries, 4, `${format}: ./, the dir, the long file, the whiteout`);
    }
  }
});

test('the tar checker caps what it lists and counts the rest', () => {
  const files: TarFile[] = Array.from({ length: 80 }, (_, i) => ({ path: `/abs/${i}` }));
  const checker = createTarChecker(10);
  checker.push(makeTar(files));
  const report = checker.end();
  assert.equal(report.issues.length, 10);
  assert.equal(report.dropped, 70);
});

test('the worker threads run the same jobs as the main thread, with the same answers', async (t) => {
  const dir = await tempDir(t);
  const layer = makeLayer([{ path: 'w.bin', content: randomBytes(300_000) }]);
  const plain = randomBytes(5 * 1024 * 1024 + 17);
  await writeFile(join(dir, 'layer'), layer.bytes);
  await writeFile(join(dir, 'plain'), plain);
  const jobs: Array<{ job: BlobJob; size: number }> = [
    { job: { kind: 'hash', source: { file: join(dir, 'plain'), offset: 0, length: null, noFollow: true }, algorithm: 'sha256' }, size: plain.length },
    { job: { kind: 'hash', source: { file: join(dir, 'plain'), offset: 100, length: 1000, noFollow: false }, algorithm: 'sha512' }, size: 1000 },
    { job: { kind: 'deep', source: { file: join(dir, 'layer'), offset: 0, length: null, noFollow: true }, algorithm: 'sha256', maxLayerBytes: 1e9, checkTar: true }, size: layer.bytes.length },
    { job: { kind: 'hash', source: { file: join(dir, 'missing'), offset: 0, length: null, noFollow: true }, algorithm: 'sha256' }, size: 0 },
  ];
  const { threads, answered } = countingPool();
  const pool = new JobRunner({ jobs: 2, workersOnly: true }, threads);
  t.after(() => pool.close());
  const results = await pool.run(jobs);
  assert.ok(answered() > 0, 'a worker ran the jobs');
  assert.equal(results[0]!.digest, `sha256:${createHash('sha256').update(plain).digest('hex')}`);
  assert.equal(results[1]!.digest, `sha512:${createHash('sha512').update(plain.subarray(100, 1100)).digest('hex')}`);
  assert.equal(results[2]!.digest, layer.descriptor.digest);
  assert.equal(results[2]!.deep!.diffId, layer.diffId);
  assert.equal(results[2]!.deep!.compression, 'gzip');
  assert.deepEqual(results[2]!.deep!.tar!.issues, []);
  assert.match(results[3]!.error!, /vanished|no such file/);
  assert.equal(pool.progress(), plain.length + 1000 + layer.bytes.length);
  const inline = await runJob(jobs[2]!.job, { zlib, progress: () => undefined });
  assert.deepEqual(inline, results[2]);
});

test('memory stays flat: a layer is streamed, never held (64 MiB of zeros through gzip and the tar checker)', async (t) => {
  const dir = await tempDir(t);
  const zeros = Buffer.alloc(64 * 1024 * 1024);
  const tar = Buffer.concat([makeTar([{ path: 'z', content: zeros }])]);
  const compressed = gzip(tar);
  const layer: Layer = { tar, bytes: compressed, compression: 'gzip', diffId: describeBlob(tar, 'x').digest, descriptor: describeBlob(compressed, MediaType.ociLayerGzip) };
  await writeFile(join(dir, 'layer'), compressed);
  const before = process.memoryUsage().arrayBuffers;
  const result = await runJob({ kind: 'deep', source: { file: join(dir, 'layer'), offset: 0, length: null, noFollow: true }, algorithm: 'sha256', maxLayerBytes: 1e12, checkTar: true },
    { zlib, progress: () => undefined });
  assert.equal(result.deep!.diffId, layer.diffId);
  assert.ok(process.memoryUsage().arrayBuffers - before < 48 * 1024 * 1024, 'the 64 MiB layer was not buffered whole');
});

test('a blob that cannot be read while hashing: blob-unreadable, and the run goes on', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'present'), 'present');
  const digest = `sha256:${createHash('sha256').update('present').digest('hex')}`;
  const planned: Parameters<typeof checkContents>[0] = [
    { digest: `sha256:${'1'.repeat(64)}`, size: 5, job: { kind: 'hash', source: { file: join(dir, 'gone'), offset: 0, length: null, noFollow: true }, algorithm: 'sha256' }, loc: { path: 'blobs/sha256/111', chain: [] } },
    { digest, size: 7, job: { kind: 'hash', source: { file: join(dir, 'present'), offset: 0, length: null, noFollow: true }, algorithm: 'sha256' }, loc: { path: 'blobs/sha256/present', chain: [] } },
  ];
  const pool = new JobRunner({ jobs: 1 });
  t.after(() => pool.close());
  const findings = new Findings();
  const stats = await checkContents(planned, pool, findings);
  assert.deepEqual(findings.list.map((f) => [f.rule, f.path]), [['blob-unreadable', 'blobs/sha256/111']]);
  assert.equal(stats.bytes, 7);
});
