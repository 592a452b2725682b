/** Docker schema2 documents are read with their own schemas: their fields are checked, nothing is stripped. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dockerImageConfigSchema, dockerManifestListSchema, dockerManifestSchema } from '../src/model/docker-schema2.js';
import { MediaType } from '../src/model/media-types.js';
import { readDocument } from '../src/graph/read.js';
import { rootNodes, walk } from '../src/graph/walk.js';
import { openStore } from '../src/store/open.js';
import { layoutFixture } from './helpers/scratch.js';

const descriptor = { mediaType: MediaType.dockerLayerGzip, digest: `sha256:${'a'.repeat(64)}`, size: 1 };

test('the docker-types fixture walks through the schema2 schemas, unknown fields kept', async () => {
  const store = await openStore(`oci:${layoutFixture('docker-types')}`);
  const kinds: string[] = [];
  await walk(store, rootNodes((await store.readIndex()).value), async (node) => {
    const parsed = await readDocument(store, node.descriptor);
    if (parsed) kinds.push(`${parsed.kind} ${node.descriptor.mediaType}`);
  });
  assert.ok(kinds.includes(`manifest ${MediaType.dockerManifest}`), kinds.join(', '));
  assert.ok(kinds.includes(`config ${MediaType.dockerConfig}`), kinds.join(', '));
});

test('schema2 shapes: required fields are checked, Docker-only and unknown fields pass through', () => {
  const manifest = { schemaVersion: 2, mediaType: MediaType.dockerManifest, config: descriptor, layers: [descriptor], 'x-extra': 1 };
  assert.deepEqual(dockerManifestSchema.parse(manifest), manifest);
  assert.equal(dockerManifestSchema.safeParse({ ...manifest, layers: 'nope' }).success, false);
  assert.equal(dockerManifestListSchema.safeParse({ schemaVersion: 2, manifests: [{ ...descriptor, digest: 'sha256:../x' }] }).success, false);
  const config = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, container_config: { Hostname: 'h' }, docker_version: '24.0.7' };
  assert.deepEqual(dockerImageConfigSchema.parse(config), config);
  assert.equal(dockerImageConfigSchema.safeParse({ ...config, docker_version: 24 }).success, false);
});
