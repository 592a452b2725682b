import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { MediaType } from '../src/model/media-types.js';
import { DirWriter } from '../src/store/dir.js';
import { openStore } from '../src/store/open.js';
import { rebase } from '../src/ops/rebase.js';
import {
  FIXED_CREATED, LINUX_AMD64, LINUX_ARM64, blobFile, buildImage, buildIndex, jsonBlob, makeLayer, rawLayer, sampleImages,
  tagged, withMediaType, writeLayout, type BuiltImage, type HistoryEntry,
} from '../testdata/builder.js';
import type { Platform } from '../src/model/descriptor.js';
import { assertCleanError, describeRun, hasCommand, runOcikit, type RunResult } from './helpers/ocikit-process.js';
import { layoutFixture, scratchDir } from './helpers/scratch.js';
import { diffTrees, snapshotTree } from './helpers/tree-snapshot.js';

const s = sampleImages();
const BASE_NAME = 'org.opencontainers.image.base.name';
const BASE_DIGEST = 'org.opencontainers.image.base.digest';
const BUILDPACKS = 'io.buildpacks.lifecycle.metadata';
const v1Top = s.base.layers.at(-1)!.diffId;
const appLayer = s.app.layers.at(-1)!;

const installed = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
function needs(t: TestContext, ...tools: string[]): boolean {
  const missing = tools.filter((tool) => !installed(tool));
  if (missing.length) t.skip(`${missing.join(', ')} not installed`);
  return missing.length === 0;
}

/** A scratch dir with copies of the named fixture layouts. */
async function workspace(t: TestContext, ...layouts: string[]): Promise<(name: string) => string> {
  const { dir, cleanup } = await scratchDir('rebase');
  t.after(cleanup);
  for (const name of layouts) await cp(layoutFixture(name), join(dir, name), { recursive: true });
  return (name) => join(dir, name);
}

async function ok(args: string[]): Promise<RunResult> {
  const r = await runOcikit(args);
  assert.equal(r.code, 0, describeRun(r));
  return r;
}

async function okJson<T = RebaseJson>(args: string[]): Promise<T> {
  return JSON.parse((await ok([...args, '--json'])).stdout) as T;
}

interface RebaseJson {
  after: { digest: string; annotations?: Record<string, string> };
  platforms: Array<{ platform: string; boundary: { method: string; layers: number }; newLayers: Array<{ digest: string; from: string }> }>;
  staleReferrers: Array<{ referrer: string; subject: string; via: string }>;
  copied: { blobs: number; bytes: number };
  warnings: string[];
}

interface Desc { mediaType: string; digest: string; size: number; platform?: Platform; annotations?: Record<string, string> }
interface Manifest { mediaType?: string; config: Desc; layers: Desc[]; annotations?: Record<string, string>; manifests?: Desc[] }
interface Config {
  architecture: string; os: string; variant?: string;
  config: { Env?: string[]; Cmd?: string[]; Labels?: Record<string, string> };
  rootfs: { diff_ids: string[] };
  history?: HistoryEntry[];
}

/** Reads the result with plain fs and JSON, not with ocikit's own code. */
async function readJson<T>(dir: string, digest: string): Promise<T> {
  return JSON.parse(await readFile(blobFile(dir, digest), 'utf8')) as T;
}

async function entry(dir: string, tag: string): Promise<Desc> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Desc[] };
  const found = index.manifests.filter((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag);
  assert.equal(found.length, 1, `one entry tagged ${tag} in ${dir}`);
  return found[0]!;
}

async function image(dir: string, tag: string): Promise<{ manifest: Manifest; config: Config; digest: string }> {
  const d = await entry(dir, tag);
  const manifest = await readJson<Manifest>(dir, d.digest);
  return { manifest, config: await readJson<Config>(dir, manifest.config.digest), digest: d.digest };
}

function assertRebasedOntoV2(manifest: Manifest, config: Config): void {
  assert.deepEqual(manifest.layers.map((l) => l.digest), [...s.baseV2.layers.map((l) => l.descriptor.digest), appLayer.descriptor.digest]);
  assert.deepEqual(config.rootfs.diff_ids, [...s.baseV2.layers.map((l) => l.diffId), appLayer.diffId]);
  assert.equal(manifest.annotations?.[BASE_DIGEST], s.baseV2.descriptor.digest);
  // the image's own config is kept
  assert.deepEqual(config.config.Cmd, ['/app/main.sh']);
  assert.ok(config.config.Env?.includes('APP_ENV=production'));
  assert.equal(config.config.Labels?.['org.opencontainers.image.source'], 'https://example.com/app');
  assert.ok(config.config.Labels?.['moby.buildkit.buildinfo.v1']);
}

/** History: v2's entries, then the app's own (its COPY and CMD), with no base entry twice. */
function assertHistory(config: Config): void {
  const history = config.history!;
  assert.deepEqual(history.slice(0, s.baseV2.config.history!.length), s.baseV2.config.history);
  assert.deepEqual(history.slice(s.baseV2.config.history!.length).map((h) => h.created_by), ['COPY app /app # buildkit', 'CMD ["/app/main.sh"]']);
  assert.equal(history.filter((h) => !h.empty_layer).length, config.rootfs.diff_ids.length);
}

test('rebase app from base v1 to v2 with --old-base: v2 layers then the app layer, config and history right, app layer bytes kept', async (t) => {
  const ws = await workspace(t, 'app', 'base', 'base-v2');
  const appBlobBefore = await readFile(blobFile(ws('app'), appLayer.descriptor.digest));
  const result = await okJson(['rebase', `oci:${ws('app')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`, '--old-base', `oci:${ws('base')}:1.0`]);
  assert.equal(result.platforms[0]!.boundary.method, 'old-base');
  assert.equal(result.platforms[0]!.boundary.layers, 2);
  assert.deepEqual(result.platforms[0]!.newLayers.map((l) => l.from), ['new base', 'new base', 'image']);
  const { manifest, config, digest } = await image(ws('app'), 'latest');
  assert.equal(digest, result.after.digest);
  assertRebasedOntoV2(manifest, config);
  assertHistory(config);
  assert.equal(manifest.annotations?.[BASE_NAME], undefined, 'base-v2 names itself only by the tag 2.0: no base.name (test/rebase-bases.test.ts)');
  assert.equal(manifest.layers.at(-1)!.mediaType, appLayer.descriptor.mediaType);
  assert.deepEqual(await readFile(blobFile(ws('app'), appLayer.descriptor.digest)), appBlobBefore);
  // the patched v2 layer was copied in, verified; the old manifest stays until gc
  assert.deepEqual(await readFile(blobFile(ws('app'), s.baseV2.layers[1]!.descriptor.digest)), s.baseV2.layers[1]!.bytes);
  await readFile(blobFile(ws('app'), s.app.descriptor.digest));
  // buildpacks metadata follows the new base
  const runImage = JSON.parse(config.config.Labels![BUILDPACKS]!).runImage;
  assert.equal(runImage.topLayer, s.baseV2.layers.at(-1)!.diffId);
  assert.equal(runImage.reference, `example.com/base@${s.baseV2.descriptor.digest}`);
  // keys keep their order: the rebased config lists its fields as the original does
  const original = JSON.parse(s.app.configBlob.bytes.toString('utf8')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(config), Object.keys(original));
});

test('old base deleted: --top-layer finds the boundary by diff_id; no option at all uses the buildpacks metadata', async (t) => {
  const ws = await workspace(t, 'app', 'base-v2');
  await cp(ws('app'), ws('app2'), { recursive: true });
  const byTopLayer = await okJson(['rebase', `oci:${ws('app')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`, '--top-layer', v1Top]);
  assert.equal(byTopLayer.platforms[0]!.boundary.method, 'top-layer');
  const byBuildpacks = await okJson(['rebase', `oci:${ws('app2')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`]);
  assert.equal(byBuildpacks.platforms[0]!.boundary.method, 'buildpacks');
  assert.equal(byBuildpacks.after.digest, byTopLayer.after.digest);
  for (const dir of [ws('app'), ws('app2')]) {
    const { manifest, config } = await image(dir, 'latest');
    assertRebasedOntoV2(manifest, config);
    assertHistory(config);
  }
  // rebasing again works from the updated metadata: v2 onto v2 changes nothing
  const again = await okJson(['rebase', `oci:${ws('app2')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`]);
  assert.equal(again.after.digest, byBuildpacks.after.digest);
});

test('--base-layers N; --dry-run prints old and new layers and writes nothing', async (t) => {
  const ws = await workspace(t, 'app', 'base-v2');
  const before = await snapshotTree(ws('app'));
  const dry = await ok(['rebase', `oci:${ws('app')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`, '--base-layers', '2', '--dry-run']);
  assert.match(dry.stdout, /old layers:\n(?:.*old base\n){2}.*image\n\s+new layers:\n(?:.*new base\n){2}.*image\n/);
  assert.ok(dry.stdout.includes(s.baseV2.layers[1]!.descriptor.digest));
  assert.deepEqual(diffTrees(before, await snapshotTree(ws('app'))), []);
  const result = await okJson(['rebase', `oci:${ws('app')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`, '--base-layers', '2']);
  assert.equal(result.platforms[0]!.boundary.method, 'base-layers');
  const { manifest, config } = await image(ws('app'), 'latest');
  assertRebasedOntoV2(manifest, config);
  const bad = await runOcikit(['rebase', `oci:${ws('app')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`, '--base-layers', '7']);
  assertCleanError(bad, [2], /--base-layers 7/);
});

test('refuses an old base that is not a prefix, naming the first differing layer; the layout is left as it was', async (t) => {
  const ws = await workspace(t, 'app', 'base-v2');
  const before = await snapshotTree(ws('app'));
  const r = await runOcikit(['rebase', `oci:${ws('app')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`, '--old-base', `oci:${ws('base-v2')}:2.0`]);
  assertCleanError(r, [1], /layer 1 differs: image has sha256:441bb5475d73.*base has sha256:e21aeeda83d8/);
  assert.deepEqual(diffTrees(before, await snapshotTree(ws('app'))), []);
});

test('nothing tells the boundary: the error lists what was tried and what to pass', async (t) => {
  const ws = await workspace(t, 'base-v2');
  const plain = buildImage({ layers: s.app.layers, config: { Cmd: ['/app/main.sh'] } });
  await writeLayout(ws('plain'), { manifests: [tagged(plain.descriptor, 'latest')], blobs: plain.blobs });
  const r = await runOcikit(['rebase', `oci:${ws('plain')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`]);
  assertCleanError(r, [2], /no org\.opencontainers\.image\.base\.digest annotation.*no io\.buildpacks\.lifecycle\.metadata label.*pass --old-base REF, --top-layer DIFFID or --base-layers N/);
});

test('os/architecture mismatch is refused, and taken from the new base with --force', async (t) => {
  const ws = await workspace(t, 'app', 'base');
  const armBase = buildImage({ platform: LINUX_ARM64, layers: s.baseV2.layers, config: s.baseV2.config.config!, history: s.baseV2.config.history! });
  await writeLayout(ws('arm-base'), { manifests: [tagged(armBase.descriptor, '2.0')], blobs: armBase.blobs });
  const args = ['rebase', `oci:${ws('app')}:latest`, '--new-base', `oci:${ws('arm-base')}:2.0`, '--old-base', `oci:${ws('base')}:1.0`];
  assertCleanError(await runOcikit(args), [1], /new base is linux\/arm64\/v8, the image linux\/amd64.*--force/);
  const r = await ok([...args, '--force']);
  assert.match(r.stderr, /warning: .*architecture, variant differ/);
  const { config } = await image(ws('app'), 'latest');
  assert.equal(config.architecture, 'arm64');
  assert.equal(config.variant, 'v8');
  assert.deepEqual((await entry(ws('app'), 'latest')).platform, LINUX_ARM64);
});

test('base.name/base.digest annotations: old base by digest and new base by name, both found in --base-layout dirs', async (t) => {
  const ws = await workspace(t);
  const annotated = buildImage({
    layers: s.app.layers, config: s.app.config.config!, history: s.app.config.history!,
    annotations: { [BASE_NAME]: 'example.com/base:1.0', [BASE_DIGEST]: s.base.descriptor.digest, 'com.example.keep': 'yes' },
  });
  await writeLayout(ws('app'), { manifests: [tagged(annotated.descriptor, 'latest')], blobs: annotated.blobs });
  // the tag 1.0 moved to the patched image; v1 is still there, untagged
  await writeLayout(ws('bases'), { manifests: [s.base.descriptor, tagged(s.baseV2.descriptor, '1.0')], blobs: [...s.base.blobs, ...s.baseV2.blobs] });
  const noLayout = await runOcikit(['rebase', `oci:${ws('app')}:latest`]);
  assertCleanError(noLayout, [2], /--base-layout/);
  const result = await okJson(['rebase', `oci:${ws('app')}:latest`, '--base-layout', ws('bases')]);
  assert.equal(result.platforms[0]!.boundary.method, 'annotation');
  const { manifest, config } = await image(ws('app'), 'latest');
  assertRebasedOntoV2(manifest, config);
  assertHistory(config);
  assert.equal(manifest.annotations?.[BASE_NAME], 'example.com/base:1.0');
  assert.equal(manifest.annotations?.['com.example.keep'], 'yes');
  assert.deepEqual(Object.keys(manifest.annotations!), [BASE_NAME, BASE_DIGEST, 'com.example.keep']);
});

test('a Docker schema2 image gets the new base layers under Docker media types (same blobs)', async (t) => {
  const ws = await workspace(t, 'base', 'base-v2');
  const dockerGz = (l: (typeof s.base.layers)[number]) => withMediaType(l, MediaType.dockerLayerGzip);
  const app = buildImage({ docker: true, layers: [...s.base.layers.map(dockerGz), dockerGz(appLayer)], config: s.app.config.config!, history: s.app.config.history! });
  await writeLayout(ws('app'), { manifests: [tagged(app.descriptor, 'latest')], blobs: app.blobs });
  await okJson(['rebase', `oci:${ws('app')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`, '--old-base', `oci:${ws('base')}:1.0`]);
  const { manifest } = await image(ws('app'), 'latest');
  assert.equal(manifest.mediaType, MediaType.dockerManifest);
  assert.deepEqual(manifest.layers.map((l) => l.mediaType), Array(3).fill(MediaType.dockerLayerGzip));
  assert.equal(manifest.annotations, undefined);
  assert.deepEqual(manifest.layers.map((l) => l.digest), [...s.baseV2.layers.map((l) => l.descriptor.digest), appLayer.descriptor.digest]);
});

test('interop: umoci unpack shows the patched base and the app; skopeo copies it; oci-image-tool and ocikit verify --deep pass', async (t) => {
  if (!needs(t, 'umoci', 'skopeo', 'oci-image-tool')) return;
  const ws = await workspace(t, 'app', 'base', 'base-v2');
  await ok(['rebase', `oci:${ws('app')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`, '--old-base', `oci:${ws('base')}:1.0`, '-o', `oci:${ws('out')}:rebased`]);
  execFileSync('umoci', ['unpack', '--image', `${ws('out')}:rebased`, ws('bundle')], { stdio: 'pipe' });
  const rootfs = join(ws('bundle'), 'rootfs');
  assert.equal(await readFile(join(rootfs, 'etc/motd'), 'utf8'), 'Welcome to the example base image (v2, patched).\n');
  assert.equal(await readFile(join(rootfs, 'usr/share/base.txt'), 'utf8'), 'base image 2.0\n');
  assert.match(await readFile(join(rootfs, 'app/main.sh'), 'utf8'), /exec \/bin\/hello/);
  assert.match(await readFile(join(rootfs, 'bin/hello'), 'utf8'), /hello from the ocikit base image/);
  execFileSync('skopeo', ['--insecure-policy', 'copy', '-q', `oci:${ws('out')}:rebased`, `oci:${ws('skopeo')}:t`]);
  const validate = spawnSync('oci-image-tool', ['validate', '--type', 'image', ws('out')], { encoding: 'utf8' });
  assert.equal(validate.status, 0, validate.stdout + validate.stderr);
  if (hasCommand('verify')) await ok(['verify', '--deep', ws('out')]);
  else t.diagnostic('ocikit verify is not built yet: skipped verify --deep');
  // -o leaves the source as it was and carries every blob of the result
  assert.equal((await entry(ws('app'), 'latest')).digest, s.app.descriptor.digest);
  assert.deepEqual(await readFile(blobFile(ws('out'), appLayer.descriptor.digest)), appLayer.bytes);
});

test('-o to an oci-archive and a docker-archive: the tarballs hold the rebased image', async (t) => {
  const ws = await workspace(t, 'app', 'base', 'base-v2');
  const common = ['rebase', `oci:${ws('app')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`, '--old-base', `oci:${ws('base')}:1.0`];
  const oci = await okJson([...common, '-o', `oci-archive:${ws('app.oci.tar')}:rebased`]);
  const docker = await okJson([...common, '-o', `docker-archive:${ws('app.docker.tar')}:example.com/app:rebased`]);
  assert.equal(oci.after.digest, docker.after.digest);
  for (const ref of [`oci-archive:${ws('app.oci.tar')}:rebased`, `docker-archive:${ws('app.docker.tar')}`]) {
    const store = await openStore(ref);
    try {
      const [d] = (await store.readIndex()).value.manifests;
      const manifest = JSON.parse((await store.readBlob(d!.digest)).toString('utf8')) as Manifest;
      const layers = manifest.layers.map((l) => l.digest);
      if (store.kind === 'oci-archive') assert.deepEqual(layers, [...s.baseV2.layers.map((l) => l.descriptor.digest), appLayer.descriptor.digest]);
      const config = JSON.parse((await store.readBlob(manifest.config.digest)).toString('utf8')) as Config;
      assert.deepEqual(config.rootfs.diff_ids, [...s.baseV2.layers.map((l) => l.diffId), appLayer.diffId], ref);
    } finally {
      await store.close();
    }
  }
  if (installed('skopeo')) {
    execFileSync('skopeo', ['--insecure-policy', 'copy', '-q', `oci-archive:${ws('app.oci.tar')}:rebased`, `oci:${ws('from-oci-tar')}:t`]);
    execFileSync('skopeo', ['--insecure-policy', 'copy', '-q', `docker-archive:${ws('app.docker.tar')}`, `oci:${ws('from-docker-tar')}:t`]);
  }
});

// ---------------------------------------------------------------- two platforms

const at = (created_by: string, extra: Partial<HistoryEntry> = {}): HistoryEntry => ({ created: FIXED_CREATED, created_by, ...extra });

function platformBase(platform: Platform, version: string): BuiltImage {
  const arch = `${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}`;
  return buildImage({
    platform,
    layers: [
      makeLayer([{ path: 'etc', type: 'dir' }, { path: 'etc/arch', content: `${arch}\n` }]),
      makeLayer([{ path: 'etc', type: 'dir' }, { path: 'etc/motd', content: `base ${version} for ${arch}\n` }]),
    ],
    config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] },
    history: [at('ADD arch'), at('ADD motd'), at('CMD ["/bin/sh"]', { empty_layer: true })],
  });
}

function twoPlatforms() {
  const platforms = [LINUX_AMD64, LINUX_ARM64];
  const v1 = platforms.map((p) => platformBase(p, '1.0'));
  const v2 = platforms.map((p) => platformBase(p, '2.0'));
  const apps = v1.map((base, i) => buildImage({
    platform: platforms[i],
    layers: [...base.layers, makeLayer([{ path: 'app', type: 'dir' }, { path: 'app/run', content: `app for ${platforms[i]!.architecture}\n` }])],
    config: { Env: ['PATH=/bin', 'APP=1'], Cmd: ['/app/run'] },
    history: [...base.config.history!, at('COPY app /app')],
  }));
  const statement = rawLayer(JSON.stringify({ _type: 'https://in-toto.io/Statement/v0.1', subject: [] }), MediaType.inToto);
  const attestation = buildImage({
    platform: { architecture: 'unknown', os: 'unknown' },
    layers: [statement],
    configBlob: jsonBlob({ architecture: 'unknown', os: 'unknown', rootfs: { type: 'layers', diff_ids: [statement.diffId] } }, MediaType.ociConfig),
    descriptor: { annotations: { 'vnd.docker.reference.digest': apps[0]!.descriptor.digest, 'vnd.docker.reference.type': 'attestation-manifest' } },
  });
  const index = (images: BuiltImage[], extra: BuiltImage[] = []) => buildIndex({
    manifests: [...images, ...extra].map((i) => i.descriptor), children: [...images, ...extra].flatMap((i) => i.blobs),
  });
  return { v1: index(v1), v2: index(v2), v2Images: v2, app: index(apps, [attestation]), apps, attestation };
}

test('a two-platform index rebases in one command; the attestation is kept and reported', async (t) => {
  const ws = await workspace(t);
  const m = twoPlatforms();
  await writeLayout(ws('base'), { manifests: [tagged(m.v1.descriptor, '1.0')], blobs: m.v1.blobs });
  await writeLayout(ws('base-v2'), { manifests: [tagged(m.v2.descriptor, '2.0')], blobs: m.v2.blobs });
  await writeLayout(ws('app'), { manifests: [tagged(m.app.descriptor, 'latest')], blobs: m.app.blobs });
  const result = await okJson(['rebase', `oci:${ws('app')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`, '--old-base', `oci:${ws('base')}:1.0`]);
  assert.deepEqual(result.platforms.map((p) => p.platform), ['linux/amd64', 'linux/arm64/v8']);
  assert.deepEqual(result.staleReferrers.map((r) => [r.referrer, r.subject]), [[m.attestation.descriptor.digest, m.apps[0]!.descriptor.digest]]);
  const top = await entry(ws('app'), 'latest');
  assert.equal(top.digest, result.after.digest);
  const index = await readJson<Manifest>(ws('app'), top.digest);
  assert.equal(index.manifests!.length, 3);
  assert.deepEqual(index.manifests![2], m.attestation.descriptor);
  for (const [i, child] of index.manifests!.slice(0, 2).entries()) {
    assert.deepEqual(child.platform, m.apps[i]!.descriptor.platform);
    const manifest = await readJson<Manifest>(ws('app'), child.digest);
    const config = await readJson<Config>(ws('app'), manifest.config.digest);
    const v2 = m.v2Images[i]!;
    assert.deepEqual(manifest.layers.map((l) => l.digest), [...v2.layers.map((l) => l.descriptor.digest), m.apps[i]!.layers[2]!.descriptor.digest]);
    assert.equal(manifest.annotations?.[BASE_DIGEST], v2.descriptor.digest);
    assert.deepEqual(config.rootfs.diff_ids, [...v2.layers.map((l) => l.diffId), m.apps[i]!.layers[2]!.diffId]);
    assert.deepEqual(config.history!.map((h) => h.created_by), ['ADD arch', 'ADD motd', 'CMD ["/bin/sh"]', 'COPY app /app']);
  }
  if (installed('skopeo')) execFileSync('skopeo', ['--insecure-policy', 'copy', '-q', '--all', `oci:${ws('app')}:latest`, `oci:${ws('copy')}:t`]);
});

test('a platform missing from the new base is an error unless --platform limits the rebase', async (t) => {
  const ws = await workspace(t);
  const m = twoPlatforms();
  await writeLayout(ws('app'), { manifests: [tagged(m.app.descriptor, 'latest')], blobs: m.app.blobs });
  const amdOnly = m.v2Images[0]!;
  const amdIndex = buildIndex({ manifests: [amdOnly.descriptor], children: amdOnly.blobs });
  await writeLayout(ws('base-v2'), { manifests: [tagged(amdIndex.descriptor, '2.0')], blobs: amdIndex.blobs });
  const before = await snapshotTree(ws('app'));
  const args = ['rebase', `oci:${ws('app')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`, '--base-layers', '2'];
  assertCleanError(await runOcikit(args), [2], /has no linux\/arm64\/v8 image/);
  assert.deepEqual(diffTrees(before, await snapshotTree(ws('app'))), []);
  const result = await okJson([...args, '--platform', 'linux/amd64']);
  assert.deepEqual(result.platforms.map((p) => p.platform), ['linux/amd64']);
  const index = await readJson<Manifest>(ws('app'), (await entry(ws('app'), 'latest')).digest);
  assert.notEqual(index.manifests![0]!.digest, m.apps[0]!.descriptor.digest);
  assert.deepEqual(index.manifests![1], m.apps[1]!.descriptor);
});

test('library: rebase() through a DirWriter into a fresh layout, other tags of the destination kept', async (t) => {
  const ws = await workspace(t, 'app', 'base', 'base-v2', 'multi');
  const [app, oldBase, newBase] = await Promise.all([openStore(`oci:${ws('app')}`), openStore(`oci:${ws('base')}`), openStore(`oci:${ws('base-v2')}`)]);
  const dest = await openStore(`oci:${ws('multi')}`);
  const writer = await DirWriter.open(ws('multi'));
  const result = await rebase(app, writer, {
    newBase: { store: newBase, selector: { tag: '2.0' }, name: 'example.com/base:2.0' },
    oldBase: { store: oldBase },
    output: { tag: 'rebased', index: await dest.readIndex() },
  });
  // multi already holds the shared base layer: only v2's patched layer and the app layer are copied
  assert.deepEqual(result.copied, { blobs: 2, bytes: s.baseV2.layers[1]!.descriptor.size + appLayer.descriptor.size });
  assert.equal((await entry(ws('multi'), 'multi')).digest, s.multi.index.descriptor.digest);
  const { manifest, config } = await image(ws('multi'), 'rebased');
  assertRebasedOntoV2(manifest, config);
  assert.equal(manifest.annotations?.[BASE_NAME], 'example.com/base:2.0');
});

test('in place: only the named tag moves; a referrer of the old manifest is kept and reported', async (t) => {
  const ws = await workspace(t, 'artifact', 'base-v2');
  await ok(['tag', `oci:${ws('artifact')}:latest`, 'pinned']);
  const result = await okJson(['rebase', `oci:${ws('artifact')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`, '--base-layers', '0']);
  assert.deepEqual(result.staleReferrers, [{ referrer: s.artifact.artifact.descriptor.digest, subject: s.artifact.image.descriptor.digest, via: 'subject' }]);
  assert.equal((await entry(ws('artifact'), 'pinned')).digest, s.artifact.image.descriptor.digest);
  const { manifest, config } = await image(ws('artifact'), 'latest');
  assert.deepEqual(manifest.layers.map((l) => l.digest), [...s.baseV2.layers.map((l) => l.descriptor.digest), s.artifact.image.layers[0]!.descriptor.digest]);
  assert.deepEqual(config.history!.map((h) => h.created_by), [...s.baseV2.config.history!.map((h) => h.created_by), 'ADD signed.txt / # buildkit']);
  const index = JSON.parse(await readFile(join(ws('artifact'), 'index.json'), 'utf8')) as { manifests: Desc[] };
  assert.ok(index.manifests.some((d) => d.digest === s.artifact.artifact.descriptor.digest), 'the referrer entry stays');
});

test('a corrupt new base layer fails the copy and leaves the image layout exactly as it was', async (t) => {
  const ws = await workspace(t, 'app', 'base', 'base-v2');
  const patched = s.baseV2.layers[1]!.descriptor.digest;
  const file = blobFile(ws('base-v2'), patched);
  const bytes = await readFile(file);
  bytes[bytes.length >> 1]! ^= 0xff;
  await writeFile(file, bytes);
  const before = await snapshotTree(ws('app'));
  const r = await runOcikit(['rebase', `oci:${ws('app')}:latest`, '--new-base', `oci:${ws('base-v2')}:2.0`, '--old-base', `oci:${ws('base')}:1.0`]);
  assertCleanError(r, [1], new RegExp(`${patched}.*content digest`));
  assert.deepEqual(diffTrees(before, await snapshotTree(ws('app'))), []);
});

test('in place, a platform manifest named by digest: its parent index is rewritten and the attestation above it reported', async (t) => {
  const ws = await workspace(t, 'multi', 'base-v2');
  const amd64 = s.multi.amd64.descriptor.digest;
  const result = await okJson(['rebase', `oci:${ws('multi')}@${amd64}`, '--new-base', `oci:${ws('base-v2')}:2.0`, '--base-layers', '1']);
  assert.deepEqual(result.staleReferrers, [{ referrer: s.multi.attestation.descriptor.digest, subject: amd64, via: 'vnd.docker.reference.digest' }]);
  const index = await readJson<Manifest>(ws('multi'), (await entry(ws('multi'), 'multi')).digest);
  assert.equal(index.manifests![0]!.digest, result.after.digest);
  assert.deepEqual(index.manifests!.slice(1), [s.multi.arm64.descriptor, s.multi.attestation.descriptor]);
  const manifest = await readJson<Manifest>(ws('multi'), result.after.digest);
  assert.deepEqual(manifest.layers.map((l) => l.digest), [...s.baseV2.layers.map((l) => l.descriptor.digest), s.multi.amd64.layers[1]!.descriptor.digest]);
});
