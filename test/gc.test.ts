import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LockedError } from '../src/errors.js';
import { gc, type GcResult } from '../src/ops/gc.js';
import { DirWriter } from '../src/store/dir.js';
import { blob, blobFile, buildImage, buildIndex, makeLayer, corruptBlob, hexOf, tagged, truncateBlob, writeLayout, type Blob } from '../testdata/builder.js';
import { checkLayout } from './helpers/layout-check.js';
import { assertCleanError, describeRun, runOcikit, startOcikit, finish } from './helpers/ocikit-process.js';
import { artifact, CONTAINERD_SUBJECT, imageWithExtension, SIGNATURE_TYPE, smallImage, writeReferrerLayout } from './helpers/referrer-layout.js';
import { copyLayout, scratchDir } from './helpers/scratch.js';
import { assertTreeUnchanged, snapshotTree } from './helpers/tree-snapshot.js';

const hasUmoci = spawnSync('umoci', ['--version']).status === 0;
const DEAD_PID = 2147483646;

async function gcJson(layout: string, ...flags: string[]): Promise<GcResult> {
  const r = await runOcikit(['gc', layout, '--json', ...flags]);
  assert.equal(r.code, 0, describeRun(r));
  return JSON.parse(r.stdout) as GcResult;
}

/** Unreachable blobs of known sizes, written straight into the layout. */
async function addOrphans(dir: string, ...contents: string[]): Promise<Blob[]> {
  const orphans = contents.map((c) => blob(c, 'application/octet-stream'));
  for (const o of orphans) await writeFile(blobFile(dir, o.descriptor.digest), o.bytes);
  return orphans;
}

test('gc keeps a blob only an extension descriptor names; umoci gc deletes it', async (t) => {
  const { dir, cleanup } = await scratchDir('gc-ext');
  t.after(cleanup);
  const built = imageWithExtension();
  const spec = { manifests: [tagged(built.manifest.descriptor, 'latest')], blobs: built.blobs };
  const ours = join(dir, 'ocikit');
  const theirs = join(dir, 'umoci');
  await writeLayout(ours, spec);
  await writeLayout(theirs, spec);
  const [orphan] = await addOrphans(ours, 'nobody names me');
  await addOrphans(theirs, 'nobody names me');
  const extension = built.extension.descriptor.digest;

  const result = await gcJson(ours);
  assert.ok(existsSync(blobFile(ours, extension)), 'ocikit gc kept the extension blob');
  assert.ok(!existsSync(blobFile(ours, orphan!.descriptor.digest)), 'ocikit gc removed the orphan');
  assert.deepEqual(result.extensionOnly.map((e) => e.digest), [extension]);
  assert.match(result.extensionOnly[0]!.where, /io\.example\.extension.*compatibility/);
  assert.equal(result.removed.count, 1);
  assert.deepEqual((await checkLayout(ours)).problems, []);
  const human = await runOcikit(['gc', ours, '--dry-run']);
  assert.match(human.stdout, /kept only because of an extension descriptor: sha256:[0-9a-f]{12}/);

  if (!hasUmoci) {
    t.skip('umoci not installed');
    return;
  }
  const u = spawnSync('umoci', ['gc', '--layout', theirs], { encoding: 'utf8' });
  assert.equal(u.status, 0, u.stderr);
  assert.ok(!existsSync(blobFile(theirs, extension)), 'umoci gc deleted the blob only the extension descriptor names');
  assert.ok(existsSync(blobFile(theirs, built.manifest.descriptor.digest)), 'umoci gc kept the manifest itself');
});

test('an extension descriptor in index.json itself (inside a platform object) keeps its blob', async (t) => {
  const { dir, cleanup } = await scratchDir('gc-ext-index');
  t.after(cleanup);
  const image = smallImage('compat');
  const compat = blob('{"compatibilities":["x86-64-v3"]}', 'application/vnd.example.compatibility.v1+json');
  const entry = { ...tagged(image.descriptor, 'latest'), platform: { ...image.descriptor.platform!, 'io.example.compatibility': compat.descriptor } };
  await writeLayout(dir, { manifests: [entry], blobs: [...image.blobs, compat] });
  const result = await gc(dir);
  assert.ok(existsSync(blobFile(dir, compat.descriptor.digest)));
  assert.equal(result.removed.count, 0);
  assert.match(result.extensionOnly[0]!.where, /platform\["io\.example\.compatibility"\]/);
});

test('an extension descriptor inside an image config keeps its blob', async (t) => {
  const { dir, cleanup } = await scratchDir('gc-ext-config');
  t.after(cleanup);
  const extra = blob('{"sbom":"embedded by reference"}', 'application/vnd.example.sbom.v1+json');
  const image = buildImage({ layers: [makeLayer([{ path: 'a', content: 'a' }])], configExtra: { 'io.example.sbom': extra.descriptor } });
  await writeLayout(dir, { manifests: [tagged(image.descriptor, 'latest')], blobs: [...image.blobs, extra] });
  const result = await gc(dir);
  assert.equal(result.removed.count, 0);
  assert.ok(existsSync(blobFile(dir, extra.descriptor.digest)));
  assert.match(result.extensionOnly[0]!.where, /\$\["io\.example\.sbom"\]$/);
});

test('gc removes unreachable blobs and stale temp files, reports bytes, and leaves a live writer\'s temp file', async (t) => {
  const { dir, cleanup } = await scratchDir('gc-orphans');
  t.after(cleanup);
  const layout = await copyLayout('app', join(dir, 'app'));
  const before = await checkLayout(layout);
  const orphans = await addOrphans(layout, 'orphan one', 'orphan number two');
  const staleBlobTemp = join('blobs', 'sha256', `.ocikit-tmp-${DEAD_PID}-0a0b0c-${hexOf(orphans[0]!.descriptor.digest)}`);
  const staleRootTemp = `.ocikit-tmp-${DEAD_PID}-0d0e0f-index.json`;
  const liveTemp = `.ocikit-tmp-${process.pid}-111111-index.json`;
  await writeFile(join(layout, staleBlobTemp), 'half a blob');
  await writeFile(join(layout, staleRootTemp), '{"half":');
  await writeFile(join(layout, liveTemp), 'being written');

  const result = await gcJson(layout);
  assert.equal(result.removed.count, 2);
  assert.equal(result.removed.bytes, 'orphan one'.length + 'orphan number two'.length);
  assert.deepEqual([...result.removed.digests].sort(), orphans.map((o) => o.descriptor.digest).sort());
  assert.equal(result.temps.count, 2);
  assert.equal(result.temps.bytes, 'half a blob'.length + '{"half":'.length);
  assert.equal(result.kept.count, before.blobs);
  for (const o of orphans) assert.ok(!existsSync(blobFile(layout, o.descriptor.digest)));
  assert.ok(!existsSync(join(layout, staleBlobTemp)) && !existsSync(join(layout, staleRootTemp)));
  assert.ok(existsSync(join(layout, liveTemp)), 'a temp file whose process is alive stays');
  const after = await checkLayout(layout);
  assert.deepEqual(after.problems, []);
  assert.equal(after.blobs, before.blobs);

  const again = await gcJson(layout);
  assert.equal(again.removed.count, 0, 'a second gc finds nothing');
});

test('gc --dry-run reports what gc would do and deletes nothing', async (t) => {
  const { dir, cleanup } = await scratchDir('gc-dry');
  t.after(cleanup);
  const layout = await copyLayout('multi', join(dir, 'multi'));
  await addOrphans(layout, 'would go');
  await writeFile(join(layout, `.ocikit-tmp-${DEAD_PID}-aaaaaa-x`), 'stale');
  const snapshot = await snapshotTree(layout);
  const dry = await gcJson(layout, '--dry-run');
  assert.equal(dry.dryRun, true);
  assert.equal(dry.removed.count, 1);
  assert.equal(dry.temps.count, 1);
  const human = await runOcikit(['gc', layout, '--dry-run']);
  assert.match(human.stdout, /^would remove 1 blob \(8 B\) and 1 stale temp file \(5 B\); kept 11 blobs/);
  await assertTreeUnchanged(layout, snapshot, 'gc --dry-run');
  const real = await gcJson(layout);
  assert.deepEqual({ ...real, dryRun: true }, dry, 'the dry run predicted the real run');
});

test('gc refuses and deletes nothing when a reachable document is corrupt, truncated or missing', async (t) => {
  const { dir, cleanup } = await scratchDir('gc-corrupt');
  t.after(cleanup);
  const base = join(dir, 'base');
  await copyLayout('multi', base);
  const index = JSON.parse(await readFile(join(base, 'index.json'), 'utf8'));
  const indexDigest: string = index.manifests[0].digest;
  const inner = JSON.parse(await readFile(blobFile(base, indexDigest), 'utf8'));
  const armManifest: string = inner.manifests[1].digest;
  const armConfig: string = JSON.parse(await readFile(blobFile(base, armManifest), 'utf8')).config.digest;
  const breakages: Array<[string, (layout: string) => Promise<void>, RegExp]> = [
    ['corrupt manifest', (l) => corruptBlob(l, armManifest), /content digest|not valid JSON/],
    ['truncated config', (l) => truncateBlob(l, armConfig, 10), /has 10 bytes/],
    ['missing manifest', (l) => rm(blobFile(l, armManifest)), /missing/],
    ['index.json not JSON', (l) => writeFile(join(l, 'index.json'), '{"manifests": ['), /index\.json.*not valid JSON/],
  ];
  for (const [what, breakIt, message] of breakages) {
    const layout = join(dir, what.replace(/ /g, '-'));
    await copyLayout('multi', layout);
    await breakIt(layout);
    await addOrphans(layout, 'an orphan that must survive a refused gc');
    await writeFile(join(layout, `.ocikit-tmp-${DEAD_PID}-bbbbbb-x`), 'stale');
    const snapshot = await snapshotTree(layout);
    const r = await runOcikit(['gc', layout]);
    assertCleanError(r, [2], message);
    assert.match(r.stderr, /gc deleted nothing/, what);
    await assertTreeUnchanged(layout, snapshot, `gc on a layout with a ${what}`);
    await assert.rejects(gc(layout, { dryRun: true }), /gc deleted nothing/, what);
  }
});

test('gc fails cleanly on a locked layout, waits with --wait, and takes over a stale lock', async (t) => {
  const { dir, cleanup } = await scratchDir('gc-lock');
  t.after(cleanup);
  const layout = await copyLayout('base', join(dir, 'base'));
  const [orphan] = await addOrphans(layout, 'orphan behind a lock');
  const lock = join(layout, '.ocikit-lock');
  await writeFile(lock, `${process.pid} ${hostname()}\n`);
  const snapshot = await snapshotTree(layout);
  const refused = await runOcikit(['gc', layout]);
  assertCleanError(refused, [2], /locked by another ocikit process \(pid \d+\).*--wait/);
  await assertTreeUnchanged(layout, snapshot, 'gc on a locked layout');

  const waiting = startOcikit(['gc', layout, '--wait']);
  await new Promise((r) => setTimeout(r, 400));
  assert.ok(existsSync(blobFile(layout, orphan!.descriptor.digest)), 'gc --wait did not delete while the lock was held');
  await rm(lock);
  const waited = await finish(waiting, ['gc', layout, '--wait']);
  assert.equal(waited.code, 0, describeRun(waited));
  assert.match(waited.stdout, /^removed 1 blob/);
  assert.ok(!existsSync(lock), 'gc released the lock');

  await addOrphans(layout, 'orphan behind a stale lock');
  await writeFile(lock, `${DEAD_PID} ${hostname()}\n`);
  const stale = await gcJson(layout);
  assert.equal(stale.removed.count, 1, 'a lock whose owner is gone is taken over');
});

test('gc and a writer exclude each other through the layout lock', async (t) => {
  const { dir, cleanup } = await scratchDir('gc-writer');
  t.after(cleanup);
  const layout = await copyLayout('base', join(dir, 'base'));
  const writer = await DirWriter.open(layout);
  const added = await writer.putBlob(Buffer.from('written but not yet committed'));
  await assert.rejects(gc(layout), LockedError);
  assert.ok(existsSync(blobFile(layout, added.digest)), 'the writer\'s uncommitted blob survives');
  await writer.abort();
  const result = await gc(layout, { dryRun: true });
  assert.equal(result.removed.count, 0);
});

test('gc keeps referrers in every convention, transitively, and tolerates a subject that is not there', async (t) => {
  const { dir, cleanup } = await scratchDir('gc-referrers');
  t.after(cleanup);
  const layout = join(dir, 'refs');
  const refs = await writeReferrerLayout(layout);
  const lonely = artifact(smallImage('gone').descriptor, SIGNATURE_TYPE, '{"signature":"on an image that is not here"}');
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
  index.manifests.push(lonely.descriptor);
  await writeFile(join(layout, 'index.json'), JSON.stringify(index));
  for (const b of lonely.blobs) await writeFile(blobFile(layout, b.descriptor.digest), b.bytes);
  const [orphan] = await addOrphans(layout, 'orphan among referrers');

  const result = await gc(layout);
  assert.deepEqual(result.removed.digests, [orphan!.descriptor.digest]);
  for (const built of [refs.image, refs.signature, refs.sbom, refs.sbomSignature, refs.other, refs.otherSignature, lonely]) {
    for (const b of built.blobs) assert.ok(existsSync(blobFile(layout, b.descriptor.digest)), `${b.descriptor.mediaType} kept`);
  }
  assert.deepEqual((await checkLayout(layout)).problems, []);
});

test('gc keeps a referrer that only a containerd annotation or a fallback tag lists, with its blobs', async (t) => {
  const { dir, cleanup } = await scratchDir('gc-conventions');
  t.after(cleanup);
  const image = smallImage('plain');
  const noSubject = artifact(undefined, SIGNATURE_TYPE, '{"signature":"linked by annotation only"}');
  const sbom = artifact(image.descriptor, 'application/spdx+json', '{"spdxVersion":"SPDX-2.3"}');
  const fallback = buildIndex({ manifests: [sbom.descriptor], children: sbom.blobs });
  await writeLayout(dir, {
    manifests: [
      tagged(image.descriptor, 'latest'),
      { ...noSubject.descriptor, annotations: { [CONTAINERD_SUBJECT]: image.descriptor.digest } },
      tagged(fallback.descriptor, `sha256-${hexOf(image.descriptor.digest)}`),
    ],
    blobs: [...image.blobs, ...noSubject.blobs, ...fallback.blobs],
  });
  const result = await gc(dir);
  assert.equal(result.removed.count, 0);
  assert.equal(result.kept.count, new Set([...image.blobs, ...noSubject.blobs, ...fallback.blobs].map((b) => b.descriptor.digest)).size);
});

test('gc keeps blobs a Docker 25+ manifest.json names, and refuses an archive', async (t) => {
  const { dir, cleanup } = await scratchDir('gc-docker25');
  t.after(cleanup);
  const image = smallImage('docker25');
  await writeLayout(dir, {
    manifests: [],
    blobs: image.blobs,
    extraFiles: { 'manifest.json': JSON.stringify([{ Config: `blobs/sha256/${hexOf(image.configBlob.descriptor.digest)}`, RepoTags: ['x:1'], Layers: image.layers.map((l) => `blobs/sha256/${hexOf(l.descriptor.digest)}`) }]) },
  });
  const result = await gc(dir);
  assert.deepEqual(result.removed.digests, [image.descriptor.digest], 'only the manifest nothing names goes');
  assert.ok(existsSync(blobFile(dir, image.configBlob.descriptor.digest)));
  const r = await runOcikit(['gc', 'testdata/archives/app.oci.tar']);
  assertCleanError(r, [2], /not an OCI image layout directory/);
});

test('gc leaves entries under blobs/ that are not blobs alone', async (t) => {
  const { dir, cleanup } = await scratchDir('gc-odd');
  t.after(cleanup);
  const layout = await copyLayout('base', join(dir, 'base'));
  await writeFile(join(layout, 'blobs', 'sha256', 'not-a-digest'), 'x');
  await mkdir(join(layout, 'blobs', 'sha256', 'a'.repeat(64)));
  const result = await gc(layout);
  assert.deepEqual(result.ignored.sort(), ['blobs/sha256/' + 'a'.repeat(64), 'blobs/sha256/not-a-digest']);
  assert.ok(existsSync(join(layout, 'blobs', 'sha256', 'not-a-digest')));
});
