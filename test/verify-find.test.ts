/** `verify --find DIR`: every layout and tarball under a tree, one verdict each, one summary, links never followed. */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { discoverStores } from '../src/store/discover.js';
import { runOcikit } from './helpers/ocikit-process.js';
import { archiveFixture, copyLayout, scratchDir } from './helpers/scratch.js';

interface Estate {
  root: string;
  broken: string;
  outside: string;
}

/** Two good layouts (one nested deep), an OCI and a Docker tarball, a corrupted layout, links out of the tree. */
async function estate(dir: string): Promise<Estate> {
  const root = join(dir, 'estate');
  await mkdir(join(root, 'team', 'nested'), { recursive: true });
  await copyLayout('app', join(root, 'app'));
  await copyLayout('multi', join(root, 'team', 'nested', 'multi'));
  await copyFile(archiveFixture('app.oci.tar'), join(root, 'team', 'app.oci.tar'));
  await copyFile(archiveFixture('app.docker25.tar'), join(root, 'app.docker25.tar'));
  const broken = await copyLayout('app', join(root, 'broken'));
  const blobs = join(broken, 'blobs', 'sha256');
  const [first] = (await readdir(blobs)).sort();
  await writeFile(join(blobs, first!), 'tampered');
  // Outside the tree: a broken layout and a tarball that must never be read through links.
  const outside = await copyLayout('app', join(dir, 'outside'));
  await writeFile(join(outside, 'index.json'), '{');
  await symlink(outside, join(root, 'linked-layout'));
  await writeFile(join(dir, 'outside.tar'), 'not a tar');
  await symlink(join(dir, 'outside.tar'), join(root, 'linked.tar'));
  return { root, broken, outside };
}

test('discovery finds every layout and tarball in the tree, sorted, and follows no link', async (t) => {
  const { dir, cleanup } = await scratchDir('find');
  t.after(cleanup);
  const { root } = await estate(dir);
  const found = await discoverStores(root);
  assert.deepEqual(found.map((f) => [f.path.slice(root.length + 1), f.kind]), [
    ['app', 'oci'],
    ['app.docker25.tar', 'archive'],
    ['broken', 'oci'],
    ['team/app.oci.tar', 'archive'],
    ['team/nested/multi', 'oci'],
  ]);
});

test('verify --find: one line per passing input, the failing one in full, a summary, exit 1', async (t) => {
  const { dir, cleanup } = await scratchDir('find');
  t.after(cleanup);
  const { root, broken } = await estate(dir);
  const r = await runOcikit(['verify', '--find', root], { timeoutMs: 120_000 });
  assert.equal(r.code, 1, r.stderr + r.stdout);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines.at(-1)!, /^FAILED: 5 inputs \(4 ok, 1 failed, 0 unreadable\); \d+ blobs, /);
  for (const name of ['app', 'app.docker25.tar', 'team/app.oci.tar', 'team/nested/multi']) {
    assert.ok(lines.some((l) => l.startsWith(`${join(root, name)} (`) && / ok: \d+ blobs/.test(l)), `${name} in ${r.stdout}`);
  }
  assert.match(r.stdout, new RegExp(`^${broken} \\(oci\\)$`, 'm'));
  assert.match(r.stdout, /error +blob-digest-mismatch +blobs\/sha256\//);
  assert.doesNotMatch(r.stdout + r.stderr, /outside|linked/);
});

test('verify --find --json: a report per input, in discovery order', async (t) => {
  const { dir, cleanup } = await scratchDir('find');
  t.after(cleanup);
  const { root } = await estate(dir);
  const r = await runOcikit(['verify', '--find', join(root, 'team'), '--json'], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  const reports = JSON.parse(r.stdout) as Array<{ ref: string; ok: boolean; kind: string }>;
  assert.deepEqual(reports.map((x) => [x.ref.slice(root.length + 1), x.kind, x.ok]), [
    ['team/app.oci.tar', 'oci-archive', true],
    ['team/nested/multi', 'oci', true],
  ]);
});

test('verify --find: a tree with nothing in it, or a file, is a usage error (exit 2)', async (t) => {
  const { dir, cleanup } = await scratchDir('find');
  t.after(cleanup);
  const empty = join(dir, 'empty');
  await mkdir(empty);
  const none = await runOcikit(['verify', '--find', empty]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no layout directory or tarball found/);
  const file = join(dir, 'file');
  await writeFile(file, '');
  const notDir = await runOcikit(['verify', '--find', file]);
  assert.equal(notDir.code, 2);
  assert.match(notDir.stderr, /--find .*file: not a directory/);
});
