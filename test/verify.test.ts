import assert from 'node:assert/strict';
import { mkdir, readdir, rm, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { RULES } from '../src/ops/verify.js';
import { MediaType } from '../src/model/media-types.js';
import {
  blob, blobFile, buildImage, buildIndex, corruptBlob, emptyBlob, jsonBlob, LINUX_ARM64, makeLayer, rawLayer, sampleImages, tagged, truncateBlob,
} from '../testdata/builder.js';
import { check, errorsOf, imageLayout, imageSpec, layout, rulesOf, smallImage, tempDir, withManifest } from './verify-fixtures.js';

const FIXTURES = join(import.meta.dirname, '..', 'testdata');
const samples = sampleImages();

test('every committed fixture layout and archive verifies without errors or warnings, plain and --deep', async () => {
  const refs = [
    ...(await readdir(join(FIXTURES, 'layouts'))).map((n) => join(FIXTURES, 'layouts', n)),
    ...(await readdir(join(FIXTURES, 'archives'))).map((n) => join(FIXTURES, 'archives', n)),
  ];
  assert.ok(refs.length >= 10);
  for (const ref of refs) {
    for (const deep of [false, true]) {
      const report = await check(ref, { deep });
      const expected = ref.endsWith('docker25.tar') ? ['index-manifests-null'] : [];
      assert.deepEqual(rulesOf(report).filter((r) => RULES[r as keyof typeof RULES].severity !== 'info'), expected, `${ref}${deep ? ' --deep' : ''}: ${JSON.stringify(report.findings)}`);
      assert.equal(report.ok, true);
      assert.ok(report.summary.blobs >= 3, `${ref}: hashed ${report.summary.blobs} blobs`);
    }
  }
});

test('a blob with one flipped byte: blob-digest-mismatch with path and chain from index.json', async (t) => {
  const image = smallImage();
  const dir = await imageLayout(t, image);
  const layer = image.layers[0]!.descriptor.digest;
  await corruptBlob(dir, layer);
  const report = await check(dir);
  assert.equal(report.ok, false);
  const f = report.findings.find((x) => x.rule === 'blob-digest-mismatch');
  assert.ok(f, JSON.stringify(report.findings));
  assert.equal(f.severity, 'error');
  assert.equal(f.digest, layer);
  assert.equal(f.path, `blobs/sha256/${layer.slice(7)}`);
  assert.deepEqual(f.chain, [image.descriptor.digest, layer]);
});

test('a truncated blob: blob-size-mismatch on the descriptor and blob-digest-mismatch on the file', async (t) => {
  const image = smallImage();
  const dir = await imageLayout(t, image);
  const layer = image.layers[0]!.descriptor;
  await truncateBlob(dir, layer.digest, layer.size - 10);
  const report = await check(dir);
  const size = report.findings.find((f) => f.rule === 'blob-size-mismatch');
  assert.ok(size);
  assert.equal(size.path, `blobs/sha256/${image.descriptor.digest.slice(7)}`, 'reported where the descriptor is');
  assert.equal(size.jsonPath, '$.layers[0]');
  assert.ok(errorsOf(report).includes('blob-digest-mismatch'));
});

test('a descriptor with the wrong size: blob-size-mismatch only (the blob itself is intact)', async (t) => {
  const image = smallImage();
  const broken = withManifest(image, (m) => ((m.layers as Array<{ size: number }>)[0]!.size += 1));
  const report = await check(await imageLayout(t, broken));
  assert.deepEqual(errorsOf(report), ['blob-size-mismatch']);
});

test('a missing blob: blob-missing; a missing non-distributable layer only warns', async (t) => {
  const image = smallImage();
  const dir = await imageLayout(t, image, { omit: [image.layers[0]!.descriptor.digest] });
  assert.deepEqual(errorsOf(await check(dir)), ['blob-missing']);

  const foreign = smallImage({ layers: [makeLayer([{ path: 'f', content: 'x' }], 'gzip', { mediaType: MediaType.ociNondistLayerGzip })] });
  const report = await check(await imageLayout(t, foreign, { omit: [foreign.layers[0]!.descriptor.digest] }));
  assert.deepEqual(rulesOf(report, 'warning'), ['blob-missing-external']);
  assert.equal(report.ok, true);
  assert.equal((await check(await imageLayout(t, foreign, { omit: [foreign.layers[0]!.descriptor.digest] }), { strict: true })).ok, false);
});

test('layout files: missing oci-layout, bad imageLayoutVersion, oci-layout not an object, no index.json, no blobs/', async (t) => {
  const image = smallImage();
  assert.ok(errorsOf(await check(await imageLayout(t, image, { ociLayout: null }))).includes('layout-missing-oci-layout'));
  assert.deepEqual(errorsOf(await check(await imageLayout(t, image, { ociLayout: '{"imageLayoutVersion":"2.0.0"}' }))), ['layout-version-unsupported']);
  assert.deepEqual(errorsOf(await check(await imageLayout(t, image, { ociLayout: '{"imageLayoutVersion":1}' }))), ['layout-oci-layout-invalid']);
  const noIndex = await imageLayout(t, image);
  await unlink(join(noIndex, 'index.json'));
  assert.ok(errorsOf(await check(noIndex)).includes('layout-missing-index'));
  const noBlobs = await layout(t, { manifests: [], blobs: [] });
  await rm(join(noBlobs, 'blobs'), { recursive: true, force: true });
  assert.deepEqual(errorsOf(await check(noBlobs)), ['layout-missing-blobs']);
});

test('index.json that is not JSON: json-invalid, and no blob is called unreferenced', async (t) => {
  const image = smallImage();
  const report = await check(await imageLayout(t, image, { indexJson: '{"schemaVersion": 2, "manifests": [' }));
  const f = report.findings.find((x) => x.rule === 'json-invalid');
  assert.ok(f);
  assert.equal(f.path, 'index.json');
  assert.ok(!rulesOf(report).includes('blob-unreferenced'));
  assert.equal(report.summary.blobs, image.blobs.length, 'every blob is still hashed');
});

test('index.json that is a symlink is not followed: layout-file-unreadable', async (t) => {
  const dir = await imageLayout(t, smallImage());
  const outside = join(await tempDir(t), 'index.json');
  await writeFile(outside, '{"schemaVersion":2,"manifests":[]}');
  await unlink(join(dir, 'index.json'));
  await symlink(outside, join(dir, 'index.json'));
  assert.ok(errorsOf(await check(dir)).includes('layout-file-unreadable'));
});

test('a blob symlinked outside the layout: blob-symlink, never read', async (t) => {
  const image = smallImage();
  const dir = await imageLayout(t, image);
  const layer = image.layers[0]!.descriptor.digest;
  const outside = join(await tempDir(t), 'secret');
  await writeFile(outside, image.layers[0]!.bytes); // even the right bytes do not make a symlink acceptable
  await unlink(blobFile(dir, layer));
  await symlink(outside, blobFile(dir, layer));
  const report = await check(dir, { deep: true });
  const f = report.findings.find((x) => x.rule === 'blob-symlink');
  assert.ok(f, JSON.stringify(report.findings));
  assert.equal(f.digest, layer);
  assert.equal(report.summary.blobs, image.blobs.length - 1, 'the symlinked blob was not hashed');
});

test('blobs/sha256 symlinked elsewhere: layout-blobs-symlink, once; its blobs are not read nor reported again', async (t) => {
  const image = smallImage();
  const dir = await imageLayout(t, image);
  const elsewhere = join(await tempDir(t), 'sha256');
  await rm(join(dir, 'blobs', 'sha256'), { recursive: true });
  await mkdir(elsewhere);
  await symlink(elsewhere, join(dir, 'blobs', 'sha256'));
  const report = await check(dir);
  assert.deepEqual(errorsOf(report), ['layout-blobs-symlink'], JSON.stringify(report.findings));
  assert.deepEqual(report.findings.filter((f) => f.severity === 'error').map((f) => f.path), ['blobs/sha256']);
});

test('stray files under blobs/: blob-name-invalid, blob-not-regular, blob-unreferenced (info)', async (t) => {
  const image = smallImage();
  const dir = await imageLayout(t, image, {
    extraFiles: { 'blobs/sha256/NOT-A-DIGEST': 'x', 'blobs/sha256/ABCDEF': 'y' },
    blobs: [...image.blobs, blob('unreferenced\n', 'application/octet-stream')],
  });
  await mkdir(join(dir, 'blobs', 'sha256', 'a'.repeat(64)));
  const report = await check(dir);
  assert.deepEqual(errorsOf(report), ['blob-name-invalid', 'blob-not-regular']);
  assert.deepEqual(rulesOf(report, 'info'), ['blob-unreferenced']);
});

test('digest sha256:../../etc/passwd: digest-invalid, and nothing outside the layout is touched', async (t) => {
  const image = smallImage();
  const broken = withManifest(image, (m) => ((m.layers as Array<{ digest: string }>)[0]!.digest = 'sha256:../../etc/passwd'));
  const report = await check(await imageLayout(t, broken), { deep: true });
  const f = report.findings.find((x) => x.rule === 'digest-invalid');
  assert.ok(f);
  assert.equal(f.jsonPath, '$.layers[0].digest');
  const root = await check(await layout(t, { manifests: [{ mediaType: MediaType.ociManifest, digest: 'sha256:../../../etc/passwd', size: 10 }], blobs: [] }));
  assert.ok(errorsOf(root).includes('digest-invalid'));
  assert.ok(!errorsOf(root).includes('blob-missing'), 'an invalid digest is never looked up');
});

test('descriptor fields: size, mediaType, urls, data, annotations, artifactType, platform, unverifiable digests', async (t) => {
  const image = smallImage();
  const cases: Array<[string, (l: Record<string, unknown>) => void]> = [
    ['descriptor-size-invalid', (l) => (l.size = -1)],
    ['descriptor-invalid', (l) => delete l.size],
    ['media-type-invalid', (l) => (l.mediaType = 'not a media type')],
    ['descriptor-url-invalid', (l) => (l.urls = ['not a uri'])],
    ['descriptor-data-invalid', (l) => (l.data = 'e30')],
    ['descriptor-data-mismatch', (l) => (l.data = 'e30=')],
    ['annotations-invalid', (l) => (l.annotations = { a: 1 })],
    ['artifact-type-invalid', (l) => (l.artifactType = 'nope')],
    ['platform-invalid', (l) => (l.platform = { os: 'linux' })],
  ];
  for (const [rule, mutate] of cases) {
    const broken = withManifest(image, (m) => mutate((m.layers as Array<Record<string, unknown>>)[0]!));
    const report = await check(await imageLayout(t, broken));
    assert.ok(errorsOf(report).includes(rule), `${rule}: ${JSON.stringify(report.findings)}`);
    assert.equal(report.findings.find((f) => f.rule === rule)!.path, `blobs/sha256/${broken.descriptor.digest.slice(7)}`);
  }
  const ftp = withManifest(image, (m) => ((m.layers as Array<Record<string, unknown>>)[0]!.urls = ['ftp://example.com/layer']));
  assert.deepEqual(rulesOf(await check(await imageLayout(t, ftp)), 'warning'), ['descriptor-url-scheme']);
  const sha384 = withManifest(image, (m) => (m.annotations = { x: 'y' }));
  const withBlake = { manifests: [tagged(sha384.descriptor, 'a'), { mediaType: 'application/octet-stream', digest: `sha384:${'ab'.repeat(48)}`, size: 1 }], blobs: sha384.blobs };
  const report = await check(await layout(t, withBlake));
  assert.ok(rulesOf(report, 'info').includes('digest-unverifiable'));
});

test('documents: schemaVersion, duplicate keys, manifest mediaType mismatch and absence, missing layers, empty layers', async (t) => {
  const image = smallImage();
  const expect = async (rule: string, broken: ReturnType<typeof withManifest>, severity = 'error') => {
    const report = await check(await imageLayout(t, broken));
    assert.ok(rulesOf(report, severity).includes(rule), `${rule}: ${JSON.stringify(report.findings)}`);
    return report;
  };
  await expect('schema-version-invalid', withManifest(image, (m) => (m.schemaVersion = 1)));
  const dup = await expect('json-duplicate-key', withManifest(image, () => undefined, (s) => s.replace('{"schemaVersion":2,', '{"schemaVersion":2,"schemaVersion":2,')));
  assert.equal(dup.findings.find((f) => f.rule === 'json-duplicate-key')!.jsonPath, '$');
  await expect('json-duplicate-key', withManifest(image, (m) => (m.annotations = { a: 'b' }), (s) => s.replace('{"a":"b"}', '{"a":"b","a":"c"}')));
  const mismatch = await expect('manifest-media-type-mismatch', withManifest(image, (m) => (m.mediaType = MediaType.dockerManifest)));
  assert.equal(mismatch.findings.find((f) => f.rule === 'manifest-media-type-mismatch')!.jsonPath, '$.mediaType');
  await expect('manifest-media-type-missing', withManifest(image, (m) => delete m.mediaType), 'info');
  await expect('manifest-invalid', withManifest(image, (m) => delete m.layers));
  await expect('manifest-invalid', withManifest(image, (m) => (m.config = 'nope')));
  const empty = buildImage({ layers: [], config: { Cmd: ['/bin/sh'] }, history: [] });
  const report = await check(await imageLayout(t, empty));
  assert.deepEqual(rulesOf(report, 'warning'), ['manifest-layers-empty']);
  assert.deepEqual(errorsOf(report), []);
});

test('a document over 4 MiB warns (json-too-large); one over 64 MiB is not read (document-too-large)', async (t) => {
  const image = smallImage();
  const big = withManifest(image, (m) => (m.annotations = { pad: 'x'.repeat(4 * 1024 * 1024 + 10) }));
  const report = await check(await imageLayout(t, big));
  assert.deepEqual(rulesOf(report, 'warning'), ['json-too-large']);
  const dir = await imageLayout(t, image);
  await truncate(blobFile(dir, image.descriptor.digest), 65 * 1024 * 1024); // sparse: costs no disk
  const huge = await check(dir);
  assert.ok(errorsOf(huge).includes('document-too-large'), JSON.stringify(huge.findings));
});

test('indexes: nested index verifies; child mediaType mismatch; manifests missing; null manifests in an OCI layout; depth limit', async (t) => {
  const nested = samples.nested;
  assert.deepEqual(errorsOf(await check(await layout(t, imageSpec(nested.outer)), { deep: true })), []);
  const tooDeep = await check(await layout(t, imageSpec(nested.outer)), { maxDepth: 1 });
  assert.deepEqual(errorsOf(tooDeep), ['index-too-deep']);

  const inner = nested.inner;
  const mismatched = jsonBlob({ ...inner.index, mediaType: MediaType.dockerManifestList }, MediaType.ociIndex);
  const report = await check(await layout(t, { manifests: [mismatched.descriptor], blobs: [mismatched, ...inner.blobs.slice(1)] }));
  assert.deepEqual(errorsOf(report), ['index-media-type-mismatch']);

  const noManifests = jsonBlob({ schemaVersion: 2, mediaType: MediaType.ociIndex }, MediaType.ociIndex);
  assert.deepEqual(errorsOf(await check(await layout(t, { manifests: [noManifests.descriptor], blobs: [noManifests] }))), ['index-invalid']);

  const nullRoot = await check(await layout(t, { manifests: null, blobs: [] }));
  assert.deepEqual(errorsOf(nullRoot), ['index-invalid']);
  const noType = await check(await layout(t, { manifests: [], blobs: [], indexJson: '{"schemaVersion":2,"manifests":[]}' }));
  assert.deepEqual(rulesOf(noType), ['index-media-type-missing']);
  assert.equal(noType.ok, true);
});

test('multi-platform index with an attestation manifest (platform unknown/unknown) verifies clean; a child without platform is noted', async (t) => {
  const multi = samples.multi;
  const report = await check(await layout(t, imageSpec(multi.index)), { deep: true });
  assert.deepEqual(rulesOf(report), []);
  assert.equal(report.summary.blobs, new Set(multi.index.blobs.map((b) => b.descriptor.digest)).size);
  const { platform: _p, ...bare } = multi.amd64.descriptor;
  const index = buildIndex({ manifests: [bare], children: multi.amd64.blobs });
  assert.deepEqual(rulesOf(await check(await layout(t, imageSpec(index)))), ['platform-missing']);
});

test('ambiguous tag: ref-name-ambiguous; bad ref name: annotation-ref-name-invalid', async (t) => {
  const a = samples.base;
  const b = samples.baseV2;
  const report = await check(await layout(t, { manifests: [tagged(a.descriptor, 'x'), tagged(b.descriptor, 'x')], blobs: [...a.blobs, ...b.blobs] }));
  assert.deepEqual(rulesOf(report, 'warning'), ['ref-name-ambiguous']);
  const bad = await check(await layout(t, { manifests: [tagged(a.descriptor, 'a//b')], blobs: a.blobs }));
  assert.deepEqual(rulesOf(bad, 'warning'), ['annotation-ref-name-invalid']);
});

test('artifacts: a subject that is absent is an info; artifactType is required with the empty config', async (t) => {
  const { artifact } = samples.artifact;
  const report = await check(await layout(t, { manifests: [artifact.descriptor], blobs: artifact.blobs }));
  assert.deepEqual(rulesOf(report), ['subject-missing']);
  assert.equal(report.ok, true);
  const f = report.findings[0]!;
  assert.equal(f.jsonPath, '$.subject');
  assert.equal(f.severity, 'info');

  const untyped = buildImage({ layers: [rawLayer('sig', 'application/vnd.example.sig')], configBlob: emptyBlob() });
  assert.deepEqual(errorsOf(await check(await layout(t, { manifests: [untyped.descriptor], blobs: untyped.blobs }))), ['artifact-type-missing']);
  const odd = blob('{ }', MediaType.ociEmpty);
  const oddEmpty = buildImage({ layers: [rawLayer('sig', 'application/vnd.example.sig')], configBlob: odd, artifactType: 'application/vnd.example' });
  assert.deepEqual(rulesOf(await check(await layout(t, { manifests: [oddEmpty.descriptor], blobs: oddEmpty.blobs })), 'warning'), ['empty-descriptor-invalid']);
});

test('configs: rootfs, diff_ids count, history, created, platform, Env, ExposedPorts, Labels', async (t) => {
  const two = [makeLayer([{ path: 'a', content: 'a' }]), makeLayer([{ path: 'b', content: 'b' }])];
  const cases: Array<[string, string, Parameters<typeof smallImage>[0]]> = [
    ['config-invalid', 'error', { configExtra: { os: undefined } }],
    ['config-rootfs-type', 'error', { configExtra: { rootfs: { type: 'tarballs', diff_ids: [] } }, layers: [] }],
    ['config-diff-ids-count', 'error', { layers: two, configExtra: { rootfs: { type: 'layers', diff_ids: [two[0]!.diffId] } }, history: [{ created_by: 'x' }] }],
    ['config-history-mismatch', 'warning', { layers: two, history: [{ created_by: 'only one' }] }],
    ['config-created-invalid', 'error', { created: 'yesterday' }],
    ['config-platform-mismatch', 'warning', { descriptor: { platform: LINUX_ARM64 } }],
    ['config-env-invalid', 'error', { config: { Env: ['NOVALUE'] } }],
    ['config-exposed-port-invalid', 'warning', { config: { ExposedPorts: { http: {} } } }],
    ['config-labels-invalid', 'error', { config: { Labels: { a: 1 } as unknown as Record<string, string> } }],
  ];
  for (const [rule, severity, spec] of cases) {
    const image = smallImage(spec);
    const report = await check(await imageLayout(t, image));
    assert.deepEqual(rulesOf(report, severity).filter((r) => r === rule), [rule], `${rule}: ${JSON.stringify(report.findings)}`);
    const f = report.findings.find((x) => x.rule === rule)!;
    assert.equal(f.path, `blobs/sha256/${image.configBlob.descriptor.digest.slice(7)}`);
    assert.deepEqual(f.chain.slice(0, 1), [image.descriptor.digest]);
  }
});

test('annotations: created, url, base.digest and base.name', async (t) => {
  const cases: Array<[string, Record<string, string>]> = [
    ['annotation-created-invalid', { 'org.opencontainers.image.created': '2024-13-01T00:00:00Z' }],
    ['annotation-url-invalid', { 'org.opencontainers.image.source': 'not a url' }],
    ['annotation-base-digest-invalid', { 'org.opencontainers.image.base.digest': 'sha256:abc', 'org.opencontainers.image.base.name': 'x' }],
    ['annotation-base-name-missing', { 'org.opencontainers.image.base.digest': `sha256:${'a'.repeat(64)}` }],
  ];
  for (const [rule, annotations] of cases) {
    const image = smallImage({ annotations });
    const report = await check(await imageLayout(t, image));
    assert.deepEqual(rulesOf(report), [rule], JSON.stringify(report.findings));
    assert.match(report.findings[0]!.jsonPath!, /^\$\.annotations\["org\.opencontainers\.image\./);
  }
  const good = smallImage({ annotations: { 'org.opencontainers.image.created': '2024-02-29T23:59:60.5+01:00', 'org.opencontainers.image.url': 'https://example.com' } });
  assert.deepEqual(rulesOf(await check(await imageLayout(t, good))), []);
});

test('--shard K/N: every shard checks documents, the shards together hash each other blob exactly once', async (t) => {
  const multi = samples.multi;
  const dir = await layout(t, imageSpec(multi.index));
  const bad = multi.arm64.layers[1]!.descriptor.digest;
  await corruptBlob(dir, bad);
  const whole = await check(dir);
  const shards = await Promise.all([1, 2, 3].map((k) => check(dir, { shard: { index: k, count: 3 } })));
  const documents = 1 + 3 * 2; // the index, and each image's manifest and config
  assert.equal(shards.reduce((n, r) => n + r.summary.blobs - documents, 0), whole.summary.blobs - documents);
  assert.equal(shards.filter((r) => r.findings.some((f) => f.rule === 'blob-digest-mismatch' && f.digest === bad)).length, 1);
  assert.ok(shards.every((r) => r.summary.shard.endsWith('/3')));
});

test('the rule table: ids are kebab-case and every severity is one of three', () => {
  for (const [id, rule] of Object.entries(RULES)) {
    assert.match(id, /^[a-z0-9]+(?:-[a-z0-9]+)+$/);
    assert.ok(['error', 'warning', 'info'].includes(rule.severity));
    assert.ok(rule.description.length > 10);
  }
});

test('a layout directory with no oci-layout is still verified whole', async (t) => {
  const image = smallImage();
  const dir = await imageLayout(t, image, { ociLayout: null });
  await corruptBlob(dir, image.layers[0]!.descriptor.digest);
  assert.deepEqual(errorsOf(await check(dir)), ['blob-digest-mismatch', 'layout-missing-oci-layout']);
});

test('a tag verifies that image only: other images are not read', async (t) => {
  const a = samples.base;
  const b = samples.app;
  const dir = await layout(t, { manifests: [tagged(a.descriptor, 'a'), tagged(b.descriptor, 'b')], blobs: [...a.blobs, ...b.blobs] });
  await corruptBlob(dir, b.layers.at(-1)!.descriptor.digest);
  assert.equal((await check(`oci:${dir}:a`)).ok, true);
  assert.equal((await check(`oci:${dir}:b`)).ok, false);
  assert.equal((await check(dir)).ok, false);
});
