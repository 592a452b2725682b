import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { blobPath } from '../src/model/digest.js';
import { ArchiveStore } from '../src/store/archive.js';
import {
  dockerSave25Files, dockerSaveLegacyFiles, indexJsonBytes, layoutFiles, sampleImages, tagged, tarBuffer, treeEntries,
} from '../testdata/builder.js';
import { check, errorsOf, rulesOf, tempDir } from './verify-fixtures.js';

const { app } = sampleImages();
const TAG = { repoTag: 'example.com/app:latest' };

async function tarOf(t: TestContext, files: Map<string, Buffer>, name = 'image.tar', extra: ReturnType<typeof treeEntries> = []): Promise<string> {
  const path = join(await tempDir(t), name);
  await writeFile(path, await tarBuffer([...treeEntries(files), ...extra]));
  return path;
}

function flip(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  const middle = copy.length >> 1;
  copy[middle] = copy[middle]! ^ 0xff;
  return copy;
}

test('OCI archive: a flipped byte in a layer is found at its entry name', async (t) => {
  const files = layoutFiles({ manifests: [tagged(app.descriptor, 'latest')], blobs: app.blobs });
  const layer = app.layers[2]!.descriptor.digest;
  files.set(blobPath(layer), flip(files.get(blobPath(layer))!));
  const report = await check(`oci-archive:${await tarOf(t, files)}`, { deep: true });
  const f = report.findings.find((x) => x.rule === 'blob-digest-mismatch');
  assert.ok(f);
  assert.equal(f.path, blobPath(layer));
  assert.deepEqual(f.chain, [app.descriptor.digest, layer]);
  assert.equal(report.kind, 'oci-archive');
});

test('a truncated tarball is a finding (archive-invalid, exit 1), not a crash', async (t) => {
  const files = layoutFiles({ manifests: [tagged(app.descriptor, 'latest')], blobs: app.blobs });
  const whole = await tarBuffer(treeEntries(files));
  const path = join(await tempDir(t), 'cut.tar');
  await writeFile(path, whole.subarray(0, Math.floor(whole.length / 2) + 100));
  const report = await check(path);
  assert.deepEqual(errorsOf(report), ['archive-invalid']);
  assert.equal(report.ok, false);
});

test('an entry stored twice with the same bytes: archive-duplicate-entry (warning)', async (t) => {
  const files = layoutFiles({ manifests: [tagged(app.descriptor, 'latest')], blobs: app.blobs });
  const report = await check(await tarOf(t, files, 'dup.tar', [{ name: 'oci-layout', data: files.get('oci-layout')! }]));
  assert.deepEqual(rulesOf(report), ['archive-duplicate-entry']);
});

test('Docker 25 save with "manifests": null: images come from manifest.json and are verified to the layer', async (t) => {
  const files = dockerSave25Files(app, TAG);
  const clean = await check(await tarOf(t, files), { deep: true });
  assert.deepEqual(rulesOf(clean), ['index-manifests-null']);
  assert.equal(clean.kind, 'docker-archive');
  assert.ok(clean.summary.blobs >= 4);
  const layerPath = [...files.keys()].find((k) => k.startsWith('blobs/') && files.get(k)!.length > 2000)!;
  files.set(layerPath, flip(files.get(layerPath)!));
  const broken = await check(await tarOf(t, files), { deep: true });
  assert.ok(errorsOf(broken).includes('blob-digest-mismatch'));
  assert.equal(broken.findings.find((f) => f.rule === 'blob-digest-mismatch')!.path, layerPath);
});

test('legacy docker save: layer.tar files are checked against the diff_ids', async (t) => {
  const files = dockerSaveLegacyFiles(app, TAG);
  assert.deepEqual(rulesOf(await check(await tarOf(t, files), { deep: true })), []);
  const layerTar = [...files.keys()].find((k) => k.endsWith('/layer.tar'))!;
  files.set(layerTar, flip(files.get(layerTar)!));
  const report = await check(await tarOf(t, files));
  assert.ok(errorsOf(report).includes('blob-digest-mismatch'));
});

test('docker save manifest.json: a missing layer file, an invalid manifest.json, a layer count that differs', async (t) => {
  const legacy = dockerSaveLegacyFiles(app, TAG);
  legacy.delete([...legacy.keys()].find((k) => k.endsWith('/layer.tar'))!);
  const missing = await check(await tarOf(t, legacy));
  assert.deepEqual(errorsOf(missing), ['docker-save-entry-missing', 'docker-save-image-skipped']);
  assert.equal(missing.findings.find((f) => f.rule === 'docker-save-entry-missing')!.path, 'manifest.json');

  // Docker 25+ writes a full index.json too; manifest.json is then checked on its own.
  const withIndex = (manifestJson: string) => {
    const files = dockerSave25Files(app, TAG);
    const layout = layoutFiles({ manifests: [tagged(app.descriptor, 'latest')], blobs: app.blobs });
    for (const [k, v] of layout) files.set(k, v);
    files.set('index.json', indexJsonBytes([tagged(app.descriptor, 'latest')]));
    files.set('manifest.json', Buffer.from(manifestJson));
    return files;
  };
  assert.deepEqual(errorsOf(await check(await tarOf(t, withIndex('{"not":"a list"}')))), ['docker-save-manifest-invalid']);
  const entry = JSON.parse(dockerSave25Files(app, TAG).get('manifest.json')!.toString()) as Array<{ Layers: string[] }>;
  entry[0]!.Layers.push(entry[0]!.Layers[0]!);
  assert.deepEqual(errorsOf(await check(await tarOf(t, withIndex(JSON.stringify(entry))))), ['docker-save-image-mismatch', 'docker-save-layers-mismatch']);
});

test('OCI archive with an index.json that is not JSON: json-invalid as for a directory, and every blob still hashed', async (t) => {
  const files = layoutFiles({ manifests: [tagged(app.descriptor, 'latest')], blobs: app.blobs });
  files.set('index.json', Buffer.from('{"schemaVersion": 2, manifests: []}'));
  const path = await tarOf(t, files);
  const report = await check(`oci-archive:${path}`);
  assert.deepEqual(errorsOf(report), ['json-invalid']);
  assert.equal(report.findings.find((f) => f.rule === 'json-invalid')!.path, 'index.json');
  assert.equal(report.summary.blobs, new Set(app.blobs.map((b) => b.descriptor.digest)).size);
  assert.ok(!rulesOf(report).includes('blob-unreferenced'));
  await assert.rejects(ArchiveStore.open(path), /index\.json/, 'other commands still refuse it');
  files.delete('index.json');
  const noIndex = await check(`oci-archive:${await tarOf(t, files)}`);
  assert.deepEqual(rulesOf(noIndex), ['layout-missing-index'], 'no blob is called unreferenced when index.json is missing');
});
