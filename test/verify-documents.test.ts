/** verify's document walk on input real layouts get wrong: BOMs, loops, sizes, artifactType. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MediaType } from '../src/model/media-types.js';
import { blob, buildImage, emptyBlob, rawLayer, tagged } from '../testdata/builder.js';
import { check, errorsOf, imageLayout, layout, rulesOf, smallImage, withManifest } from './verify-fixtures.js';

const BOM = '\ufeff';

test('a UTF-8 byte order mark before index.json or a manifest: json-invalid (Go refuses it too)', async (t) => {
  const image = smallImage();
  const index = `${BOM}${JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [tagged(image.descriptor, 'latest')] })}`;
  const report = await check(await imageLayout(t, image, { indexJson: index }));
  assert.deepEqual(errorsOf(report), ['json-invalid']);
  assert.equal(report.findings.find((f) => f.rule === 'json-invalid')!.path, 'index.json');
  assert.match(report.findings.find((f) => f.rule === 'json-invalid')!.message, /byte order mark/);

  const bommed = withManifest(image, () => undefined, (json) => `${BOM}${json}`);
  const manifest = await check(await imageLayout(t, bommed));
  assert.deepEqual(errorsOf(manifest), ['json-invalid']);
  assert.equal(manifest.findings.find((f) => f.rule === 'json-invalid')!.path, `blobs/sha256/${bommed.descriptor.digest.slice(7)}`);
});

test('an index that lists itself through an unverifiable digest: index-too-deep, not silence', async (t) => {
  const digest = `foo:${'ab'.repeat(20)}`;
  const self = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ mediaType: MediaType.ociIndex, digest, size: 0 }] });
  // The size a descriptor would need is the document's own, which contains it: make them agree.
  let body = self;
  for (let i = 0; i < 3; i++) body = self.replace('"size":0', `"size":${Buffer.byteLength(body)}`);
  const size = Buffer.byteLength(body);
  const dir = await layout(t, { manifests: [{ mediaType: MediaType.ociIndex, digest, size }], blobs: [], extraFiles: { [`blobs/foo/${'ab'.repeat(20)}`]: body } });
  const report = await check(dir);
  const loop = report.findings.find((f) => f.rule === 'index-too-deep');
  assert.ok(loop, JSON.stringify(report.findings));
  assert.equal(loop.jsonPath, '$.manifests[0]');
  assert.deepEqual(loop.chain, [digest, digest]);
});

test('a blob larger than its descriptor says: blob-size-mismatch, and its content is not read', async (t) => {
  const image = smallImage();
  const layer = image.layers[0]!;
  const short = withManifest(image, (m) => ((m.layers as Array<{ size: number }>)[0]!.size = 10));
  const report = await check(await imageLayout(t, short));
  assert.deepEqual(errorsOf(report), ['blob-size-mismatch']);
  assert.equal(report.summary.blobs, short.blobs.length - 1, 'the oversized layer was not hashed');
  assert.ok(report.summary.bytes < layer.bytes.length + 2000);
  assert.deepEqual(errorsOf(await check(await imageLayout(t, short), { deep: true })), ['blob-size-mismatch'], 'nor decompressed');
});

test('derived: a descriptor artifactType differing from its manifest: artifact-type-mismatch (warning)', async (t) => {
  const spec = { layers: [rawLayer('sig', 'application/vnd.example.sig')], configBlob: emptyBlob(), artifactType: 'application/vnd.example.sig' };
  const same = buildImage(spec);
  assert.deepEqual(rulesOf(await check(await layout(t, { manifests: [same.descriptor], blobs: same.blobs }))), []);
  const other = buildImage({ ...spec, descriptor: { artifactType: 'application/vnd.example.other' } });
  const report = await check(await layout(t, { manifests: [other.descriptor], blobs: other.blobs }));
  assert.deepEqual(rulesOf(report, 'warning'), ['artifact-type-mismatch']);
  assert.equal(report.findings[0]!.path, 'index.json');
  assert.equal(report.findings[0]!.jsonPath, '$.manifests[0].artifactType');
  assert.equal(report.ok, true);
  // Without its own artifactType, a manifest's type is its config's mediaType.
  const config = blob('{}', 'application/vnd.example.config+json');
  const byConfig = buildImage({ layers: [rawLayer('x', 'application/vnd.example.x')], configBlob: config, descriptor: { artifactType: 'application/vnd.example.config+json' } });
  assert.deepEqual(rulesOf(await check(await layout(t, { manifests: [byConfig.descriptor], blobs: byConfig.blobs })), 'warning'), []);
});
