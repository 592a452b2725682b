/** `ocikit verify` as users run it (the built bundle): exit codes, human and JSON output, workers in the bundle. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { assertCleanError, describeRun, runOcikit } from './helpers/ocikit-process.js';
import { archiveFixture, layoutFixture, writeBigLayout } from './helpers/scratch.js';
import { corruptBlob } from '../testdata/builder.js';
import type { VerifyReport } from '../src/ops/verify.js';
import { JobRunner } from '../src/hash/job-runner.js';
import { imageLayout, smallImage, tempDir } from './verify-fixtures.js';

test('a clean layout: exit 0, a summary line; --json is the documented report', async () => {
  const human = await runOcikit(['verify', layoutFixture('multi')]);
  assert.equal(human.code, 0, describeRun(human));
  assert.match(human.stdout, /ok: 11 blobs, .* MB\/s\); 0 errors, 0 warnings, 0 infos/);
  const json = await runOcikit(['verify', '--json', '--deep', layoutFixture('multi')]);
  assert.equal(json.code, 0, describeRun(json));
  const report = JSON.parse(json.stdout) as VerifyReport;
  assert.equal(report.ok, true);
  assert.equal(report.kind, 'oci');
  assert.deepEqual(report.findings, []);
  assert.deepEqual(Object.keys(report.summary).sort(), ['blobs', 'bytes', 'deep', 'errors', 'infos', 'mbPerSecond', 'seconds', 'shard', 'warnings']);
  assert.equal(report.summary.deep, true);
  assert.equal(json.stderr, '', 'no progress output when piped');
});

test('a defect: exit 1, one line per finding under its image; --json carries rule, path, jsonPath, digest, chain', async (t) => {
  const image = smallImage();
  const dir = await imageLayout(t, image);
  await corruptBlob(dir, image.layers[0]!.descriptor.digest);
  const human = await runOcikit(['verify', dir]);
  assert.equal(human.code, 1, describeRun(human));
  assert.match(human.stdout, /image latest sha256:[0-9a-f]{12}\n {4}error {3}blob-digest-mismatch {2}blobs\/sha256\/[0-9a-f]{64}: content hashes to sha256:/);
  assert.match(human.stdout, /FAILED: .* 1 error, 0 warnings, 0 infos/);
  const json = await runOcikit(['verify', '--json', dir]);
  assert.equal(json.code, 1);
  const report = JSON.parse(json.stdout) as VerifyReport;
  assert.equal(report.ok, false);
  assert.deepEqual(report.findings.map((f) => [f.rule, f.severity, f.digest, f.chain.length]), [['blob-digest-mismatch', 'error', image.layers[0]!.descriptor.digest, 2]]);
});

test('warnings pass unless --strict', async (t) => {
  const dir = await imageLayout(t, smallImage({ config: { ExposedPorts: { http: {} } } }));
  assert.equal((await runOcikit(['verify', dir])).code, 0);
  assert.equal((await runOcikit(['verify', '--strict', dir])).code, 1);
});

test('several refs: exit 1 when any fails; --json gives one report each', async (t) => {
  const image = smallImage();
  const bad = await imageLayout(t, image, { ociLayout: '{"imageLayoutVersion":"9"}' });
  const r = await runOcikit(['verify', '--json', layoutFixture('app'), archiveFixture('app.docker.tar'), bad]);
  assert.equal(r.code, 1, describeRun(r));
  const reports = JSON.parse(r.stdout) as VerifyReport[];
  assert.deepEqual(reports.map((x) => x.ok), [true, true, false]);
  assert.equal(reports[1]!.kind, 'docker-archive');
});

test('unreadable input and usage errors: exit 2 with one line', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'notes.txt'), 'not a tarball');
  assertCleanError(await runOcikit(['verify', join(dir, 'nope')]), [2], /no such file/);
  assertCleanError(await runOcikit(['verify', join(dir, 'notes.txt')]), [2], /not an OCI layout directory or a tar archive/);
  assertCleanError(await runOcikit(['verify', dir]), [2], /not an OCI image layout/);
  assertCleanError(await runOcikit(['verify', '--shard', '3/2', layoutFixture('app')]), [2], /--shard/);
  assertCleanError(await runOcikit(['verify', '--jobs', '0', layoutFixture('app')]), [2], /--jobs/);
  assertCleanError(await runOcikit(['verify']), [2], /at least one/);
  assertCleanError(await runOcikit(['verify', `oci:${layoutFixture('app')}:no-such-tag`]), [2], /no-such-tag/);
});

test('--rules lists every rule id with its severity', async () => {
  const r = await runOcikit(['verify', '--rules']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^error {3}blob-digest-mismatch/m);
  assert.match(r.stdout, /^info {4}blob-unreferenced/m);
});

test('the bundled CLI hashes and decompresses in worker threads: a big layout, plain and --deep, clean and broken', async (t) => {
  const dir = join(await tempDir(t), 'big');
  await writeBigLayout(dir, 6, 3 * 1024 * 1024);
  for (const args of [[], ['--deep'], ['--jobs', '3'], ['--shard', '1/2']]) {
    const r = await runOcikit(['verify', '--json', ...args, dir]);
    assert.equal(r.code, 0, describeRun(r));
    assert.ok((JSON.parse(r.stdout) as VerifyReport).summary.bytes > (args[0] === '--shard' ? 0 : 18 * 1024 * 1024));
  }
  const names = await readdir(join(dir, 'blobs', 'sha256'));
  const sizes = await Promise.all(names.map(async (n) => ({ n, size: (await stat(join(dir, 'blobs', 'sha256', n))).size })));
  const layer = sizes.sort((a, b) => b.size - a.size)[0]!.n;
  await corruptBlob(dir, `sha256:${layer}`);
  const r = await runOcikit(['verify', '--json', '--deep', dir]);
  assert.equal(r.code, 1, describeRun(r));
  const rules = (JSON.parse(r.stdout) as VerifyReport).findings.map((f) => f.rule).sort();
  assert.deepEqual(rules, ['blob-digest-mismatch', 'config-diffid-mismatch']);
});

test('several refs, one unreadable: the others are still verified, one error line, exit 2, {ref, error} in --json', async (t) => {
  const image = smallImage();
  const bad = await imageLayout(t, image);
  await corruptBlob(bad, image.layers[0]!.descriptor.digest);
  const missing = join(await tempDir(t), 'nope');
  const json = await runOcikit(['verify', '--json', missing, layoutFixture('app'), bad]);
  assert.equal(json.code, 2, describeRun(json));
  const reports = JSON.parse(json.stdout) as Array<VerifyReport | { ref: string; error: string }>;
  assert.equal(reports.length, 3);
  assert.deepEqual(reports[0], { ref: missing, error: `${missing}: no such file or directory` });
  assert.deepEqual(reports.slice(1).map((r) => 'ok' in r && r.ok), [true, false]);
  assert.deepEqual(json.stderr.trim().split('\n'), [`ocikit: ${missing}: no such file or directory`]);
  const human = await runOcikit(['verify', layoutFixture('app'), missing, bad]);
  assert.equal(human.code, 2, describeRun(human));
  assert.match(human.stdout, /ok: .*\n[^]*FAILED: /, 'both readable refs are reported, in order');
  assertCleanError(human, [2], /no such file/);
});

test('--jobs above the work: no more worker threads than batches (peak RSS stays under 150 MiB)', async (t) => {
  const hasTime = existsSync('/usr/bin/time');
  const dir = join(await tempDir(t), 'big');
  await writeBigLayout(dir, 6, 3 * 1024 * 1024);
  const pool = new JobRunner({ jobs: 16, minWorkerBytes: 0 });
  t.after(() => pool.close());
  const file = join(dir, 'blobs', 'sha256', (await readdir(join(dir, 'blobs', 'sha256')))[0]!);
  const big = { job: { kind: 'hash' as const, source: { file, offset: 0, length: null, noFollow: true }, algorithm: 'sha256' }, size: 9 * 1024 * 1024 };
  await pool.run([big, big, big]);
  assert.equal(pool.workers, 2, 'three batches: the main thread and two workers');
  if (!hasTime) return t.skip('/usr/bin/time not installed: RSS not measured');
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, join(import.meta.dirname, '..', 'bin', 'ocikit.js'), 'verify', '--jobs', '16', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const kib = Number(r.stderr.trim().split('\n').at(-1));
  assert.ok(kib < 150 * 1024, `peak RSS ${Math.round(kib / 1024)} MiB with --jobs 16`);
});
