/** `ocikit --version` is ocikit's own, wherever it runs from and however it is installed. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { describeRun, REPO_ROOT, runOcikit } from './helpers/ocikit-process.js';
import { scratchDir } from './helpers/scratch.js';

const own = (JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

test('--version prints ocikit\'s version from / and from inside another package', async (t) => {
  const { dir, cleanup } = await scratchDir('version');
  t.after(cleanup);
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'host-project', version: '9.9.9' }));
  for (const cwd of ['/', dir]) {
    const r = await runOcikit(['--version'], { cwd });
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.stdout, `${own}\n`, `from ${cwd}`);
  }
});

test('--version of ocikit installed as a dependency is ocikit\'s, not the host project\'s', async (t) => {
  const { dir, cleanup } = await scratchDir('version-dep');
  t.after(cleanup);
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'host-project', version: '9.9.9', dependencies: { ocikit: own } }));
  // What npm unpacks: the package's `files` (bin, dist) and its package.json.
  const installed = join(dir, 'node_modules', 'ocikit');
  await mkdir(installed, { recursive: true });
  await cp(join(REPO_ROOT, 'bin'), join(installed, 'bin'), { recursive: true });
  await cp(join(REPO_ROOT, 'dist', 'cli.cjs'), join(installed, 'dist', 'cli.cjs'));
  await cp(join(REPO_ROOT, 'package.json'), join(installed, 'package.json'));
  const r = spawnSync(process.execPath, [join(installed, 'bin', 'ocikit.js'), '--version'], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${own}\n`);
  assert.notEqual(own, '9.9.9');
});
