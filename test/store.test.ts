import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, open, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ArchiveStore } from '../src/store/archive.js';
import { DirStore, DirWriter, isLayoutDir } from '../src/store/dir.js';
import { describeError, OcikitError, withPath } from '../src/errors.js';
import { openStore, openWriter } from '../src/store/open.js';
import { parseReference } from '../src/store/reference.js';
import { looksLikeTar, scanTar } from '../src/store/tar-format.js';
import { resolveTarget, imagesOf } from '../src/ops/resolve.js';
import { loadImage } from '../src/ops/image.js';
import { archiveFixture, copyLayout, layoutFixture, scratchDir } from './helpers/scratch.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('the three forms of the app image resolve to the same config and layers', async () => {
  const dir = await openStore(layoutFixture('app'));
  const oci = await openStore(archiveFixture('app.oci.tar'));
  const legacy = await openStore(archiveFixture('app.docker.tar'));
  const docker25 = await openStore(archiveFixture('app.docker25.tar'));
  assert.equal(dir.kind, 'oci');
  assert.equal(oci.kind, 'oci-archive');
  assert.equal(legacy.kind, 'docker-archive');
  assert.equal(docker25.kind, 'docker-archive');
  const configOf = async (s: typeof dir, tag?: string) => {
    const target = await resolveTarget(s, tag ? { tag } : undefined);
    return loadImage(s, target.descriptor);
  };
  const reference = await configOf(dir, 'latest');
  assert.equal((await configOf(oci, 'latest')).manifest.value.config.digest, reference.manifest.value.config.digest);
  for (const s of [legacy, docker25]) {
    const image = await configOf(s, 'example.com/app:latest');
    assert.equal(image.manifest.value.config.digest, reference.manifest.value.config.digest);
    // docker save keeps uncompressed layers: their digests are the diff_ids
    assert.deepEqual(image.manifest.value.layers.map((l) => l.digest), reference.config.value.rootfs.diff_ids);
    for (const layer of image.manifest.value.layers) assert.equal(sha256(await s.readBlob(layer.digest)), layer.digest);
  }
});

test('an archive is read by entry offsets: opening and inspecting reads no layer bytes', async () => {
  const store = await ArchiveStore.open(archiveFixture('app.oci.tar'));
  const reads: number[] = [];
  const probe = await open(archiveFixture('app.oci.tar'));
  const FileHandle = probe.constructor as { prototype: { read: (...args: unknown[]) => unknown } };
  await probe.close();
  const original = FileHandle.prototype.read;
  FileHandle.prototype.read = function (this: unknown, ...args: unknown[]) {
    reads.push(typeof args[2] === 'number' ? args[2] : -1);
    return original.apply(this, args);
  };
  try {
    const target = await resolveTarget(store, { tag: 'latest' });
    const image = await loadImage(store, target.descriptor);
    const layerBytes = image.manifest.value.layers.reduce((n, l) => n + l.size, 0);
    assert.ok(layerBytes > 0);
    const bytesRead = reads.reduce((a, b) => a + Math.max(b, 0), 0);
    assert.ok(bytesRead <= target.descriptor.size + image.manifest.value.config.size, `read ${bytesRead} bytes for documents only`);
  } finally {
    FileHandle.prototype.read = original;
  }
});

test('a tag naming two different digests is ambiguous; an unknown tag lists the tags there', async () => {
  const { dir, cleanup } = await scratchDir('store');
  try {
    const layout = await copyLayout('base', join(dir, 'base'));
    const indexPath = join(layout, 'index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8'));
    index.manifests.push({ ...index.manifests[0], digest: `sha256:${'b'.repeat(64)}` });
    await writeFile(indexPath, JSON.stringify(index));
    const store = new DirStore(layout);
    await assert.rejects(resolveTarget(store, { tag: '1.0' }), /tag 1.0 is ambiguous/);
    await assert.rejects(resolveTarget(store, { tag: 'nope' }), /no image tagged nope; tags here: 1.0/);
  } finally {
    await cleanup();
  }
});

test('platform images of an index skip attestations; nested indexes are followed', async () => {
  const multi = new DirStore(layoutFixture('multi'));
  const images = await imagesOf(multi, await resolveTarget(multi, undefined));
  assert.deepEqual(images.map((i) => `${i.descriptor.platform?.os}/${i.descriptor.platform?.architecture}`), ['linux/amd64', 'linux/arm64']);
  const nested = new DirStore(layoutFixture('nested'));
  const deep = await imagesOf(nested, await resolveTarget(nested, { tag: 'nested' }));
  assert.equal(deep.length, 1);
  assert.equal(deep[0]!.path.length, 3);
});

test('a writer that aborts leaves the layout as it was; one that commits swaps index.json whole', async () => {
  const { dir, cleanup } = await scratchDir('store');
  try {
    const layout = await copyLayout('base', join(dir, 'base'));
    const before = await readFile(join(layout, 'index.json'));
    const writer = await DirWriter.open(layout);
    const blob = await writer.putBlob(Buffer.from('{"hello":"world"}'));
    await writer.abort();
    await assert.rejects(stat(join(layout, 'blobs/sha256', blob.digest.slice(7))), /ENOENT/);
    assert.deepEqual(await readFile(join(layout, 'index.json')), before);
    const again = await DirWriter.open(layout);
    await again.putBlob(Buffer.from('{"hello":"world"}'));
    await again.commit(Buffer.from('{"schemaVersion":2,"manifests":[]}'));
    assert.equal(await readFile(join(layout, 'index.json'), 'utf8'), '{"schemaVersion":2,"manifests":[]}');
    await stat(join(layout, 'blobs/sha256', blob.digest.slice(7)));
    await assert.rejects(stat(join(layout, '.ocikit-lock')), /ENOENT/);
  } finally {
    await cleanup();
  }
});

test('a directory that is not a layout is refused for writing, and nothing is created in it', async () => {
  const { dir, cleanup } = await scratchDir('store');
  try {
    await writeFile(join(dir, 'precious.txt'), 'keep');
    await assert.rejects(DirWriter.open(dir, { create: true }), /not an OCI image layout; refusing/);
    assert.deepEqual(await readdir(dir), ['precious.txt']);
  } finally {
    await cleanup();
  }
});

/** The library's boundary: every failure a caller can provoke is an OcikitError naming the caller's path. */
async function rejectsClean(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof OcikitError, `an OcikitError, not ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    assert.match(err.message, message);
    assert.doesNotMatch(err.message, /\.ocikit-tmp-/, 'no temp file name');
    return true;
  });
}

test('ArchiveStore.open of a directory, a missing path or a FIFO is an OcikitError, at once', async (t) => {
  const { dir, cleanup } = await scratchDir('store');
  t.after(cleanup);
  await rejectsClean(ArchiveStore.open(layoutFixture('app')), /app: not a tar file \(a directory\)/);
  await rejectsClean(ArchiveStore.open(join(dir, 'missing.tar')), /missing\.tar: no such file/);
  const fifo = join(dir, 'p.tar');
  execFileSync('mkfifo', [fifo]);
  await rejectsClean(ArchiveStore.open(fifo), /p\.tar: not a tar file \(not a regular file\)/);
  // Below the store, too: opening a FIFO for reading would wait for a writer forever.
  await rejectsClean(scanTar(fifo), /p\.tar: not a regular file/);
  assert.equal(await looksLikeTar(fifo), false);
});

test('openWriter for an archive in a missing directory names that path and creates nothing', async (t) => {
  const { dir, cleanup } = await scratchDir('store');
  t.after(cleanup);
  await rejectsClean(openWriter(parseReference(`oci-archive:${join(dir, 'no/such/x.tar')}`)), new RegExp(`x\\.tar: no such directory ${join(dir, 'no/such')}`));
  await writeFile(join(dir, 'file'), '');
  await rejectsClean(openWriter(parseReference(`oci-archive:${join(dir, 'file/x.tar')}`)), /file is not a directory/);
  assert.deepEqual(await readdir(dir), ['file']);
});

test('ArchiveWriter.commit refuses an index that is not an image index, and writes nothing', async (t) => {
  const { dir, cleanup } = await scratchDir('store');
  t.after(cleanup);
  const target = join(dir, 'x.tar');
  const writer = await openWriter(parseReference(`oci-archive:${target}`));
  await rejectsClean(writer.commit(Buffer.from('{}')), /x\.tar:index\.json: \$\.schemaVersion: expected number|x\.tar:index\.json: \$\.manifests/);
  await writer.abort();
  assert.deepEqual(await readdir(dir), [], 'no archive, no lock, no temp file');
});

test('a rewritten index.json keeps its mode and owner', async (t) => {
  const { dir, cleanup } = await scratchDir('store');
  t.after(cleanup);
  const layout = await copyLayout('base', join(dir, 'base'));
  const index = join(layout, 'index.json');
  await chmod(index, 0o640);
  if (process.getuid?.() === 0) await chown(index, 4321, 4322);
  const writer = await DirWriter.open(layout);
  await writer.commit(Buffer.from('{"schemaVersion":2,"manifests":[]}'));
  const info = await stat(index);
  assert.equal(info.mode & 0o777, 0o640);
  if (process.getuid?.() === 0) assert.deepEqual([info.uid, info.gid], [4321, 4322]);
});

test('system errors name the file the user asked for, never a temp file', () => {
  const err = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES', path: '/data/layout/.ocikit-tmp-123-0a1b2c-index.json' });
  assert.equal(describeError(err), 'permission denied: /data/layout/index.json');
  const nospc = withPath(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }), '/data/x.tar');
  assert.equal(describeError(nospc), 'no space left on device: /data/x.tar');
});

test('DirStore.openBlob of a directory or a FIFO is an OcikitError, before any read', async (t) => {
  const { dir, cleanup } = await scratchDir('store');
  t.after(cleanup);
  const layout = await copyLayout('app', join(dir, 'app'));
  const store = new DirStore(layout);
  const asDir = `sha256:${'b'.repeat(64)}` as const;
  const asFifo = `sha256:${'c'.repeat(64)}` as const;
  await mkdir(join(layout, 'blobs', 'sha256', 'b'.repeat(64)));
  execFileSync('mkfifo', [join(layout, 'blobs', 'sha256', 'c'.repeat(64))]);
  for (const digest of [asDir, asFifo]) await rejectsClean(store.openBlob(digest), /blob is not a regular file/);
});

test('DirWriter.commit refuses an index that is not an image index; the layout is unchanged', async (t) => {
  const { dir, cleanup } = await scratchDir('store');
  t.after(cleanup);
  const layout = await copyLayout('base', join(dir, 'base'));
  const before = await readFile(join(layout, 'index.json'));
  const writer = await DirWriter.open(layout);
  await rejectsClean(writer.commit(Buffer.from('{"manifests":{}}')), /index\.json: \$\.(schemaVersion|manifests)/);
  await writer.abort();
  assert.deepEqual(await readFile(join(layout, 'index.json')), before);
  await assert.rejects(stat(join(layout, '.ocikit-lock')), /ENOENT/);
});

test('a directory whose oci-layout is a symlink is not a layout', async (t) => {
  const { dir, cleanup } = await scratchDir('store');
  t.after(cleanup);
  const layout = join(dir, 'fake');
  await mkdir(layout);
  await symlink(join(layoutFixture('app'), 'oci-layout'), join(layout, 'oci-layout'));
  assert.equal(await isLayoutDir(layout), false);
  assert.equal(await isLayoutDir(layoutFixture('app')), true);
});
