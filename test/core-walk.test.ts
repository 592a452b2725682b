/**
 * What the one walk reaches, checked through gc, copy and inspect on the built CLI: descriptors nested in
 * index.json entries, 1.1-rc artifact manifests, JSON documents of unknown types, configs that are not full
 * image configs, and extension descriptors with odd optional fields.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Descriptor } from '../src/model/descriptor.js';
import { MediaType } from '../src/model/media-types.js';
import type { GcResult } from '../src/ops/gc.js';
import { openStore } from '../src/store/open.js';
import { blob, blobFile, buildImage, jsonBlob, makeLayer, tagged, writeLayout, type Blob } from '../testdata/builder.js';
import { describeRun, runOcikit } from './helpers/ocikit-process.js';
import { smallImage } from './helpers/referrer-layout.js';
import { scratchDir } from './helpers/scratch.js';

async function gcJson(layout: string): Promise<GcResult> {
  const r = await runOcikit(['gc', layout, '--json']);
  assert.equal(r.code, 0, describeRun(r));
  return JSON.parse(r.stdout) as GcResult;
}

/** Copies to a new layout and to an oci-archive; returns the digests each destination holds. */
async function copiedBlobs(dir: string, source: string): Promise<Array<Set<string>>> {
  const out: Array<Set<string>> = [];
  for (const dest of [`oci:${join(dir, 'copy')}`, `oci-archive:${join(dir, 'copy.tar')}`]) {
    const r = await runOcikit(['copy', source, dest]);
    assert.equal(r.code, 0, describeRun(r));
    const store = await openStore(dest);
    out.push(new Set((await store.listBlobs()).map((b) => b.digest)));
    await store.close();
  }
  return out;
}

async function layout(t: { after: (fn: () => Promise<void>) => void }, manifests: Descriptor[], blobs: Blob[]) {
  const { dir, cleanup } = await scratchDir('core-walk');
  t.after(cleanup);
  const src = join(dir, 'src');
  await writeLayout(src, { manifests, blobs });
  const orphan = blob('nobody names me', 'application/octet-stream');
  await writeFile(blobFile(src, orphan.descriptor.digest), orphan.bytes);
  return { dir, src, orphan: orphan.descriptor.digest };
}

test('a descriptor inside an index.json entry (platform.compatibilities) is copied, as gc keeps it', async (t) => {
  const image = smallImage('compat');
  const compat = jsonBlob({ features: ['avx2'] }, 'application/vnd.example.compat+json');
  const entry = tagged({ ...image.descriptor, platform: { ...image.descriptor.platform!, compatibilities: compat.descriptor } as never }, 'latest');
  const { dir, src, orphan } = await layout(t, [entry], [...image.blobs, compat]);
  for (const held of await copiedBlobs(dir, `oci:${src}`)) assert.ok(held.has(compat.descriptor.digest), 'the compatibility blob is copied');
  const gc = await gcJson(src);
  assert.deepEqual(gc.removed.digests, [orphan]);
  assert.ok(existsSync(blobFile(src, compat.descriptor.digest)));
});

test('an image-spec 1.1-rc artifact manifest with blobs[] and subject: gc keeps its blobs, copy copies them', async (t) => {
  const image = smallImage('subject');
  const payload = blob('{"spdxVersion":"SPDX-2.3"}', 'application/spdx+json');
  const { platform: _p, ...subject } = image.descriptor;
  const artifactManifest = jsonBlob({
    mediaType: MediaType.ociArtifactManifest, artifactType: 'application/spdx+json', blobs: [payload.descriptor], subject,
  }, MediaType.ociArtifactManifest);
  const { dir, src, orphan } = await layout(t, [tagged(image.descriptor, 'latest'), artifactManifest.descriptor], [...image.blobs, artifactManifest, payload]);
  for (const held of await copiedBlobs(dir, `oci:${src}`)) {
    assert.ok(held.has(artifactManifest.descriptor.digest) && held.has(payload.descriptor.digest), 'the artifact and its blob are copied');
  }
  const tagOnly = await runOcikit(['copy', '--json', `oci:${src}:latest`, `oci:${join(dir, 'tagged')}`]);
  assert.equal(tagOnly.code, 0, describeRun(tagOnly));
  assert.deepEqual((JSON.parse(tagOnly.stdout) as { referrers: Array<{ digest: string }> }).referrers.map((r) => r.digest), [artifactManifest.descriptor.digest],
    'the artifact manifest is a referrer of the image it names as subject');
  const gc = await gcJson(src);
  assert.deepEqual(gc.removed.digests, [orphan]);
});

test('a JSON document of an unknown type is scanned for descriptors; one that does not parse is an opaque blob', async (t) => {
  const image = smallImage('unknown');
  const inner = blob('named only by an unknown document', 'application/octet-stream');
  const unknown = jsonBlob({ mediaType: 'application/vnd.example.bundle.v1+json', parts: [{ part: inner.descriptor }] }, 'application/vnd.example.bundle.v1+json');
  const broken = blob('{"not json', 'application/vnd.example.broken+json');
  const { dir, src, orphan } = await layout(t, [tagged(image.descriptor, 'latest'), unknown.descriptor, broken.descriptor], [...image.blobs, unknown, inner, broken]);
  for (const held of await copiedBlobs(dir, `oci:${src}`)) {
    for (const d of [unknown, inner, broken]) assert.ok(held.has(d.descriptor.digest), `${d.descriptor.mediaType} is copied`);
  }
  const gc = await gcJson(src);
  assert.deepEqual(gc.removed.digests, [orphan]);
  assert.ok(existsSync(blobFile(src, inner.descriptor.digest)));
});

test('a config of the image config type that is not a full image config is walked as JSON: gc, copy and inspect work', async (t) => {
  const built = buildImage({ layers: [makeLayer([{ path: 'x', content: 'x' }])], configBlob: jsonBlob({ foo: 'bar' }, MediaType.ociConfig) });
  const { dir, src, orphan } = await layout(t, [tagged(built.descriptor, 'latest')], built.blobs);
  for (const held of await copiedBlobs(dir, `oci:${src}`)) assert.ok(held.has(built.configBlob.descriptor.digest));
  const inspect = await runOcikit(['inspect', '--json', `oci:${src}`]);
  assert.equal(inspect.code, 0, describeRun(inspect));
  const entry = (JSON.parse(inspect.stdout) as { entries: Array<{ config: Record<string, unknown> }> }).entries[0]!;
  assert.deepEqual(entry.config, built.configBlob.descriptor, 'the config is shown with what it has (no os or architecture)');
  assert.deepEqual((await gcJson(src)).removed.digests, [orphan]);
});

test('an extension descriptor with odd annotations, platform and urls is still one: gc keeps its blob', async (t) => {
  const image = smallImage('odd');
  const extension = blob('extension payload', 'application/vnd.example.thing');
  const odd = { ...extension.descriptor, annotations: { count: 1 }, platform: 'any', urls: 'not a list' };
  const manifest = jsonBlob({ ...image.manifest, 'io.example.extension': odd }, image.descriptor.mediaType, { platform: image.descriptor.platform });
  const { dir, src, orphan } = await layout(t, [tagged(manifest.descriptor, 'latest')], [manifest, image.configBlob, ...image.layers, extension]);
  for (const held of await copiedBlobs(dir, `oci:${src}`)) assert.ok(held.has(extension.descriptor.digest));
  const gc = await gcJson(src);
  assert.deepEqual(gc.removed.digests, [orphan]);
  assert.deepEqual(gc.extensionOnly.map((e) => e.digest), [extension.descriptor.digest]);
});
