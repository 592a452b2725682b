/**
 * `ocikit unpack`: the root filesystem equals umoci's for the same image (paths, types, modes, link targets,
 * content, owners), layers are checked as they stream, and a layer can never reach outside DIR.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { buildImage, corruptBlob, layerFromTar, makeLayer, makeTar, tagged, writeLayout, type Layer, type TarFile } from '../testdata/builder.js';
import { finish, runOcikit, startOcikit } from './helpers/ocikit-process.js';
import { layoutFixture, scratchDir } from './helpers/scratch.js';
import { snapshotTree, type TreeSnapshot } from './helpers/tree-snapshot.js';
import { rawEntry, tarOf, END_OF_ARCHIVE } from './helpers/hostile-tar.js';

const hasUmoci = spawnSync('umoci', ['--version']).status === 0;

async function scratch(t: TestContext): Promise<string> {
  const { dir, cleanup } = await scratchDir('unpack');
  t.after(cleanup);
  return dir;
}

async function layoutOf(dir: string, layers: Layer[], tag = 'img'): Promise<string> {
  const image = buildImage({ layers });
  await writeLayout(dir, { manifests: [tagged(image.descriptor, tag)], blobs: image.blobs });
  return dir;
}

/** Names, types, modes, content and link targets, plus owners and mtimes of everything but directories' times. */
async function rootfsOf(dir: string): Promise<Map<string, string>> {
  const tree: TreeSnapshot = await snapshotTree(dir);
  const out = new Map<string, string>();
  for (const [rel, e] of tree) {
    const info = await lstat(join(dir, rel));
    const time = e.type === 'file' || e.type === 'symlink' ? ` mtime=${Math.floor(info.mtimeMs / 1000)}` : '';
    out.set(rel, `${e.type} ${e.mode.toString(8)} ${e.content} ${info.uid}:${info.gid} nlink=${e.type === 'file' ? info.nlink : '-'}${time}`);
  }
  return out;
}

/** A tree exercising what lower and upper layers do to each other. */
function layeredImage(): Layer[] {
  const lower: TarFile[] = [
    { path: 'etc', type: 'dir' },
    { path: 'etc/config', content: 'v1', mode: 0o640, uid: 1000, gid: 1000 },
    { path: 'etc/drop-me', content: 'x' },
    { path: 'opaque', type: 'dir' },
    { path: 'opaque/old-a', content: 'a' },
    { path: 'opaque/old-dir', type: 'dir' },
    { path: 'opaque/old-dir/deep', content: 'd' },
    { path: 'becomes-file', type: 'dir' },
    { path: 'becomes-file/inner', content: 'i' },
    { path: 'bin', type: 'dir' },
    { path: 'bin/tool', content: '#!/bin/sh\n', mode: 0o755 },
    { path: 'bin/alias', type: 'symlink', linkname: 'tool' },
    { path: 'bin/hard', type: 'hardlink', linkname: 'bin/tool' },
    { path: 'setuid', content: 's', mode: 0o4755 },
  ]; // in this order: a hard link comes after its target
  const upper: TarFile[] = [
    { path: 'etc/.wh.drop-me' },
    { path: 'etc/config', content: 'v2', mode: 0o600, uid: 33, gid: 33 },
    { path: 'opaque/.wh..wh..opq' },
    { path: 'opaque/new', content: 'n' },
    { path: 'becomes-file', content: 'now a file' },
    { path: 'implicit/parent/file', content: 'p' },
  ];
  return [makeLayer(lower, 'gzip', { sort: false }), makeLayer(upper, 'none', { sort: false })];
}

test('unpack: the rootfs of layered images equals umoci unpack\'s (whiteouts, opaque dirs, dir → file, links, modes, owners)', { skip: !hasUmoci && 'umoci not installed' }, async (t) => {
  const dir = await scratch(t);
  const cases: Array<[string, string]> = [
    ['layered', await layoutOf(join(dir, 'layered'), layeredImage())],
    ['whiteouts', layoutFixture('whiteouts')],
    ['app', layoutFixture('app')],
  ];
  for (const [name, layout] of cases) {
    const tag = name === 'layered' ? 'img' : name === 'app' ? 'latest' : name;
    const ours = join(dir, `${name}-ocikit`);
    const r = await runOcikit(['unpack', `oci:${layout}:${tag}`, ours, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const bundle = join(dir, `${name}-umoci`);
    const u = spawnSync('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle], { encoding: 'utf8' });
    assert.equal(u.status, 0, u.stderr);
    assert.deepEqual(await rootfsOf(ours), await rootfsOf(join(bundle, 'rootfs')), name);
  }
});

test('unpack: what each layer did, checked on the tree itself', async (t) => {
  const dir = await scratch(t);
  const layout = await layoutOf(join(dir, 'layout'), layeredImage());
  const out = join(dir, 'rootfs');
  const r = await runOcikit(['unpack', `oci:${layout}:img`, out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { layers: number; whiteouts: number; hardlinks: number; symlinks: number };
  assert.deepEqual([summary.layers, summary.whiteouts, summary.hardlinks, summary.symlinks], [2, 2, 1, 1]);
  assert.deepEqual((await readdir(join(out, 'etc'))).sort(), ['config']);
  assert.equal(await readFile(join(out, 'etc/config'), 'utf8'), 'v2');
  assert.deepEqual((await readdir(join(out, 'opaque'))).sort(), ['new']);
  assert.equal(await readFile(join(out, 'becomes-file'), 'utf8'), 'now a file');
  assert.equal((await lstat(join(out, 'bin/hard'))).ino, (await lstat(join(out, 'bin/tool'))).ino);
  assert.equal((await lstat(join(out, 'setuid'))).mode & 0o7777, 0o4755);
  assert.equal((await lstat(join(out, 'etc/config'))).uid, process.getuid?.() === 0 ? 33 : process.getuid?.());
});

test('unpack: gzip, zstd and plain layers give the same tree', async (t) => {
  const dir = await scratch(t);
  const files: TarFile[] = [{ path: 'a', type: 'dir' }, { path: 'a/b', content: 'bytes'.repeat(1000) }];
  const trees = [];
  for (const compression of ['gzip', 'zstd', 'none'] as const) {
    const layout = await layoutOf(join(dir, compression), [makeLayer(files, compression)]);
    const out = join(dir, `${compression}-out`);
    const r = await runOcikit(['unpack', layout, out]);
    assert.equal(r.code, 0, r.stderr);
    trees.push(await rootfsOf(out));
  }
  assert.deepEqual(trees[1], trees[0]);
  assert.deepEqual(trees[2], trees[0]);
});

/** Layers that try to reach outside DIR; each must fail (exit 1), leave DIR absent, and change nothing outside. */
function hostileLayers(): Array<[string, Layer[], 0 | 1]> {
  const raw = (...entries: Buffer[]) => layerFromTar(tarOf(...entries, END_OF_ARCHIVE), 'none');
  const linkOut = (name: string, target: string) => raw(rawEntry({ name, typeflag: '2', linkname: target }));
  return [
    // Resolved as the image's processes would, with DIR as `/`: the link's target stays inside DIR.
    ['a link climbing out, then a file through it', [raw(rawEntry({ name: 'a', typeflag: '2', linkname: '../../../../outside' }), rawEntry({ name: 'a/passwd', data: 'pwned' }))], 0],
    ['an absolute link, then a file through it', [raw(rawEntry({ name: 'a', typeflag: '2', linkname: `${'/..'.repeat(8)}/outside` }), rawEntry({ name: 'a/passwd', data: 'pwned' }))], 0],
    ['a symlinked directory of a lower layer, written through by an upper one', [linkOut('a', '../../outside'), raw(rawEntry({ name: 'a/passwd', data: 'pwned' }))], 0],
    ['a name with ..', [raw(rawEntry({ name: '../outside/x', data: 'pwned' }))], 1],
    ['a hard link to a path outside', [raw(rawEntry({ name: 'h', typeflag: '1', linkname: '../outside/keep' }))], 1],
    ['a whiteout naming ..', [raw(rawEntry({ name: '../outside/.wh.keep' }))], 1],
    ['an opaque whiteout through a link out', [linkOut('a', '../../outside'), raw(rawEntry({ name: 'a/.wh..wh..opq' }))], 0],
  ];
}

test('unpack: hostile layers never reach outside DIR, and DIR is removed after the failure', async (t) => {
  const dir = await scratch(t);
  const outside = join(dir, 'outside');
  await mkdir(outside);
  await writeFile(join(outside, 'keep'), 'keep');
  const before = await snapshotTree(outside);
  for (const [name, layers, code] of hostileLayers()) {
    const layout = await layoutOf(join(dir, `layout-${name.replace(/\W+/g, '-')}`), layers);
    const out = join(dir, 'root', 'fs');
    const r = await runOcikit(['unpack', layout, out]);
    assert.equal(r.code, code, `${name}: ${r.stderr}`);
    assert.deepEqual(await snapshotTree(outside), before, name);
    if (code === 1) {
      assert.match(r.stderr, /^ocikit: .+\n$/, name);
      await assert.rejects(lstat(out), name);
    } else {
      if (name.includes('passwd') || name.includes('file through')) assert.equal(await readFile(join(out, 'outside', 'passwd'), 'utf8'), 'pwned', name);
      await rm(out, { recursive: true });
    }
  }
});

test('unpack: a layer whose digest or diff_id is wrong fails, and DIR is left as it was', async (t) => {
  const dir = await scratch(t);
  const layer = makeLayer([{ path: 'f', content: 'x'.repeat(4096) }]);
  const layout = await layoutOf(join(dir, 'layout'), [layer]);
  await corruptBlob(layout, layer.descriptor.digest, 30);
  const out = join(dir, 'empty');
  await mkdir(out);
  const r = await runOcikit(['unpack', layout, out]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`layer 0 sha256:${layer.descriptor.digest.slice(7, 19)}`));
  assert.deepEqual(await readdir(out), []);

  const lying = layerFromTar(makeTar([{ path: 'g', content: 'y' }]), 'gzip');
  lying.diffId = `sha256:${'0'.repeat(64)}`;
  const badDiff = await layoutOf(join(dir, 'diff'), [lying]);
  const r2 = await runOcikit(['unpack', badDiff, join(dir, 'new')]);
  assert.equal(r2.code, 1, r2.stderr);
  assert.match(r2.stderr, /diff_id/);
  await assert.rejects(lstat(join(dir, 'new')));
});

test('unpack: a non-empty DIR and an index without --platform on a foreign machine are refused before anything is written', async (t) => {
  const dir = await scratch(t);
  const out = join(dir, 'busy');
  await mkdir(out);
  await writeFile(join(out, 'mine'), 'mine');
  const r = await runOcikit(['unpack', layoutFixture('app'), out]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /not empty/);
  assert.deepEqual(await readdir(out), ['mine']);
  const s390 = await runOcikit(['unpack', layoutFixture('multi'), join(dir, 'x'), '--platform', 'linux/s390x']);
  assert.equal(s390.code, 2, s390.stderr);
  await assert.rejects(lstat(join(dir, 'x')));
});

test('unpack: Ctrl-C part way removes the directory it made, and the exit status says SIGINT', async (t) => {
  const dir = await scratch(t);
  const files: TarFile[] = [{ path: 'many', type: 'dir' }];
  for (let i = 0; i < 6000; i++) files.push({ path: `many/f${i}`, content: `${i}` });
  const layout = await layoutOf(join(dir, 'layout'), [makeLayer(files, 'none', { sort: false })]);
  const out = join(dir, 'rootfs');
  const child = startOcikit(['unpack', layout, out]);
  const done = finish(child, ['unpack']);
  // Interrupt once the unpack has visibly begun writing.
  for (let i = 0; i < 400; i++) {
    const n = await readdir(join(out, 'many')).then((e) => e.length, () => 0);
    if (n > 50) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill('SIGINT');
  const r = await done;
  if (r.code === 0) return t.skip('the unpack finished before the signal arrived');
  assert.equal(r.code, 130, r.stderr);
  await assert.rejects(lstat(out));
});
