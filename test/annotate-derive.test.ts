import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { blobPath } from '../src/model/digest.js';
import type { AnnotateResult, AnnotationChange } from '../src/ops/annotate.js';
import { openStore } from '../src/store/open.js';
import { buildImage, buildIndex, tagged, writeLayout, sampleImages } from '../testdata/builder.js';
import { assertCleanError, describeRun, runOcikit } from './helpers/ocikit-process.js';
import { annotateRef } from './helpers/annotate-run.js';
import { archiveFixture, copyLayout, scratchDir, workspace } from './helpers/scratch.js';
import { diffTrees, snapshotTree } from './helpers/tree-snapshot.js';

const s = sampleImages();
const BASE_NAME = 'org.opencontainers.image.base.name';
const BASE_DIGEST = 'org.opencontainers.image.base.digest';
const SOURCE = 'org.opencontainers.image.source';
const REVISION = 'org.opencontainers.image.revision';
const CREATED = 'org.opencontainers.image.created';
const BUILDINFO = 'moby.buildkit.buildinfo.v1';

async function manifestAnnotations(dir: string, digest: string): Promise<Record<string, string>> {
  return (JSON.parse(await readFile(join(dir, blobPath(digest)), 'utf8')) as { annotations?: Record<string, string> }).annotations ?? {};
}

function change(result: AnnotateResult, key: string, platform?: string): AnnotationChange {
  const doc = result.changes.find((c) => c.role === 'manifest' && (platform === undefined || c.platform === platform));
  const found = doc?.annotations.find((a) => a.key === key);
  assert.ok(found, `${key} changed on ${platform ?? 'the manifest'}: ${JSON.stringify(result.changes)}`);
  return found;
}

/** An app image whose buildinfo lists several docker-image sources (a multi-stage build). */
function multiStageApp(sources: Array<{ ref: string; pin: string }>) {
  const labels = { ...s.app.config.config!.Labels };
  const info = { frontend: 'dockerfile.v0', sources: sources.map((x) => ({ type: 'docker-image', ...x })) };
  labels[BUILDINFO] = Buffer.from(JSON.stringify(info)).toString('base64');
  return buildImage({ layers: s.app.layers, config: { ...s.app.config.config, Labels: labels }, history: s.app.config.history ?? undefined });
}

test('--from-labels copies all labels, or those with a prefix, and says where each came from', async (t) => {
  const at = await workspace(t, 'annotate-derive', 'app');
  const dir = at('app');
  const some = await annotateRef(`oci:${dir}`, { fromLabels: ['org.opencontainers.', 'org.label-schema.vcs'] });
  assert.deepEqual(await manifestAnnotations(dir, some.newTarget), {
    'org.label-schema.vcs-url': 'https://example.com/base.git',
    [SOURCE]: 'https://example.com/app',
  });
  assert.equal(change(some, SOURCE).source, `config label ${SOURCE}`);
  const all = await annotateRef(`oci:${dir}`, { fromLabels: true });
  assert.deepEqual(Object.keys(await manifestAnnotations(dir, all.newTarget)).sort(), Object.keys(s.app.config.config!.Labels!).sort());
});

test('--label-schema maps org.label-schema.* to OCI keys, never over a key the image states itself', async (t) => {
  const at = await workspace(t, 'annotate-derive', 'app');
  const dir = at('app');
  const result = await annotateRef(`oci:${dir}`, { labelSchema: true });
  assert.deepEqual(await manifestAnnotations(dir, result.newTarget), { [CREATED]: '2024-01-01T00:00:00Z' });
  assert.match(change(result, CREATED).source!, /org\.label-schema\.build-date/);
  assert.match(result.notes.join('\n'), /org\.label-schema\.vcs-url not mapped: the image already has org\.opencontainers\.image\.source/);
});

test('--label-schema maps usage to documentation only when it is a URL', async (t) => {
  const { dir, cleanup } = await scratchDir('annotate-ls');
  t.after(cleanup);
  const labels = { 'org.label-schema.usage': 'docker run it', 'org.label-schema.vcs-ref': 'abc123', 'org.label-schema.name': 'thing', 'org.label-schema.url': 'https://example.com/thing' };
  const image = buildImage({ layers: s.base.layers, config: { Labels: labels } });
  await writeLayout(dir, { manifests: [tagged(image.descriptor, 'x')], blobs: image.blobs });
  const result = await annotateRef(`oci:${dir}`, { labelSchema: true });
  assert.deepEqual(await manifestAnnotations(dir, result.newTarget), {
    'org.opencontainers.image.url': 'https://example.com/thing', [REVISION]: 'abc123', 'org.opencontainers.image.title': 'thing',
  });
  assert.match(result.notes.join('\n'), /usage not mapped .* is usage text, not a URL/);
});

test('--base proves the prefix and sets base.name and base.digest, with the proof in the output', async (t) => {
  const at = await workspace(t, 'annotate-derive', 'app', 'base');
  const r = await runOcikit(['annotate', `oci:${at('app')}`, '--base', `oci:${at('base')}:1.0`, '--base-name', 'registry.example.com/base', '--json']);
  assert.equal(r.code, 0, describeRun(r));
  const result = JSON.parse(r.stdout) as AnnotateResult;
  assert.deepEqual(await manifestAnnotations(at('app'), result.newTarget), {
    [BASE_NAME]: 'registry.example.com/base:1.0',
    [BASE_DIGEST]: s.base.descriptor.digest,
  });
  assert.match(change(result, BASE_DIGEST).source!, /its 2 layer\(s\) are the image's first 2 \(compared by digest\)/);
  assert.match(change(result, BASE_NAME).source!, /--base-name, with the tag 1\.0/);
});

test('--base needs a name when the base is tagged only, and refuses a base that is not a prefix, naming the layer', async (t) => {
  const at = await workspace(t, 'annotate-derive', 'app', 'base', 'base-v2');
  const before = await snapshotTree(at('app'));
  assertCleanError(await runOcikit(['annotate', `oci:${at('app')}`, '--base', `oci:${at('base')}`]), [2], /names itself only by the tag "1\.0"; pass --base-name/);
  const wrong = await runOcikit(['annotate', `oci:${at('app')}`, '--base', `oci:${at('base-v2')}`, '--base-name', 'example.com/base']);
  assertCleanError(wrong, [1], /is not the base of the linux\/amd64 image .*layer 1 differs: image has sha256:441bb5475d73/);
  assert.deepEqual(diffTrees(before, await snapshotTree(at('app'))), [], 'refused: nothing written');
});

test('--base from a legacy docker-save tarball: layers compared by diff_id, name from its RepoTag, no made-up base.digest', async (t) => {
  const at = await workspace(t, 'annotate-derive', 'app');
  const tarball = await openStore(archiveFixture('app.docker.tar'));
  const result = await annotateRef(`oci:${at('app')}`, { base: { store: tarball, text: 'app.docker.tar' } });
  assert.deepEqual(await manifestAnnotations(at('app'), result.newTarget), { [BASE_NAME]: 'example.com/app:latest' });
  assert.match(change(result, BASE_NAME).source!, /io\.containerd\.image\.name annotation of --base app\.docker\.tar/);
  assert.match(result.notes.join('\n'), /base\.digest not set: --base app\.docker\.tar is a legacy docker-save tarball: ocikit made its manifest up from manifest\.json/);
});

test('--base-digest index takes the base index digest; a multi-platform image gets each platform\'s base', async (t) => {
  const { dir, cleanup } = await scratchDir('annotate-base-index');
  t.after(cleanup);
  const baseIndex = buildIndex({ manifests: [s.base.descriptor], children: s.base.blobs });
  const named = { ...baseIndex.descriptor, annotations: { 'io.containerd.image.name': 'registry.example.com/base:1.0', 'org.opencontainers.image.ref.name': '1.0' } };
  await writeLayout(join(dir, 'base'), { manifests: [named], blobs: baseIndex.blobs });
  await copyLayout('app', join(dir, 'app'));
  const byIndex = await annotateRef(`oci:${join(dir, 'app')}`, { base: { store: await openStore(join(dir, 'base')), text: 'base', digest: 'index' } });
  assert.deepEqual(await manifestAnnotations(join(dir, 'app'), byIndex.newTarget), { [BASE_NAME]: 'registry.example.com/base:1.0', [BASE_DIGEST]: baseIndex.descriptor.digest });

  // multi's platforms share only the base's first layer: the base index of those layers is a prefix of both.
  const shared = buildImage({ layers: [s.base.layers[0]!], config: {} });
  const sharedArm = buildImage({ layers: [s.base.layers[0]!], config: {}, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
  const sharedIndex = buildIndex({ manifests: [shared.descriptor, sharedArm.descriptor], children: [...shared.blobs, ...sharedArm.blobs] });
  await writeLayout(join(dir, 'shared'), { manifests: [tagged(sharedIndex.descriptor, 'example.com/shared:1')], blobs: sharedIndex.blobs });
  await copyLayout('multi', join(dir, 'multi'));
  const multi = await annotateRef(`oci:${join(dir, 'multi')}`, { on: 'all', base: { store: await openStore(join(dir, 'shared')), text: 'shared' } });
  assert.equal(change(multi, BASE_DIGEST, 'linux/amd64').to, shared.descriptor.digest);
  assert.equal(change(multi, BASE_DIGEST, 'linux/arm64/v8').to, sharedArm.descriptor.digest);
  const index = multi.changes.find((c) => c.role === 'index')!;
  assert.deepEqual(index.annotations.map((a) => a.key), [BASE_NAME], 'only the value all platforms agree on goes on the index');
  assert.match(multi.notes.join('\n'), /base\.digest differs between platforms/);
});

test('--from-buildinfo: the one docker-image source in the config, or the provenance attestation of a platform', async (t) => {
  const at = await workspace(t, 'annotate-derive', 'app', 'multi');
  const app = await annotateRef(`oci:${at('app')}`, { fromBuildinfo: true });
  assert.deepEqual(await manifestAnnotations(at('app'), app.newTarget), { [BASE_NAME]: 'docker.io/example/base:1.0', [BASE_DIGEST]: s.base.descriptor.digest });
  assert.match(change(app, BASE_NAME).source!, /the only docker-image source of the build; recorded in config label moby\.buildkit\.buildinfo\.v1/);

  const multi = await annotateRef(`oci:${at('multi')}`, { fromBuildinfo: true });
  assert.equal(change(multi, BASE_NAME, 'linux/amd64').to, 'docker.io/example/base:1.0');
  assert.equal(change(multi, BASE_DIGEST, 'linux/amd64').to, s.base.descriptor.digest);
  assert.match(change(multi, BASE_NAME, 'linux/amd64').source!, /provenance attestation sha256:/);
  assert.equal(multi.changes.filter((c) => c.role === 'manifest').length, 1, 'arm64 has no provenance: left alone');
  assert.match(multi.notes.join('\n'), /linux\/arm64\/v8 .*no docker-image source/);
});

test('--from-buildinfo with several sources: stops and lists them, or picks by --base-layout layers or --base-name', async (t) => {
  const { dir, cleanup } = await scratchDir('annotate-stages');
  t.after(cleanup);
  const golang = 'sha256:' + 'a'.repeat(64);
  const image = multiStageApp([
    { ref: 'docker.io/docker/dockerfile:1', pin: 'sha256:' + 'f'.repeat(64) },
    { ref: 'docker.io/library/golang:1.22', pin: golang },
    { ref: 'docker.io/example/base:1.0', pin: s.base.descriptor.digest },
  ]);
  for (const name of ['a', 'b', 'c']) await writeLayout(join(dir, name), { manifests: [tagged(image.descriptor, 'latest')], blobs: image.blobs });
  await copyLayout('base', join(dir, 'base'));

  const stop = await runOcikit(['annotate', `oci:${join(dir, 'a')}`, '--from-buildinfo']);
  assertCleanError(stop, [2], /built from 2 images \(multi-stage build\): docker\.io\/library\/golang:1\.22@sha256:a+, docker\.io\/example\/base:1\.0@sha256:[a-f0-9]+; pass --base-layout DIR/);

  const byLayers = await runOcikit(['annotate', `oci:${join(dir, 'b')}`, '--from-buildinfo', '--base-layout', join(dir, 'base'), '--json']);
  assert.equal(byLayers.code, 0, describeRun(byLayers));
  const picked = JSON.parse(byLayers.stdout) as AnnotateResult;
  assert.equal(change(picked, BASE_NAME).to, 'docker.io/example/base:1.0');
  assert.match(change(picked, BASE_NAME).source!, /out of 2 sources, the one whose 2 layer\(s\) are the image's first/);
  assert.match(picked.notes.join('\n'), /docker\.io\/docker\/dockerfile:1 skipped: it is BuildKit's Dockerfile frontend/);

  const byName = await annotateRef(`oci:${join(dir, 'c')}`, { fromBuildinfo: true, baseName: 'golang' });
  assert.deepEqual(await manifestAnnotations(join(dir, 'c'), byName.newTarget), { [BASE_NAME]: 'docker.io/library/golang:1.22', [BASE_DIGEST]: golang });
});

test('--from-buildpacks: run image for the base, project metadata for source and revision', async (t) => {
  const at = await workspace(t, 'annotate-derive', 'app');
  const app = await annotateRef(`oci:${at('app')}`, { fromBuildpacks: true });
  assert.deepEqual(await manifestAnnotations(at('app'), app.newTarget), { [BASE_NAME]: 'example.com/base:1.0', [BASE_DIGEST]: s.base.descriptor.digest });
  assert.match(change(app, BASE_DIGEST).source!, /io\.buildpacks\.lifecycle\.metadata runImage\.reference example\.com\/base@sha256:/);
  assert.match(app.notes.join('\n'), /runImage\.topLayer is layer 1: the run image is the image's first 2 layer/);

  const { dir, cleanup } = await scratchDir('annotate-bp');
  t.after(cleanup);
  const project = { source: { type: 'git', version: { commit: '0123456789abcdef' }, metadata: { repository: 'https://github.com/example/app', refs: ['main'] } } };
  const image = buildImage({ layers: s.app.layers, config: { Labels: { ...s.app.config.config!.Labels, 'io.buildpacks.project.metadata': JSON.stringify(project) } } });
  await writeLayout(dir, { manifests: [tagged(image.descriptor, 'latest')], blobs: image.blobs });
  const withProject = await annotateRef(`oci:${dir}`, { fromBuildpacks: true });
  const annotations = await manifestAnnotations(dir, withProject.newTarget);
  assert.equal(annotations[SOURCE], 'https://github.com/example/app');
  assert.equal(annotations[REVISION], '0123456789abcdef');

  const none = await workspace(t, 'annotate-derive', 'base');
  assertCleanError(await runOcikit(['annotate', `oci:${none('base')}`, '--from-buildpacks']), [1], /--from-buildpacks found nothing to derive: .*no io\.buildpacks\.lifecycle\.metadata/);
});

test('--created now follows SOURCE_DATE_EPOCH; config copies the config time; explicit --set wins over derived values', async (t) => {
  const at = await workspace(t, 'annotate-derive', 'app');
  const dir = at('app');
  const r = await runOcikit(['annotate', `oci:${dir}`, '--created', 'now', '--json'], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
  assert.equal(r.code, 0, describeRun(r));
  const epoch = JSON.parse(r.stdout) as AnnotateResult;
  assert.equal(change(epoch, CREATED).to, '2023-11-14T22:13:20Z');
  assert.match(change(epoch, CREATED).source!, /SOURCE_DATE_EPOCH=1700000000/);

  const fromConfig = await annotateRef(`oci:${dir}`, { created: 'config' });
  assert.equal(change(fromConfig, CREATED).to, '2024-01-01T00:00:00Z');
  assertCleanError(await runOcikit(['annotate', `oci:${dir}`, '--created', 'last tuesday']), [2], /RFC 3339/);

  const explicit = await annotateRef(`oci:${dir}`, { fromBuildpacks: true, set: { [BASE_NAME]: 'registry.example.com/mine:2' }, setSources: { [BASE_NAME]: '--set' } });
  const annotations = await manifestAnnotations(dir, explicit.newTarget);
  assert.equal(annotations[BASE_NAME], 'registry.example.com/mine:2');
  assert.equal(annotations[BASE_DIGEST], s.base.descriptor.digest);
});
