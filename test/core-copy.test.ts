/** copy/convert on the built CLI: --platform through nested indexes, index.json's own fields, merging into an existing archive, docker-archive limits. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ArchiveStore } from '../src/store/archive.js';
import { openStore } from '../src/store/open.js';
import { indexJsonBytes, jsonBlob, tagged, writeLayout } from '../testdata/builder.js';
import { describeRun, runOcikit } from './helpers/ocikit-process.js';
import { smallImage } from './helpers/referrer-layout.js';
import { layoutFixture, scratchDir } from './helpers/scratch.js';

async function tagsIn(ref: string): Promise<Array<[string | null, string]>> {
  const store = await openStore(ref);
  try {
    return (await store.readIndex()).value.manifests.map((d) => [d.annotations?.['org.opencontainers.image.ref.name'] ?? null, d.digest]);
  } finally {
    await store.close();
  }
}

test('copy --platform finds the platform inside nested indexes', async (t) => {
  const { dir, cleanup } = await scratchDir('core-copy');
  t.after(cleanup);
  const r = await runOcikit(['copy', '--platform', 'linux/amd64', layoutFixture('nested'), `oci:${join(dir, 'x')}`]);
  assert.equal(r.code, 0, describeRun(r));
  assert.deepEqual(await tagsIn(`oci:${join(dir, 'x')}`), [['nested', 'sha256:59475946d06bc2a11e6e6e49da7a0d8b0371e73533088b8f6857da340bb890ba']]);
  const none = await runOcikit(['copy', '--platform', 'linux/s390x', layoutFixture('nested'), `oci:${join(dir, 'y')}`]);
  assert.equal(none.code, 2, describeRun(none));
  assert.match(none.stderr, /no linux\/s390x image/);
});

test("index.json's annotations and unknown fields come along into a new layout and archive, with the blobs they name", async (t) => {
  const { dir, cleanup } = await scratchDir('core-copy');
  t.after(cleanup);
  const image = smallImage('fields');
  const named = jsonBlob({ note: 'named by an index.json extension field' }, 'application/vnd.example.note+json');
  const index = JSON.parse(indexJsonBytes([tagged(image.descriptor, 'latest')], { 'org.example.layout': 'kept' }).toString()) as Record<string, unknown>;
  index['com.example.unknown'] = { note: named.descriptor };
  const src = join(dir, 'src');
  await writeLayout(src, { manifests: [], indexJson: JSON.stringify(index), blobs: [...image.blobs, named] });
  for (const dest of [`oci:${join(dir, 'copy')}`, `oci-archive:${join(dir, 'copy.tar')}`]) {
    const r = await runOcikit(['copy', `oci:${src}`, dest]);
    assert.equal(r.code, 0, describeRun(r));
    const store = await openStore(dest);
    const copied = (await store.readIndex()).value as Record<string, unknown>;
    assert.deepEqual(copied.annotations, { 'org.example.layout': 'kept' }, dest);
    assert.deepEqual(copied['com.example.unknown'], index['com.example.unknown'], dest);
    assert.ok((await store.statBlob(named.descriptor.digest)) !== undefined, `${dest}: the blob an index.json field names is copied`);
    await store.close();
  }
});

test('copy into an existing oci-archive adds to it, as into an existing layout', async (t) => {
  const { dir, cleanup } = await scratchDir('core-copy');
  t.after(cleanup);
  const archive = join(dir, 'both.tar');
  const one = smallImage('one');
  const two = smallImage('two');
  await writeLayout(join(dir, 'one'), { manifests: [tagged(one.descriptor, 'one')], blobs: one.blobs });
  await writeLayout(join(dir, 'two'), { manifests: [tagged(two.descriptor, 'two')], blobs: two.blobs });
  for (const [src, dest] of [[`oci:${join(dir, 'one')}`, `oci-archive:${archive}`], [`oci:${join(dir, 'two')}`, `oci-archive:${archive}`], [`oci:${join(dir, 'two')}`, `oci-archive:${archive}:again`]]) {
    const r = await runOcikit(['copy', src!, dest!]);
    assert.equal(r.code, 0, describeRun(r));
  }
  assert.deepEqual(await tagsIn(`oci-archive:${archive}`), [['one', one.descriptor.digest], ['two', two.descriptor.digest], ['again', two.descriptor.digest]]);
  const verify = await runOcikit(['verify', archive]);
  assert.equal(verify.code, 0, describeRun(verify));

  const docker = join(dir, 'both.docker.tar');
  for (const [src, name] of [[join(dir, 'one'), 'one:v1'], [join(dir, 'two'), 'two:v1'], [join(dir, 'two'), 'two']]) {
    const r = await runOcikit(['copy', `oci:${src}`, `docker-archive:${docker}:${name}`]);
    assert.equal(r.code, 0, describeRun(r));
  }
  assert.deepEqual(await repoTagsOf(docker), [['one:v1'], ['two:v1', 'two:latest']], 'images with the same bare tag (v1) are both kept');
});

async function repoTagsOf(archive: string): Promise<Array<string[] | null>> {
  const store = await ArchiveStore.open(archive);
  const raw = (await store.readTopFile('manifest.json'))!;
  return (JSON.parse(raw.toString('utf8')) as Array<{ RepoTags: string[] | null }>).map((e) => e.RepoTags);
}

test('a multi-platform index into a docker-archive warns that its images share one RepoTag and names --platform', async (t) => {
  const { dir, cleanup } = await scratchDir('core-copy');
  t.after(cleanup);
  const r = await runOcikit(['copy', `oci:${layoutFixture('multi')}:multi`, `docker-archive:${join(dir, 'm.tar')}:multi:v1`]);
  assert.equal(r.code, 0, describeRun(r));
  assert.match(r.stderr, /warning: .*2 platform images .*one RepoTag.*--platform/);
  const single = await runOcikit(['copy', '--platform', 'linux/arm64', `oci:${layoutFixture('multi')}:multi`, `docker-archive:${join(dir, 'one.tar')}:multi:v1`]);
  assert.equal(single.code, 0, describeRun(single));
  assert.equal(single.stderr, '');
  assert.deepEqual(await repoTagsOf(join(dir, 'one.tar')), [['multi:v1']]);
});
