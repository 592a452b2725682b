/** `NAME:TAG` references without a `/` (as skopeo reads them), and docker-archive names without a tag. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveTarget } from '../src/ops/resolve.js';
import { openStore } from '../src/store/open.js';
import { dockerSave25, dockerSaveLegacy, ociArchive, layoutFiles, tagged } from '../testdata/builder.js';
import { assertCleanError, describeRun, runOcikit, TESTDATA } from './helpers/ocikit-process.js';
import { smallImage } from './helpers/referrer-layout.js';
import { scratchDir } from './helpers/scratch.js';

const image = smallImage('busybox');

test('a docker-archive NAME without a tag names NAME:latest, as in skopeo', async (t) => {
  const { dir, cleanup } = await scratchDir('core-refs');
  t.after(cleanup);
  for (const [name, bytes] of [['legacy.tar', await dockerSaveLegacy(image, { repoTag: 'busybox:latest' })], ['d25.tar', await dockerSave25(image, { repoTag: 'docker.io/library/busybox:latest' })]] as const) {
    await writeFile(join(dir, name), bytes);
    const store = await openStore(`docker-archive:${join(dir, name)}`);
    for (const wanted of ['busybox', 'busybox:latest', 'docker.io/library/busybox']) {
      const target = await resolveTarget(store, { tag: wanted });
      assert.equal(target.descriptor.annotations?.['io.containerd.image.name']?.endsWith('busybox:latest'), true, `${name} ${wanted}`);
    }
    await assert.rejects(resolveTarget(store, { tag: 'busybox:1.36' }), /no image tagged busybox:1.36/);
  }
});

test('convert docker-archive:FILE:NAME:TAG oci:DIR:NAME:TAG reads the source tag and keeps the destination one', async (t) => {
  const { dir, cleanup } = await scratchDir('core-refs');
  t.after(cleanup);
  const source = join(dir, 'bb.tar');
  await writeFile(source, await dockerSaveLegacy(image, { repoTag: 'busybox:latest' }));
  const out = join(dir, 'out');
  const r = await runOcikit(['convert', `docker-archive:${source}:busybox:latest`, `oci:${out}:myapp:v1`]);
  assert.equal(r.code, 0, describeRun(r));
  const ls = await runOcikit(['inspect', '--json', `oci:${out}:myapp:v1`]);
  assert.equal(ls.code, 0, describeRun(ls));

  const archive = join(dir, 'x.tar');
  await writeFile(archive, await ociArchive(layoutFiles({ manifests: [tagged(image.descriptor, 'myapp:v1')], blobs: image.blobs })));
  const back = await runOcikit(['convert', `oci-archive:${archive}:myapp:v1`, `oci:${join(dir, 'back')}`]);
  assert.equal(back.code, 0, describeRun(back));
});

test('oci:DIR:NAME:TAG writes the ref name as given, so skopeo and umoci find the tag too', async (t) => {
  const { dir, cleanup } = await scratchDir('core-refs');
  t.after(cleanup);
  const out = join(dir, 'out');
  const r = await runOcikit(['convert', 'oci:' + join(TESTDATA, 'layouts', 'app') + ':latest', `oci:${out}:example.com/app:v1`]);
  assert.equal(r.code, 0, describeRun(r));
  const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
  assert.deepEqual(index.manifests.map((d) => d.annotations), [{ 'org.opencontainers.image.ref.name': 'example.com/app:v1' }]);
  if (spawnSync('sh', ['-c', 'command -v skopeo']).status !== 0) return t.skip('skopeo not installed');
  const skopeo = spawnSync('skopeo', ['inspect', '--raw', `oci:${out}:example.com/app:v1`], { encoding: 'utf8' });
  assert.equal(skopeo.status, 0, skopeo.stderr);
});

test('every command names an unknown transport and a malformed digest, once, exit 2, with nothing written', async (t) => {
  const { dir, cleanup } = await scratchDir('core-refs');
  t.after(cleanup);
  const app = `oci:${join(TESTDATA, 'layouts', 'app')}`;
  const runs: Array<[string[], RegExp]> = [
    [['inspect', 'docker://busybox'], /^ocikit: unknown transport "docker" in docker:\/\/busybox: ocikit knows oci, oci-archive, docker-archive/],
    [['ls', 'ocii:app'], /^ocikit: unknown transport "ocii" in ocii:app: ocikit knows oci, oci-archive, docker-archive/],
    [['convert', app, 'docker://registry.example.com/app:1'], /unknown transport "docker"/],
    [['annotate', 'ocii:app', '--set', 'com.example.a=b'], /unknown transport "ocii"/],
    [['rebase', 'ocii:app', '--new-base', app], /unknown transport "ocii"/],
    [['inspect', 'app@sha256:1234'], /^ocikit: malformed digest "sha256:1234" in app@sha256:1234: expected sha256: and 64 lowercase hex digits$/],
    [['inspect', `${app}@sha256:1234`], /malformed digest "sha256:1234"/],
  ];
  for (const [args, message] of runs) {
    const r = await runOcikit(args, { cwd: dir });
    assertCleanError(r, [2], message);
    assert.doesNotMatch(r.stderr, /no such file or directory/, describeRun(r));
  }
  assert.deepEqual(await readdir(dir), [], 'nothing was created');
});

test('--platform is parsed once: a bad one is named, and a one-platform command refuses two', async () => {
  const multi = `oci:${join(TESTDATA, 'layouts', 'multi')}:multi`;
  assertCleanError(await runOcikit(['inspect', multi, '--platform', 'linux']), [2], /^ocikit: invalid platform "linux": expected os\/arch\[\/variant\]$/);
  assertCleanError(await runOcikit(['inspect', multi, '--platform', 'linux/amd64', '--platform', 'linux/arm64']), [2], /^ocikit: --platform: this command takes one os\/arch\[\/variant\], not 2$/);
  assertCleanError(await runOcikit(['convert', multi, 'oci:/nonexistent-out', '--platform', 'linux/amd64,linux/arm64']), [2], /takes one os\/arch\[\/variant\], not 2/);
  const one = await runOcikit(['inspect', '--json', multi, '--platform', 'linux/arm64']);
  assert.equal(one.code, 0, describeRun(one));
  const dry = await runOcikit(['annotate', multi, '--dry-run', '--json', '--set', 'com.example.a=b', '--platform', 'linux/amd64,linux/arm64/v8']);
  assert.equal(dry.code, 0, describeRun(dry));
  const changes = (JSON.parse(dry.stdout) as { changes: Array<{ platform?: string }> }).changes.map((c) => c.platform).filter(Boolean).sort();
  assert.deepEqual(changes, ['linux/amd64', 'linux/arm64/v8'], 'a comma-separated list selects both');
});
