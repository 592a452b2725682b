/**
 * Layouts and tarballs written by skopeo and umoci (not by this repo) verify without errors, plain and
 * --deep; and a defect put into them is found.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { layoutFixture } from './helpers/scratch.js';
import { corruptBlob } from '../testdata/builder.js';
import { check, errorsOf, rulesOf, tempDir } from './verify-fixtures.js';

const hasTool = (name: string) => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;

function run(t: TestContext, command: string, args: string[]): void {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${command} ${args.join(' ')}: ${r.stderr}`);
}

/** Rules other than notes (info) that the report holds. */
function nonInfo(report: Awaited<ReturnType<typeof check>>): string[] {
  return rulesOf(report).filter((r) => report.findings.find((f) => f.rule === r)!.severity !== 'info');
}

test('skopeo copy to oci:, oci-archive:, docker-archive: (gzip, zstd, Docker v2s2, multi-arch) verifies clean', async (t) => {
  if (!hasTool('skopeo')) return t.skip('skopeo not installed');
  const dir = await tempDir(t);
  const copies: Array<[string, string, string[]]> = [
    [`oci:${layoutFixture('app')}:latest`, `oci:${join(dir, 'oci')}:latest`, []],
    [`oci:${layoutFixture('app')}:latest`, `oci-archive:${join(dir, 'app.oci.tar')}:latest`, []],
    [`oci:${layoutFixture('app')}:latest`, `docker-archive:${join(dir, 'app.docker.tar')}:example.com/app:latest`, []],
    [`oci:${layoutFixture('app')}:latest`, `oci:${join(dir, 'zstd')}:latest`, ['--dest-compress-format', 'zstd', '--dest-compress']],
    [`oci:${layoutFixture('app')}:latest`, `oci:${join(dir, 'v2s2')}:latest`, ['--format', 'v2s2']],
    [`oci:${layoutFixture('multi')}:multi`, `oci:${join(dir, 'multi')}:multi`, ['--multi-arch', 'all']],
    [`oci:${layoutFixture('zstd')}:zstd`, `oci:${join(dir, 'zstd-fixture')}:zstd`, []],
  ];
  for (const [from, to, flags] of copies) {
    run(t, 'skopeo', ['--insecure-policy', 'copy', '-q', ...flags, from, to]);
    const target = to.replace(/^(oci|oci-archive|docker-archive):/, '').replace(/:[^/]*$/, '').replace(/:example\.com\/app$/, '');
    for (const deep of [false, true]) {
      const report = await check(target, { deep });
      assert.deepEqual(nonInfo(report), [], `${to}${deep ? ' --deep' : ''}: ${JSON.stringify(report.findings)}`);
      assert.ok(report.summary.blobs >= 3);
    }
  }
  const zstdLayers = await readdir(join(dir, 'zstd', 'blobs', 'sha256'));
  const biggest = (await Promise.all(zstdLayers.map(async (n) => ({ n, size: (await stat(join(dir, 'zstd', 'blobs', 'sha256', n))).size })))).sort((a, b) => b.size - a.size)[0]!;
  await corruptBlob(join(dir, 'zstd'), `sha256:${biggest.n}`, 20);
  assert.ok(errorsOf(await check(join(dir, 'zstd'), { deep: true })).includes('blob-digest-mismatch'));
});

test('umoci init/new/insert/repack layouts verify clean (insert writes a tar without end blocks: a warning)', async (t) => {
  if (!hasTool('umoci')) return t.skip('umoci not installed');
  const dir = await tempDir(t);
  const image = join(dir, 'image');
  const tree = join(dir, 'tree');
  await mkdir(join(tree, 'etc'), { recursive: true });
  await writeFile(join(tree, 'etc', 'greeting'), 'hello from umoci\n');
  run(t, 'umoci', ['init', '--layout', image]);
  run(t, 'umoci', ['new', '--image', `${image}:t`]);
  run(t, 'umoci', ['insert', '--image', `${image}:t`, join(tree, 'etc'), '/etc']);
  run(t, 'umoci', ['unpack', '--rootless', '--image', `${image}:t`, join(dir, 'bundle')]);
  await writeFile(join(dir, 'bundle', 'rootfs', 'etc', 'added'), 'added after unpack\n');
  await mkdir(join(dir, 'bundle', 'rootfs', 'usr', 'share'), { recursive: true });
  await writeFile(join(dir, 'bundle', 'rootfs', 'usr', 'share', 'x.txt'), 'x'.repeat(10_000));
  run(t, 'umoci', ['repack', '--image', `${image}:t2`, join(dir, 'bundle')]);
  run(t, 'umoci', ['config', '--image', `${image}:t2`, '--config.env', 'A=b', '--tag', 't3']);
  const plain = await check(image);
  assert.deepEqual(nonInfo(plain), [], JSON.stringify(plain.findings));
  const deep = await check(image, { deep: true });
  assert.deepEqual(errorsOf(deep), [], JSON.stringify(deep.findings));
  assert.deepEqual(nonInfo(deep).filter((r) => r !== 'layer-tar-no-end-marker'), []);
  for (const tag of ['t', 't2', 't3']) assert.equal((await check(`oci:${image}:${tag}`, { deep: true })).ok, true, tag);
});
