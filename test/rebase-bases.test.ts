/** rebase: which name and digest the new base is recorded by, and refusing to "rebase" onto the old base. */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { blobFile, buildImage, dockerSaveLegacy, sampleImages, tagged, writeLayout } from '../testdata/builder.js';
import { assertCleanError, describeRun, type RunResult } from './helpers/ocikit-process.js';
import { runSourceCli } from './helpers/annotate-run.js';
import { copyLayout, scratchDir } from './helpers/scratch.js';
import { diffTrees, snapshotTree } from './helpers/tree-snapshot.js';

const s = sampleImages();
const BASE_NAME = 'org.opencontainers.image.base.name';
const BASE_DIGEST = 'org.opencontainers.image.base.digest';
const BUILDPACKS = 'io.buildpacks.lifecycle.metadata';

interface Manifest { config: { digest: string }; layers: Array<{ digest: string }>; annotations?: Record<string, string> }

async function scratch(t: TestContext): Promise<(name: string) => string> {
  const { dir, cleanup } = await scratchDir('rebase-bases');
  t.after(cleanup);
  for (const name of ['app', 'base', 'base-v2']) await copyLayout(name, join(dir, name));
  return (name) => join(dir, name);
}

async function rebased(args: string[]): Promise<{ run: RunResult; manifest: Manifest; dir: string }> {
  const run = await runSourceCli(['rebase', ...args, '--json']);
  assert.equal(run.code, 0, describeRun(run));
  const { after } = JSON.parse(run.stdout) as { after: { digest: string } };
  const dir = args[0]!.replace(/^oci:/, '').replace(/:[^/]*$/, '');
  return { run, manifest: JSON.parse(await readFile(blobFile(dir, after.digest), 'utf8')) as Manifest, dir };
}

test('base.name is the new base\'s full name or --base-name, never a bare tag; a name short of a registry is warned about', async (t) => {
  const at = await scratch(t);
  let runs = 0;
  const onto = async (newBase: string, ...more: string[]) => {
    const app = await copyLayout('app', at(`app${++runs}`));
    return rebased([`oci:${app}:latest`, '--new-base', newBase, '--old-base', `oci:${at('base')}:1.0`, ...more]);
  };

  const bare = await onto(`oci:${at('base-v2')}:2.0`);
  assert.equal(bare.manifest.annotations?.[BASE_NAME], undefined, 'a tag alone is no base.name');
  assert.equal(bare.manifest.annotations?.[BASE_DIGEST], s.baseV2.descriptor.digest);
  assert.match(bare.run.stderr, /warning: .*base\.name left out: the new base .* names itself only by the tag "2\.0"; pass --base-name REPOSITORY/);

  const given = await onto(`oci:${at('base-v2')}:2.0`, '--base-name', 'registry.example.com/base');
  assert.equal(given.manifest.annotations?.[BASE_NAME], 'registry.example.com/base:2.0', 'REPOSITORY takes the new base\'s tag');
  assert.equal(given.run.stderr, '');

  const short = await onto(`oci:${at('base-v2')}:2.0`, '--base-name', 'base');
  assert.equal(short.manifest.annotations?.[BASE_NAME], 'base:2.0');
  assert.match(short.run.stderr, /warning: .*base\.name="base:2\.0" is not fully qualified \(did you mean docker\.io\/library\/base:2\.0\?\)/);

  const named = { ...s.baseV2.descriptor, annotations: { 'io.containerd.image.name': 'registry.example.com/base:2.0', 'org.opencontainers.image.ref.name': '2.0' } };
  await writeLayout(at('named'), { manifests: [named], blobs: s.baseV2.blobs });
  const full = await onto(`oci:${at('named')}:2.0`);
  assert.equal(full.manifest.annotations?.[BASE_NAME], 'registry.example.com/base:2.0', 'the entry\'s containerd name');
  assertCleanError(await runSourceCli(['rebase', `oci:${at('app')}:latest`, '--new-base', `oci:${at('base-v2')}:2.0`, '--base-layers', '2', '--base-name', 'Not A Name']), [2], /--base-name "Not A Name" is not an image reference/);
});

test('a legacy docker-save new base: base.name from its RepoTag, no base.digest (its manifest is made up), and a note says so', async (t) => {
  const at = await scratch(t);
  await writeFile(at('v2.tar'), await dockerSaveLegacy(s.baseV2, { repoTag: 'example.com/base:2.0' }));
  const { run, manifest, dir } = await rebased([`oci:${at('app')}:latest`, '--new-base', `docker-archive:${at('v2.tar')}`, '--old-base', `oci:${at('base')}:1.0`]);
  assert.equal(manifest.annotations?.[BASE_NAME], 'example.com/base:2.0');
  assert.equal(manifest.annotations?.[BASE_DIGEST], undefined);
  const { notes } = JSON.parse(run.stdout) as { notes: string[] };
  assert.equal(notes.length, 1);
  assert.ok(notes[0]!.endsWith(`${BASE_DIGEST} not set: the new base ${at('v2.tar')} is a legacy docker-save tarball: ocikit made its manifest up from manifest.json, so that digest exists in no registry`), notes[0]);
  const config = JSON.parse(await readFile(blobFile(dir, manifest.config.digest), 'utf8')) as { config: { Labels: Record<string, string> } };
  const runImage = (JSON.parse(config.config.Labels[BUILDPACKS]!) as { runImage: Record<string, unknown> }).runImage;
  assert.equal(runImage.topLayer, s.baseV2.layers.at(-1)!.diffId);
  assert.equal(runImage.reference, undefined, 'no reference to a digest that exists nowhere');
  const text = await runSourceCli(['rebase', `oci:${at('app')}:latest`, '--new-base', `docker-archive:${at('v2.tar')}`, '--base-layers', '2', '--dry-run']);
  assert.match(text.stdout, /^note: .*base\.digest not set: .* legacy docker-save tarball/m);
});

test('without --new-base, a base.name that finds the old base again is refused, listing the other tags found', async (t) => {
  const at = await scratch(t);
  const annotated = buildImage({
    layers: s.app.layers, config: s.app.config.config!, history: s.app.config.history!,
    annotations: { [BASE_NAME]: 'example.com/base:1.0', [BASE_DIGEST]: s.base.descriptor.digest },
  });
  await writeLayout(at('img'), { manifests: [tagged(annotated.descriptor, 'latest')], blobs: annotated.blobs });
  const other = { ...s.base.descriptor, annotations: { 'io.containerd.image.name': 'example.com/other:9', 'org.opencontainers.image.ref.name': '9' } };
  await writeLayout(at('bases'), {
    manifests: [tagged(s.base.descriptor, '1.0'), tagged(s.baseV2.descriptor, '2.0'), other],
    blobs: [...s.base.blobs, ...s.baseV2.blobs],
  });
  const before = await snapshotTree(at('img'));
  const r = await runSourceCli(['rebase', `oci:${at('img')}:latest`, '--base-layout', at('bases')]);
  assertCleanError(r, [2], new RegExp(`base\\.name example\\.com/base:1\\.0 names the image's own base .* so the rebase would change nothing; pass --new-base REF \\(other tags there: ${at('bases')}:2\\.0\\)`));
  assert.deepEqual(diffTrees(before, await snapshotTree(at('img'))), [], 'refused: nothing written');

  // No base.digest: the boundary comes from the buildpacks label, and the layers tell it is the same base.
  const byLabel = buildImage({ layers: s.app.layers, config: s.app.config.config!, annotations: { [BASE_NAME]: 'example.com/base:1.0' } });
  await writeLayout(at('bp'), { manifests: [tagged(byLabel.descriptor, 'latest')], blobs: byLabel.blobs });
  assertCleanError(await runSourceCli(['rebase', `oci:${at('bp')}:latest`, '--base-layout', at('bases')]), [2], /names the image's own base/);

  const { manifest } = await rebased([`oci:${at('img')}:latest`, '--base-layout', at('bases'), '--new-base', `oci:${at('bases')}:2.0`, '--base-name', 'example.com/base']);
  assert.deepEqual(manifest.layers.map((l) => l.digest).slice(0, 2), s.baseV2.layers.map((l) => l.descriptor.digest));
  assert.equal(manifest.annotations?.[BASE_NAME], 'example.com/base:2.0');
});
