/** verify --deep's tar checker on what real tools write: names that are not UTF-8, GNU sparse files. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { createTarChecker } from '../src/ops/verify/layer-check.js';
import { layerFromTar, makeTar } from '../testdata/builder.js';
import { check, gnuSparseTar, imageLayout, renameTarEntry, rulesOf, smallImage, tempDir } from './verify-fixtures.js';

const hasTool = (name: string) => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;

function checkTar(bytes: Buffer) {
  const checker = createTarChecker();
  for (let i = 0; i < bytes.length; i += 100) checker.push(bytes.subarray(i, i + 100));
  return checker.end();
}

async function deepRulesOf(t: Parameters<typeof tempDir>[0], tar: Buffer): Promise<string[]> {
  const layer = layerFromTar(tar, 'gzip');
  const image = smallImage({ layers: [layer], configExtra: { rootfs: { type: 'layers', diff_ids: [layer.diffId] } } });
  return rulesOf(await check(await imageLayout(t, image), { deep: true }));
}

test('names that are not UTF-8 are told apart by their bytes (caf\\xe9 and caf\\xe8 are two paths)', async (t) => {
  const tar = makeTar([{ path: 'cafA', content: 'a' }, { path: 'cafB', content: 'b' }], { sort: false });
  const latin = renameTarEntry(renameTarEntry(tar, 0, Buffer.from('caf\xe9', 'latin1')), 1, Buffer.from('caf\xe8', 'latin1'));
  assert.deepEqual(checkTar(latin).issues, []);
  assert.deepEqual(await deepRulesOf(t, latin), []);
  const same = renameTarEntry(renameTarEntry(tar, 0, Buffer.from('caf\xe9', 'latin1')), 1, Buffer.from('caf\xe9', 'latin1'));
  const dup = checkTar(same).issues;
  assert.deepEqual(dup.map((i) => i.rule), ['layer-tar-duplicate-path'], 'the same bytes twice still are a duplicate');
  assert.match(dup[0]!.message, /caf\uFFFD/, 'messages show the name decoded as UTF-8');
});

test('umoci insert of files named in Latin-1 verifies clean with --deep', async (t) => {
  if (!hasTool('umoci')) return t.skip('umoci not installed');
  const dir = await tempDir(t);
  const src = join(dir, 'src');
  const run = (...args: string[]) => assert.equal(spawnSync('umoci', args, { encoding: 'utf8' }).status, 0, `umoci ${args.join(' ')}`);
  assert.equal(spawnSync('mkdir', [src]).status, 0);
  for (const name of ['caf\xe9', 'caf\xe8']) await writeFile(Buffer.from(join(src, name), 'latin1'), name);
  const layout = join(dir, 'layout');
  run('init', '--layout', layout);
  run('new', '--image', `${layout}:t`);
  run('insert', '--image', `${layout}:t`, src, '/x');
  const report = await check(layout, { deep: true });
  assert.ok(!rulesOf(report).includes('layer-tar-duplicate-path'), JSON.stringify(report.findings));
  assert.equal(report.ok, true);
});

test('GNU sparse entries with extension blocks are skipped, not parsed as headers', async (t) => {
  for (const segments of [3, 10, 40]) {
    const tar = gnuSparseTar('sparse.bin', segments);
    const report = checkTar(tar);
    assert.deepEqual(report.issues, [], `${segments} segments`);
    assert.equal(report.entries, 2, `${segments} segments: the sparse file and the one after it`);
  }
  assert.deepEqual(await deepRulesOf(t, gnuSparseTar('sparse.bin', 30)), []);
  // The data stored (the size field) is what follows, not the realsize: a cut inside it is truncation.
  const cut = gnuSparseTar('sparse.bin', 30);
  assert.deepEqual(checkTar(cut.subarray(0, 512 * 3 + 100)).issues.map((i) => i.rule), ['layer-tar-truncated']);
});

test('GNU tar --sparse output (many holes) verifies clean', async (t) => {
  if (!hasTool('tar')) return t.skip('tar not installed');
  const dir = await tempDir(t);
  const file = join(dir, 'tree', 'holes.bin');
  assert.equal(spawnSync('mkdir', [join(dir, 'tree')]).status, 0);
  const fh = await open(file, 'w');
  for (let i = 0; i < 60; i++) await fh.write(Buffer.alloc(4096, i + 1), 0, 4096, i * 256 * 1024);
  await fh.truncate(61 * 256 * 1024);
  await fh.close();
  const out = join(dir, 'sparse.tar');
  assert.equal(spawnSync('tar', ['--sparse', '--format=gnu', '-cf', out, '-C', join(dir, 'tree'), '.']).status, 0);
  const bytes = await readFile(out);
  assert.ok(bytes.some((_, i) => i % 512 === 0 && bytes[i + 156] === 0x53 && bytes[i + 482] === 1), 'tar wrote an extended sparse header');
  assert.deepEqual(checkTar(bytes).issues, []);
  assert.deepEqual(await deepRulesOf(t, bytes), []);
});
