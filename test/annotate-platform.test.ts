/** annotate's platform checks where the descriptor says nothing: the config's os/architecture decide. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Descriptor } from '../src/model/descriptor.js';
import { openStore } from '../src/store/open.js';
import { LINUX_AMD64, LINUX_ARM64, buildImage, buildIndex, sampleImages, tagged, writeLayout, type BuiltImage } from '../testdata/builder.js';
import { annotateRef } from './helpers/annotate-run.js';
import { scratchDir } from './helpers/scratch.js';
import { diffTrees, snapshotTree } from './helpers/tree-snapshot.js';

const s = sampleImages();
const KEY = 'com.example.team';
const BASE_DIGEST = 'org.opencontainers.image.base.digest';

/** As umoci and skopeo write index.json: entries without a platform. */
function bare(d: Descriptor): Descriptor {
  const { platform: _platform, ...rest } = d;
  return rest;
}

async function scratch(t: TestContext): Promise<(name: string) => string> {
  const { dir, cleanup } = await scratchDir('annotate-platform');
  t.after(cleanup);
  return (name) => join(dir, name);
}

async function layout(dir: string, image: BuiltImage, tag: string): Promise<void> {
  await writeLayout(dir, { manifests: [tagged(bare(image.descriptor), tag)], blobs: image.blobs });
}

/** The app's layers on arm64: its base layers are the sample base's. */
const armApp = buildImage({ platform: LINUX_ARM64, layers: s.app.layers, config: { Cmd: ['/app/main.sh'] } });
const armBase = buildImage({ platform: LINUX_ARM64, layers: s.base.layers, config: { Cmd: ['/bin/hello'] } });

test('--platform on a single image whose entry has no platform goes by its config', async (t) => {
  const at = await scratch(t);
  await layout(at('app'), s.app, 'latest');
  const before = await snapshotTree(at('app'));
  await assert.rejects(annotateRef(`oci:${at('app')}`, { set: { [KEY]: 'x' }, platform: [{ os: 'linux', architecture: 'arm64' }] }), /--platform linux\/arm64: .* is a linux\/amd64 image/);
  assert.deepEqual(diffTrees(before, await snapshotTree(at('app'))), [], 'refused: nothing written');
  const result = await annotateRef(`oci:${at('app')}`, { set: { [KEY]: 'x' }, platform: [LINUX_ARM64, LINUX_AMD64] });
  assert.equal(result.changes.length, 1, 'one of the platforms named is the image\'s');
});

test('--base of another platform is refused for a single-manifest base; from an index base the image\'s platform is taken', async (t) => {
  const at = await scratch(t);
  await layout(at('app'), armApp, 'latest');
  await layout(at('amd-base'), s.base, '1.0');
  const before = await snapshotTree(at('app'));
  const amd = { store: await openStore(at('amd-base')), text: 'amd-base', name: 'example.com/base' };
  await assert.rejects(annotateRef(`oci:${at('app')}`, { base: amd }), /--base amd-base is a linux\/amd64 image, not linux\/arm64\/v8 like the image/);
  assert.deepEqual(diffTrees(before, await snapshotTree(at('app'))), []);

  const both = buildIndex({ manifests: [s.base.descriptor, armBase.descriptor], children: [...s.base.blobs, ...armBase.blobs] });
  await writeLayout(at('bases'), { manifests: [tagged(both.descriptor, '1.0')], blobs: both.blobs });
  const result = await annotateRef(`oci:${at('app')}`, { base: { store: await openStore(at('bases')), text: 'bases', name: 'example.com/base' } });
  const digest = result.changes[0]!.annotations.find((a) => a.key === BASE_DIGEST)?.to;
  assert.equal(digest, armBase.descriptor.digest, 'the arm64 base manifest, found by the image config\'s platform');
});
