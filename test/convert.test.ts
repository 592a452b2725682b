import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { assertCleanError, runOcikit, describeRun } from './helpers/ocikit-process.js';
import { archiveFixture, layoutFixture, scratchDir } from './helpers/scratch.js';
import { snapshotTree, assertTreeUnchanged } from './helpers/tree-snapshot.js';

interface InspectJson {
  entries: Array<{ digest: string; kind: string; tags?: string[]; mediaType: string; layers?: Array<{ digest: string }>; config?: { digest: string }; children?: InspectJson['entries'] }>;
}

async function inspectJson(ref: string): Promise<InspectJson> {
  const r = await runOcikit(['inspect', '--json', ref]);
  assert.equal(r.code, 0, describeRun(r));
  return JSON.parse(r.stdout) as InspectJson;
}

test('dir → oci-archive → docker-archive → dir keeps every layer digest, the config and the tag', async () => {
  const { dir, cleanup } = await scratchDir('convert');
  try {
    const steps = [`oci-archive:${join(dir, 'a.tar')}`, `docker-archive:${join(dir, 'a.docker.tar')}`, `oci:${join(dir, 'back')}`];
    let from = `oci:${layoutFixture('app')}:latest`;
    for (const to of steps) {
      const r = await runOcikit(['convert', from, to]);
      assert.equal(r.code, 0, describeRun(r));
      from = to;
    }
    const original = (await inspectJson(`oci:${layoutFixture('app')}:latest`)).entries[0]!;
    const back = (await inspectJson(`oci:${join(dir, 'back')}:latest`)).entries[0]!;
    assert.equal(back.digest, original.digest, 'the manifest bytes survive the round trip');
    assert.deepEqual(back.layers!.map((l) => l.digest), original.layers!.map((l) => l.digest));
    assert.equal(back.config!.digest, original.config!.digest);
    assert.deepEqual(back.tags, ['latest']);
  } finally {
    await cleanup();
  }
});

test('tarballs are written deterministically: the same input gives byte-identical output', async () => {
  const { dir, cleanup } = await scratchDir('convert');
  try {
    for (const name of ['one', 'two']) {
      const r = await runOcikit(['convert', `oci:${layoutFixture('multi')}`, `oci-archive:${join(dir, `${name}.tar`)}`], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
      assert.equal(r.code, 0, describeRun(r));
    }
    assert.deepEqual(await readFile(join(dir, 'one.tar')), await readFile(join(dir, 'two.tar')));
  } finally {
    await cleanup();
  }
});

test('--oci-media-types rewrites a Docker image to OCI types and says which digests changed', async () => {
  const { dir, cleanup } = await scratchDir('convert');
  try {
    const r = await runOcikit(['convert', '--oci-media-types', `oci:${layoutFixture('docker-types')}:docker`, `oci:${join(dir, 'oci')}:docker`]);
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /converted to OCI media types: sha256:[a-f0-9]{64} -> sha256:[a-f0-9]{64}/);
    const entry = (await inspectJson(`oci:${join(dir, 'oci')}:docker`)).entries[0]!;
    assert.equal(entry.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    const manifest = JSON.parse(await readFile(join(dir, 'oci', 'blobs/sha256', entry.digest.slice(7)), 'utf8'));
    assert.equal(manifest.config.mediaType, 'application/vnd.oci.image.config.v1+json');
    assert.ok(manifest.layers.every((l: { mediaType: string }) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip'));
  } finally {
    await cleanup();
  }
});

test('--platform picks one image out of an index', async () => {
  const { dir, cleanup } = await scratchDir('convert');
  try {
    const r = await runOcikit(['convert', '--platform', 'linux/arm64', `oci:${layoutFixture('multi')}:multi`, `oci:${join(dir, 'arm')}:arm`]);
    assert.equal(r.code, 0, describeRun(r));
    const entry = (await inspectJson(`oci:${join(dir, 'arm')}:arm`)).entries[0]!;
    assert.equal(entry.kind, 'manifest');
  } finally {
    await cleanup();
  }
});

test('a corrupt blob aborts the copy: the destination layout is not created, the source is untouched', async () => {
  const { dir, cleanup } = await scratchDir('convert');
  try {
    const { cp } = await import('node:fs/promises');
    const src = join(dir, 'src');
    await cp(layoutFixture('app'), src, { recursive: true });
    const inspect = await inspectJson(`oci:${src}:latest`);
    const layer = inspect.entries[0]!.layers![2]!.digest;
    const file = join(src, 'blobs/sha256', layer.slice(7));
    const bytes = await readFile(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(file, bytes);
    const before = await snapshotTree(dir);
    const r = await runOcikit(['convert', `oci:${src}:latest`, `oci:${join(dir, 'dest')}`]);
    assertCleanError(r, [1], /content digest|bytes/);
    await assertTreeUnchanged(dir, before, 'failed convert');
    const tarRun = await runOcikit(['convert', `oci:${src}:latest`, `oci-archive:${join(dir, 'dest.tar')}`]);
    assertCleanError(tarRun, [1], /content digest|bytes/);
    await assertTreeUnchanged(dir, before, 'failed convert to an archive');
  } finally {
    await cleanup();
  }
});

test('inspect shows the tree for people and a stable JSON shape; errors are one line with exit 2', async () => {
  const human = await runOcikit(['inspect', archiveFixture('app.docker.tar')]);
  assert.equal(human.code, 0, describeRun(human));
  assert.match(human.stdout, /^docker-archive:/);
  assert.match(human.stdout, /└─ manifest {2}sha256:[a-f0-9]{64} .* tags: example\.com\/app:latest/);
  assert.match(human.stdout, /layer {2}sha256:[a-f0-9]{64} .* application\/vnd\.docker\.image\.rootfs\.diff\.tar/);
  const json = await inspectJson(layoutFixture('multi'));
  const index = json.entries[0]!;
  assert.equal(index.kind, 'index');
  assert.equal(index.children!.length, 3);
  assertCleanError(await runOcikit(['inspect', '/nonexistent/path']), [2], /no such file or directory/);
  assertCleanError(await runOcikit(['inspect', `oci:${layoutFixture('base')}:nope`]), [2], /no image tagged nope/);
  assertCleanError(await runOcikit(['inspect']), [2]);
  assertCleanError(await runOcikit(['frobnicate']), [2]);
});
