import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Descriptor } from '../src/model/descriptor.js';
import { FileHasher } from '../src/hash/file-hasher.js';
import { countingPool } from './helpers/hash-threads.js';
import { blobFile, corruptBlob } from '../testdata/builder.js';
import { assertCleanError, describeRun, runOcikit } from './helpers/ocikit-process.js';
import { copyLayout, layoutFixture, pseudoRandomBytes, scratchDir, workspace } from './helpers/scratch.js';
import { assertTreeUnchanged, snapshotTree } from './helpers/tree-snapshot.js';

async function layersOf(layout: string, tag: string): Promise<Descriptor[]> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const entry = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag)!;
  return (JSON.parse(await readFile(blobFile(layout, entry.digest), 'utf8')) as { layers: Descriptor[] }).layers;
}

async function ok(args: string[]): Promise<void> {
  const r = await runOcikit(args);
  assert.equal(r.code, 0, describeRun(r));
}

test('the file hasher gives every file its own digest, on the main thread and on a worker at once', async (t) => {
  const { dir, cleanup } = await scratchDir('hasher');
  t.after(cleanup);
  // Two files over the worker threshold, so one of them is hashed on a worker while the main thread takes the other.
  const contents = [pseudoRandomBytes(17 << 20, 1), pseudoRandomBytes(18 << 20, 2), pseudoRandomBytes(3000, 3), Buffer.alloc(0)];
  const handles = await Promise.all(contents.map(async (bytes, i) => {
    await writeFile(join(dir, `f${i}`), bytes);
    return open(join(dir, `f${i}`), 'r');
  }));
  t.after(() => Promise.all(handles.map((h) => h.close())));
  const { threads, answered } = countingPool();
  const hasher = new FileHasher(1, threads);
  for (const algorithm of ['sha256', 'sha512']) {
    const got = await Promise.all(handles.map((h, i) => hasher.hash(h.fd, algorithm, contents[i]!.length)));
    assert.deepEqual(got, contents.map((bytes) => createHash(algorithm).update(bytes).digest('hex')), algorithm);
  }
  assert.ok(answered() >= 2, 'a worker hashed a file each round');
});

test('the file hasher rejects a descriptor it cannot read, on either lane, and goes on hashing', async (t) => {
  const { dir, cleanup } = await scratchDir('hasher-bad');
  t.after(cleanup);
  const hasher = new FileHasher(1);
  const dirHandle = await open(dir, 'r');
  t.after(() => dirHandle.close());
  // The first goes to the main thread; the second, big enough, to a worker while the main thread is busy.
  const outcomes = await Promise.allSettled([hasher.hash(dirHandle.fd, 'sha256', 1 << 30), hasher.hash(dirHandle.fd, 'sha256', 1 << 30)]);
  for (const o of outcomes) assert.match(String(o.status === 'rejected' ? o.reason : 'resolved'), /EISDIR|directory/i);
  await writeFile(join(dir, 'f'), 'abc');
  const fh = await open(join(dir, 'f'), 'r');
  t.after(() => fh.close());
  assert.equal(await hasher.hash(fh.fd, 'sha256', 3), createHash('sha256').update('abc').digest('hex'));
});

test('copy between layouts: a copied blob is a file of its own with the usual mode, whatever the source mode', async (t) => {
  const { dir, cleanup } = await scratchDir('copy-file');
  t.after(cleanup);
  const src = await copyLayout('app', join(dir, 'src'));
  const layers = await layersOf(src, 'latest');
  await chmod(blobFile(src, layers[0]!.digest), 0o600);
  const dest = join(dir, 'dest');
  await ok(['copy', `oci:${src}:latest`, `oci:${dest}:latest`]);
  const umask = process.umask();
  for (const l of layers) {
    const [a, b] = await Promise.all([stat(blobFile(src, l.digest)), stat(blobFile(dest, l.digest))]);
    assert.notEqual(b.ino, a.ino, 'copied, not linked');
    assert.equal(b.mode & 0o777, 0o644 & ~umask);
    assert.deepEqual(await readFile(blobFile(dest, l.digest)), await readFile(blobFile(src, l.digest)));
  }
  await ok(['verify', dest]);
});

test('copy --link shares the source blob files; a source blob that does not match its digest is refused and nothing is left', async (t) => {
  const { dir, cleanup } = await scratchDir('copy-link');
  t.after(cleanup);
  const src = await copyLayout('app', join(dir, 'src'));
  const dest = join(dir, 'dest');
  await ok(['copy', '--link', `oci:${src}:latest`, `oci:${dest}:latest`]);
  for (const l of await layersOf(src, 'latest')) {
    const [a, b] = await Promise.all([stat(blobFile(src, l.digest)), stat(blobFile(dest, l.digest))]);
    assert.equal(b.ino, a.ino, `${l.digest} is the source's file`);
  }
  await ok(['verify', dest]);

  const bad = await copyLayout('app', join(dir, 'bad'));
  const victim = (await layersOf(bad, 'latest'))[2]!.digest;
  await corruptBlob(bad, victim);
  const into = join(dir, 'into');
  await ok(['copy', `oci:${layoutFixture('base')}:1.0`, `oci:${into}`]);
  const snapshot = await snapshotTree(into);
  const r = await runOcikit(['copy', '--link', `oci:${bad}:latest`, `oci:${into}`]);
  assertCleanError(r, [1], /content digest/);
  await assertTreeUnchanged(into, snapshot, 'a refused linked copy');
  assert.equal((await stat(blobFile(bad, victim))).nlink, 1, 'the link made for checking is gone');
});

test('copy --link from another file system copies instead', async (t) => {
  if (!existsSync('/dev/shm')) return t.skip('no /dev/shm');
  const shm = await mkdtemp('/dev/shm/ocikit-link-');
  t.after(() => rm(shm, { recursive: true, force: true }));
  const { dir, cleanup } = await scratchDir('copy-link-xdev');
  t.after(cleanup);
  if ((await stat(shm)).dev === (await stat(dir)).dev) return t.skip('/dev/shm is on the temp dir\'s file system');
  const src = await copyLayout('app', join(shm, 'src'));
  const dest = join(dir, 'dest');
  await ok(['copy', '--link', `oci:${src}:latest`, `oci:${dest}:latest`]);
  for (const l of await layersOf(src, 'latest')) assert.equal((await stat(blobFile(dest, l.digest))).nlink, 1);
  await ok(['verify', dest]);
});

test('rebase --link in place links the new base layers into the app layout', async (t) => {
  const ws = await workspace(t, 'rebase-link', 'app', 'base-v2');
  const had = new Set(await readdir(join(ws('app'), 'blobs', 'sha256')));
  await ok(['rebase', `oci:${ws('app')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`, '--base-layers', '2', '--link']);
  const newBase = await layersOf(ws('base-v2'), '2.0');
  const rebased = await layersOf(ws('app'), 'latest');
  assert.deepEqual(rebased.slice(0, newBase.length).map((l) => l.digest), newBase.map((l) => l.digest));
  const added = newBase.filter((l) => !had.has(l.digest.slice('sha256:'.length)));
  assert.ok(added.length > 0, 'the new base brings layers the app lacked');
  for (const l of added) assert.equal((await stat(blobFile(ws('app'), l.digest))).ino, (await stat(blobFile(ws('base-v2'), l.digest))).ino);
  await ok(['verify', '--deep', ws('app')]);
  const temps = (await readdir(join(ws('app'), 'blobs', 'sha256'))).filter((n) => n.startsWith('.'));
  assert.deepEqual(temps, []);
});
