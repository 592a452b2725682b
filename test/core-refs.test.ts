/** `NAME:TAG` references without a `/` (as skopeo reads them), and docker-archive names without a tag. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveTarget } from '../src/ops/resolve.js';
import { openStore } from '../src/store/open.js';
import { dockerSave25, dockerSaveLegacy, ociArchive, layoutFiles, tagged } from '../testdata/builder.js';
import { describeRun, runOcikit, TESTDATA } from './helpers/ocikit-process.js';
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
