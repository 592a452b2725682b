/** verify on docker save tarballs: manifest.json against the images, and broken entries that do not stop the run. */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { blobPath } from '../src/model/digest.js';
import { ArchiveStore } from '../src/store/archive.js';
import { dockerSave25Files, dockerSaveLegacyFiles, sampleImages } from '../testdata/builder.js';
import { plainEntries, rawEntry, tarOf } from './helpers/hostile-tar.js';
import { check, dockerSave25WithIndex, errorsOf, rulesOf, tarFile, tempDir } from './verify-fixtures.js';

const { app, base } = sampleImages();
const TAG = 'example.com/app:latest';

test('Docker 25+ save with a full index.json: a matching manifest.json verifies clean', async (t) => {
  const report = await check(await tarFile(t, dockerSave25WithIndex(app, TAG)), { deep: true });
  assert.deepEqual(rulesOf(report), [], JSON.stringify(report.findings));
  assert.equal(report.kind, 'docker-archive');
});

test('Docker 25+ save: Layers in another order than the manifest: docker-save-image-mismatch per layer', async (t) => {
  const report = await check(await tarFile(t, dockerSave25WithIndex(app, TAG, ([e]) => e!.Layers.reverse())));
  assert.deepEqual(errorsOf(report), ['docker-save-image-mismatch']);
  const at = report.findings.map((f) => f.jsonPath);
  assert.deepEqual(at, ['$[0].Layers[0]', '$[0].Layers[2]']);
  assert.equal(report.findings[0]!.path, 'manifest.json');
});

test('Docker 25+ save: a Config naming a layer: docker-save-config-invalid and docker-save-image-mismatch', async (t) => {
  const report = await check(await tarFile(t, dockerSave25WithIndex(app, TAG, ([e]) => (e!.Config = e!.Layers[0]!))));
  assert.deepEqual(errorsOf(report), ['docker-save-config-invalid', 'docker-save-image-mismatch']);
  assert.ok(report.findings.every((f) => f.jsonPath === '$[0].Config'), JSON.stringify(report.findings));
  const dropped = await check(await tarFile(t, dockerSave25WithIndex(app, TAG, ([e]) => e!.Layers.pop())));
  assert.ok(errorsOf(dropped).includes('docker-save-image-mismatch'));
  const stranger = await check(await tarFile(t, dockerSave25WithIndex(app, TAG, (entries) => entries.push({ ...entries[0]!, Config: blobPath(base.configBlob.descriptor.digest), RepoTags: ['x:y'] }))));
  assert.ok(stranger.findings.some((f) => f.rule === 'docker-save-image-mismatch' && f.jsonPath === '$[1]'), JSON.stringify(stranger.findings));
});

/** Two legacy images in one tarball; the second names a layer file that is not there. */
function twoImagesOneBroken(): { files: Map<string, Buffer>; goodLayer: string } {
  const first = dockerSaveLegacyFiles(app, { repoTag: 'example.com/app:1' });
  const second = dockerSaveLegacyFiles(base, { repoTag: 'example.com/base:1' });
  const entries = [...JSON.parse(first.get('manifest.json')!.toString()), ...JSON.parse(second.get('manifest.json')!.toString())] as Array<{ Layers: string[] }>;
  entries[1]!.Layers.push('missing.tar');
  const files = new Map([...second, ...first]);
  files.set('manifest.json', Buffer.from(JSON.stringify(entries)));
  files.delete('repositories');
  return { files, goodLayer: entries[0]!.Layers.at(-1)! };
}

test('docker save: an image naming a missing file is reported, and the other images are still verified', async (t) => {
  const { files, goodLayer } = twoImagesOneBroken();
  const layer = Buffer.from(files.get(goodLayer)!);
  layer[layer.length >> 1]! ^= 0xff;
  files.set(goodLayer, layer);
  const path = await tarFile(t, files);
  const report = await check(path, { deep: true });
  const errors = errorsOf(report);
  for (const rule of ['docker-save-entry-missing', 'docker-save-image-skipped', 'blob-digest-mismatch']) assert.ok(errors.includes(rule), `${rule}: ${errors}`);
  assert.ok(!errors.includes('archive-invalid'));
  assert.equal(report.findings.find((f) => f.rule === 'docker-save-image-skipped')!.jsonPath, '$[1]');
  assert.equal(report.findings.find((f) => f.rule === 'blob-digest-mismatch')!.path, goodLayer);
  assert.ok(report.summary.blobs >= 3, `hashed ${report.summary.blobs} blobs`);
  assert.ok(!rulesOf(report).includes('blob-unreferenced'), 'an image left out makes "unreferenced" guesswork');
  // Commands other than verify still refuse the tarball, with the reason.
  await assert.rejects(ArchiveStore.open(path), /missing\.tar is not in the archive/);
});

test('docker save with an unusable manifest.json and no index.json: reported, blobs not called unreferenced', async (t) => {
  const files = dockerSaveLegacyFiles(app, { repoTag: TAG });
  files.set('manifest.json', Buffer.from('[{"Config": 1}]'));
  const report = await check(await tarFile(t, files));
  assert.deepEqual(rulesOf(report), ['docker-save-manifest-invalid']);
});

test('manifest.json stored twice with different content says so, not "not in the tarball"', async (t) => {
  const files = dockerSave25Files(app, { repoTag: TAG });
  const path = join(await tempDir(t), 'dup.tar');
  await writeFile(path, tarOf(...plainEntries(files), rawEntry({ name: 'manifest.json', typeflag: '2', linkname: 'nowhere.json' })));
  const report = await check(path);
  const messages = report.findings.map((f) => `${f.rule}: ${f.message}`);
  assert.ok(messages.some((m) => /^docker-save-manifest-invalid: manifest.json occurs 2 times with different content/.test(m)), messages.join('\n'));
  assert.ok(!messages.some((m) => /is not in the tarball/.test(m)), messages.join('\n'));
});
