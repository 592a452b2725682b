import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import type { Descriptor } from '../src/model/descriptor.js';
import { REF_NAME } from '../src/model/keys.js';
import { EMPTY_JSON_DIGEST, blobPath, digestFromBlobPath, digestOf } from '../src/model/digest.js';
import { dockerRepositoriesSchema, dockerSaveManifestSchema } from '../src/model/docker-save.js';
import { imageConfigSchema, type ImageConfig } from '../src/model/image-config.js';
import { imageIndexSchema, type ImageIndex } from '../src/model/image-index.js';
import { imageManifestSchema, type ImageManifest } from '../src/model/image-manifest.js';
import { MediaType, mediaTypeInfo } from '../src/model/media-types.js';
import { readEntry, scanTar } from '../src/store/tar-format.js';
import {
  FIXTURE_DIRS,
  buildFixtures,
  buildImage,
  corruptBlob,
  fixtureFiles,
  makeLayer,
  readTree,
  sampleImages,
  tagged,
  writeLayout,
  zstdRaw,
} from '../testdata/builder.js';

const TESTDATA = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'testdata');
const LAYOUTS = ['base', 'base-v2', 'app', 'multi', 'nested', 'artifact', 'docker-types', 'zstd', 'whiteouts'];
const layoutDir = (name: string): string => join(TESTDATA, 'layouts', name);

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'ocikit-fixtures-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function committedFiles(): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const d of FIXTURE_DIRS) {
    for (const [name, bytes] of await readTree(join(TESTDATA, d))) out.set(`${d}/${name}`, bytes);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Layout walking
// ---------------------------------------------------------------------------

function uncompressed(layer: Descriptor, bytes: Buffer): Buffer {
  const compression = mediaTypeInfo(layer.mediaType)?.compression ?? 'none';
  if (compression === 'gzip') return gunzipSync(bytes);
  if (compression === 'zstd') return Buffer.from(zstdDecompress(bytes));
  return bytes;
}

interface Walk {
  problems: string[];
  reached: Set<string>;
  manifests: Map<string, ImageManifest>;
  configs: Map<string, ImageConfig>;
  indexes: Map<string, ImageIndex>;
  /** Manifest digest → how many indexes deep it sits (index.json = 0). */
  depth: Map<string, number>;
}

/** Checks digest, size, schemas and diff_ids of everything reachable from index.json; collects problems. */
async function walkLayout(dir: string): Promise<Walk> {
  const w: Walk = { problems: [], reached: new Set(), manifests: new Map(), configs: new Map(), indexes: new Map(), depth: new Map() };
  const read = async (d: Descriptor, where: string): Promise<Buffer | undefined> => {
    w.reached.add(d.digest);
    let bytes: Buffer;
    try {
      bytes = await readFile(join(dir, ...blobPath(d.digest).split('/')));
    } catch {
      w.problems.push(`${where}: blob ${d.digest} missing`);
      return undefined;
    }
    if (bytes.length !== d.size) w.problems.push(`${where}: size ${d.size} but blob has ${bytes.length} bytes`);
    if (digestOf(bytes) !== d.digest) w.problems.push(`${where}: blob ${d.digest} hashes to ${digestOf(bytes)}`);
    return bytes;
  };
  const visit = async (d: Descriptor, where: string, depth: number): Promise<void> => {
    const bytes = await read(d, where);
    if (!bytes) return;
    const kind = mediaTypeInfo(d.mediaType)?.kind;
    if (kind === 'index') {
      const index = imageIndexSchema.parse(JSON.parse(bytes.toString('utf8')));
      w.indexes.set(d.digest, index);
      for (const [i, child] of index.manifests.entries()) await visit(child, `${where} > manifests[${i}]`, depth + 1);
      return;
    }
    if (kind !== 'manifest') {
      w.problems.push(`${where}: unexpected media type ${d.mediaType} in an index`);
      return;
    }
    const manifest = imageManifestSchema.parse(JSON.parse(bytes.toString('utf8')));
    w.manifests.set(d.digest, manifest);
    w.depth.set(d.digest, depth);
    if (manifest.mediaType !== d.mediaType) w.problems.push(`${where}: manifest mediaType ${manifest.mediaType} ≠ descriptor ${d.mediaType}`);
    const configBytes = await read(manifest.config, `${where} > config`);
    const layers: Buffer[] = []; // sparse: index i is layer i when it could be read
    for (const [i, layer] of manifest.layers.entries()) {
      const b = await read(layer, `${where} > layers[${i}]`);
      if (!b) continue;
      try {
        layers[i] = uncompressed(layer, b);
      } catch (err) {
        w.problems.push(`${where} > layers[${i}]: cannot decompress (${(err as Error).message})`);
      }
    }
    if (manifest.subject) await read(manifest.subject, `${where} > subject`);
    if (!configBytes || mediaTypeInfo(manifest.config.mediaType)?.kind !== 'config') return;
    if (!d.platform) w.problems.push(`${where}: image manifest descriptor has no platform`);
    const config = imageConfigSchema.parse(JSON.parse(configBytes.toString('utf8')));
    w.configs.set(d.digest, config);
    if (d.platform && (d.platform.os !== config.os || d.platform.architecture !== config.architecture)) {
      w.problems.push(`${where}: descriptor platform does not match the config`);
    }
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== manifest.layers.length) w.problems.push(`${where}: ${diffIds.length} diff_ids for ${manifest.layers.length} layers`);
    layers.forEach((tar, i) => {
      if (digestOf(tar) !== diffIds[i]) w.problems.push(`${where} > layers[${i}]: diff_id ${diffIds[i]} but content is ${digestOf(tar)}`);
    });
    if (config.history) {
      const nonEmpty = config.history.filter((h) => !h.empty_layer).length;
      if (nonEmpty !== manifest.layers.length) w.problems.push(`${where}: ${nonEmpty} non-empty history entries for ${manifest.layers.length} layers`);
    }
  };
  const layout = await readFile(join(dir, 'oci-layout'), 'utf8');
  if (layout !== '{"imageLayoutVersion":"1.0.0"}') w.problems.push(`oci-layout is ${layout}`);
  const top = imageIndexSchema.parse(JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')));
  for (const [i, d] of top.manifests.entries()) await visit(d, `index.json > manifests[${i}]`, 0);
  return w;
}

/** Every blob file hashes to its name; returns the digests present. */
async function checkBlobFiles(dir: string): Promise<string[]> {
  const names = await readdir(join(dir, 'blobs', 'sha256'));
  for (const name of names) {
    const bytes = await readFile(join(dir, 'blobs', 'sha256', name));
    assert.equal(digestOf(bytes), `sha256:${name}`, `${dir}: blob ${name} does not hash to its name`);
  }
  return names.map((n) => `sha256:${n}`);
}

/** Entry names of an uncompressed tar (ustar headers only, as the builder writes them). */
function tarNames(tar: Buffer): { name: string; mode: number; size: number }[] {
  const out: { name: string; mode: number; size: number }[] = [];
  for (let off = 0; off + 512 <= tar.length; ) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const field = (s: number, e: number) => h.toString('utf8', s, e).replace(/\0.*$/s, '');
    const prefix = field(345, 500);
    const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
    const size = parseInt(field(124, 136), 8);
    out.push({ name, mode: parseInt(field(100, 108), 8), size });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

async function tarFiles(path: string): Promise<Map<string, Buffer>> {
  const index = await scanTar(path);
  const out = new Map<string, Buffer>();
  for (const e of index.entries) if (e.type === 'file') out.set(e.name, await readEntry(path, e));
  return out;
}

const json = (b: Buffer | undefined): unknown => JSON.parse(b!.toString('utf8'));

// ---------------------------------------------------------------------------
// Reproducibility
// ---------------------------------------------------------------------------

test('rebuilding into a temp dir reproduces every committed fixture byte for byte', async () => {
  const committed = await committedFiles();
  assert.ok(committed.size > 0, 'no committed fixtures; run npm run fixtures');
  await withTempDir(async (dir) => {
    await buildFixtures(dir);
    const rebuilt = await committedFilesAt(dir);
    assert.deepEqual([...rebuilt.keys()], [...committed.keys()], 'file sets differ');
    for (const [name, bytes] of committed) assert.ok(rebuilt.get(name)!.equals(bytes), `${name} differs from a fresh build`);
  });
  let total = 0;
  for (const b of committed.values()) total += b.length;
  assert.ok(total < 512 * 1024, `fixtures are ${total} bytes`);
});

async function committedFilesAt(root: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const d of FIXTURE_DIRS) for (const [name, bytes] of await readTree(join(root, d))) out.set(`${d}/${name}`, bytes);
  return out;
}

test('the build ignores SOURCE_DATE_EPOCH and is stable across runs', async () => {
  const first = await fixtureFiles();
  const saved = process.env.SOURCE_DATE_EPOCH;
  process.env.SOURCE_DATE_EPOCH = '12345';
  try {
    const second = await fixtureFiles();
    assert.deepEqual([...second.keys()], [...first.keys()]);
    for (const [name, bytes] of first) assert.ok(second.get(name)!.equals(bytes), name);
  } finally {
    if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
    else process.env.SOURCE_DATE_EPOCH = saved;
  }
  assert.equal(process.env.SOURCE_DATE_EPOCH, saved);
});

// ---------------------------------------------------------------------------
// Layout integrity
// ---------------------------------------------------------------------------

for (const name of LAYOUTS) {
  test(`layouts/${name}: blobs hash to their names, descriptors and diff_ids are right, no stray blobs`, async () => {
    const dir = layoutDir(name);
    const present = await checkBlobFiles(dir);
    const w = await walkLayout(dir);
    assert.deepEqual(w.problems, []);
    assert.deepEqual([...w.reached].sort(), [...present].sort(), 'blobs on disk ≠ blobs reachable from index.json');
  });
}

test('base: two gzip layers, config fields, tag 1.0', async () => {
  const w = await walkLayout(layoutDir('base'));
  const top = imageIndexSchema.parse(json(await readFile(join(layoutDir('base'), 'index.json'))));
  assert.equal(top.manifests.length, 1);
  assert.equal(top.manifests[0]!.annotations?.[REF_NAME], '1.0');
  const [manifest] = [...w.manifests.values()];
  const [config] = [...w.configs.values()];
  assert.ok(manifest && config);
  assert.equal(manifest.annotations, undefined);
  assert.deepEqual(manifest.layers.map((l) => l.mediaType), [MediaType.ociLayerGzip, MediaType.ociLayerGzip]);
  assert.equal(config.created, '2024-01-01T00:00:00Z');
  assert.equal(config.architecture, 'amd64');
  assert.equal(config.os, 'linux');
  const labels = config.config?.Labels ?? {};
  for (const key of ['org.label-schema.vcs-url', 'org.label-schema.build-date', 'org.opencontainers.image.source']) assert.ok(labels[key], key);
  assert.ok(config.config?.Env?.some((e) => e.startsWith('PATH=')));
  assert.equal(config.history?.length, 3);
  assert.equal(config.history?.filter((h) => h.empty_layer === true).length, 1);
  const l1 = tarNames(gunzipSync(await readFile(join(layoutDir('base'), blobPath(manifest.layers[0]!.digest)))));
  assert.deepEqual(l1.map((e) => e.name), ['bin/', 'bin/hello', 'etc/', 'etc/os-release']);
  assert.equal(l1.find((e) => e.name === 'bin/hello')!.mode, 0o755);
  const l2 = tarNames(gunzipSync(await readFile(join(layoutDir('base'), blobPath(manifest.layers[1]!.digest)))));
  assert.ok(l2.some((e) => e.name === 'etc/motd') && l2.some((e) => e.name === 'usr/share/base.txt'));
});

test('base-v2 shares layer 1 with base, replaces layer 2, tag 2.0', async () => {
  const v1 = [...(await walkLayout(layoutDir('base'))).manifests.values()][0]!;
  const w2 = await walkLayout(layoutDir('base-v2'));
  const v2 = [...w2.manifests.values()][0]!;
  assert.deepEqual(v2.layers[0], v1.layers[0]);
  assert.notEqual(v2.layers[1]!.digest, v1.layers[1]!.digest);
  const motd = gunzipSync(await readFile(join(layoutDir('base-v2'), blobPath(v2.layers[1]!.digest)))).toString('latin1');
  assert.match(motd, /patched/);
  const top = imageIndexSchema.parse(json(await readFile(join(layoutDir('base-v2'), 'index.json'))));
  assert.equal(top.manifests[0]!.annotations?.[REF_NAME], '2.0');
});

test('app is built on base: shared layer blobs, buildpacks and buildkit provenance labels', async () => {
  const base = await walkLayout(layoutDir('base'));
  const app = await walkLayout(layoutDir('app'));
  const [baseDigest, baseManifest] = [...base.manifests][0]!;
  const baseConfig = [...base.configs.values()][0]!;
  const appManifest = [...app.manifests.values()][0]!;
  const appConfig = [...app.configs.values()][0]!;
  assert.equal(appManifest.layers.length, 3);
  assert.deepEqual(appManifest.layers.slice(0, 2), baseManifest.layers);
  for (const l of baseManifest.layers) {
    assert.ok((await readFile(join(layoutDir('app'), blobPath(l.digest)))).equals(await readFile(join(layoutDir('base'), blobPath(l.digest)))));
  }
  assert.equal(appManifest.annotations, undefined);
  assert.deepEqual(appConfig.history!.slice(0, baseConfig.history!.length), baseConfig.history);
  const labels = appConfig.config!.Labels!;
  const lifecycle = JSON.parse(labels['io.buildpacks.lifecycle.metadata']!) as { runImage: Record<string, string> };
  assert.equal(lifecycle.runImage.topLayer, baseConfig.rootfs.diff_ids.at(-1));
  assert.equal(lifecycle.runImage.reference, `example.com/base@${baseDigest}`);
  assert.equal(lifecycle.runImage.image, 'example.com/base:1.0');
  const buildinfo = JSON.parse(Buffer.from(labels['moby.buildkit.buildinfo.v1']!, 'base64').toString('utf8'));
  assert.deepEqual(buildinfo, {
    frontend: 'dockerfile.v0',
    sources: [{ type: 'docker-image', ref: 'docker.io/example/base:1.0', pin: baseDigest }],
  });
  const top = imageIndexSchema.parse(json(await readFile(join(layoutDir('app'), 'index.json'))));
  assert.equal(top.manifests[0]!.annotations?.[REF_NAME], 'latest');
});

test('multi: two platforms sharing the bottom layer plus a BuildKit attestation manifest', async () => {
  const w = await walkLayout(layoutDir('multi'));
  const top = imageIndexSchema.parse(json(await readFile(join(layoutDir('multi'), 'index.json'))));
  assert.equal(top.manifests.length, 1);
  assert.equal(top.manifests[0]!.mediaType, MediaType.ociIndex);
  assert.equal(top.manifests[0]!.annotations?.[REF_NAME], 'multi');
  const index = w.indexes.get(top.manifests[0]!.digest)!;
  const [amd64, arm64, att] = index.manifests;
  assert.deepEqual(amd64?.platform, { architecture: 'amd64', os: 'linux' });
  assert.equal(arm64?.platform?.architecture, 'arm64');
  assert.deepEqual(att?.platform, { architecture: 'unknown', os: 'unknown' });
  assert.equal(att?.annotations?.['vnd.docker.reference.type'], 'attestation-manifest');
  assert.equal(att?.annotations?.['vnd.docker.reference.digest'], amd64!.digest);
  const mA = w.manifests.get(amd64!.digest)!;
  const mB = w.manifests.get(arm64!.digest)!;
  assert.deepEqual(mA.layers[0], mB.layers[0]);
  assert.notEqual(mA.layers[1]!.digest, mB.layers[1]!.digest);
  assert.notEqual(mA.config.digest, mB.config.digest);
  const attManifest = w.manifests.get(att!.digest)!;
  assert.equal(attManifest.layers.length, 1);
  assert.equal(attManifest.layers[0]!.mediaType, MediaType.inToto);
  const statement = json(await readFile(join(layoutDir('multi'), blobPath(attManifest.layers[0]!.digest)))) as {
    predicate: { materials: { uri: string }[] };
  };
  const baseDigest = [...(await walkLayout(layoutDir('base'))).manifests.keys()][0]!;
  assert.equal(statement.predicate.materials[0]!.uri, `pkg:docker/example/base@1.0?digest=${baseDigest}&platform=linux%2Famd64`);
});

test('nested: index.json > index > index > manifest', async () => {
  const w = await walkLayout(layoutDir('nested'));
  assert.equal(w.indexes.size, 2);
  assert.equal(w.manifests.size, 1);
  assert.deepEqual([...w.depth.values()], [2]);
  const top = imageIndexSchema.parse(json(await readFile(join(layoutDir('nested'), 'index.json'))));
  assert.equal(top.manifests[0]!.annotations?.[REF_NAME], 'nested');
});

test('artifact: untagged manifest with subject, artifactType and the empty config', async () => {
  const dir = layoutDir('artifact');
  const w = await walkLayout(dir);
  const top = imageIndexSchema.parse(json(await readFile(join(dir, 'index.json'))));
  assert.equal(top.manifests.length, 2);
  const image = top.manifests.find((d) => d.annotations?.[REF_NAME] !== undefined)!;
  const artifactDesc = top.manifests.find((d) => d.annotations?.[REF_NAME] === undefined)!;
  assert.equal(artifactDesc.annotations?.['org.opencontainers.image.created'], '2024-01-01T00:00:00Z');
  assert.equal(artifactDesc.artifactType, 'application/vnd.example.signature.v1');
  const artifact = w.manifests.get(artifactDesc.digest)!;
  assert.equal(artifact.artifactType, 'application/vnd.example.signature.v1');
  assert.deepEqual(artifact.config, { mediaType: MediaType.ociEmpty, digest: EMPTY_JSON_DIGEST, size: 2 });
  assert.equal(await readFile(join(dir, blobPath(EMPTY_JSON_DIGEST)), 'utf8'), '{}');
  assert.equal(artifact.layers.length, 1);
  assert.equal(artifact.subject?.digest, image.digest);
  assert.equal(artifact.subject?.size, image.size);
  assert.equal(artifact.subject?.mediaType, image.mediaType);
});

test('docker-types: schema2 manifest, container.image.v1 config, rootfs.diff.tar.gzip layers', async () => {
  const w = await walkLayout(layoutDir('docker-types'));
  const top = imageIndexSchema.parse(json(await readFile(join(layoutDir('docker-types'), 'index.json'))));
  assert.equal(top.manifests[0]!.mediaType, MediaType.dockerManifest);
  assert.equal(top.manifests[0]!.annotations?.[REF_NAME], 'docker');
  const m = [...w.manifests.values()][0]!;
  assert.equal(m.config.mediaType, MediaType.dockerConfig);
  assert.ok(m.layers.every((l) => l.mediaType === MediaType.dockerLayerGzip));
});

test('zstd: a raw-block zstd layer and an uncompressed layer', async () => {
  const w = await walkLayout(layoutDir('zstd'));
  const m = [...w.manifests.values()][0]!;
  assert.deepEqual(m.layers.map((l) => l.mediaType), [MediaType.ociLayerZstd, MediaType.ociLayer]);
  const blobBytes = await readFile(join(layoutDir('zstd'), blobPath(m.layers[0]!.digest)));
  assert.deepEqual([...blobBytes.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd]);
  assert.ok(tarNames(Buffer.from(zstdDecompress(blobBytes))).some((e) => e.name === 'opt/zstd.txt'));
});

test('zstdRaw frames decode with fzstd at block-boundary sizes', () => {
  for (const n of [0, 1, 255, 256, 65791, 65792, 128 * 1024, 128 * 1024 + 1, 300_000]) {
    const data = Buffer.alloc(n);
    for (let i = 0; i < n; i++) data[i] = (i * 31 + (i >> 8)) & 0xff;
    assert.ok(Buffer.from(zstdDecompress(zstdRaw(data))).equals(data), `size ${n}`);
  }
});

test('whiteouts: the second layer holds a file whiteout and an opaque marker', async () => {
  const w = await walkLayout(layoutDir('whiteouts'));
  const m = [...w.manifests.values()][0]!;
  const upper = tarNames(gunzipSync(await readFile(join(layoutDir('whiteouts'), blobPath(m.layers[1]!.digest)))));
  const wh = upper.find((e) => e.name === '.wh.removed-file');
  assert.ok(wh);
  assert.equal(wh.size, 0);
  assert.ok(upper.some((e) => e.name === 'dir/.wh..wh..opq'));
  const lower = tarNames(gunzipSync(await readFile(join(layoutDir('whiteouts'), blobPath(m.layers[0]!.digest)))));
  assert.ok(lower.some((e) => e.name === 'removed-file'));
});

// ---------------------------------------------------------------------------
// Archives
// ---------------------------------------------------------------------------

test('archives/app.oci.tar holds exactly the app layout', async () => {
  const files = await tarFiles(join(TESTDATA, 'archives', 'app.oci.tar'));
  const layout = await readTree(layoutDir('app'));
  assert.deepEqual([...files.keys()].sort(), [...layout.keys()]);
  for (const [name, bytes] of layout) assert.ok(files.get(name)!.equals(bytes), name);
  const names = (await scanTar(join(TESTDATA, 'archives', 'app.oci.tar'))).entries.map((e) => e.name);
  assert.deepEqual(names, [...names].sort());
});

test('archives/app.docker.tar is a legacy docker save whose layer.tar files hash to the diff_ids', async () => {
  const files = await tarFiles(join(TESTDATA, 'archives', 'app.docker.tar'));
  const [entry, ...rest] = dockerSaveManifestSchema.parse(json(files.get('manifest.json')));
  assert.equal(rest.length, 0);
  assert.deepEqual(entry!.RepoTags, ['example.com/app:latest']);
  const configBytes = files.get(entry!.Config)!;
  assert.equal(`sha256:${entry!.Config.replace(/\.json$/, '')}`, digestOf(configBytes));
  const config = imageConfigSchema.parse(json(configBytes));
  const appConfig = [...(await walkLayout(layoutDir('app'))).configs.values()][0]!;
  assert.deepEqual(config, appConfig);
  assert.equal(entry!.Layers.length, 3);
  entry!.Layers.forEach((path, i) => {
    assert.match(path, /^[a-f0-9]{64}\/layer\.tar$/);
    assert.equal(digestOf(files.get(path)!), config.rootfs.diff_ids[i]);
    const id = path.split('/')[0]!;
    assert.equal(files.get(`${id}/VERSION`)!.toString(), '1.0');
    assert.equal((json(files.get(`${id}/json`)) as { id: string }).id, id);
  });
  const repos = dockerRepositoriesSchema.parse(json(files.get('repositories')));
  assert.equal(repos['example.com/app']?.latest, entry!.Layers.at(-1)!.split('/')[0]);
});

test('archives/app.docker25.tar is a Docker 25 save: null manifests, uncompressed blobs', async () => {
  const files = await tarFiles(join(TESTDATA, 'archives', 'app.docker25.tar'));
  assert.equal(files.get('oci-layout')!.toString(), '{"imageLayoutVersion":"1.0.0"}');
  assert.equal((json(files.get('index.json')) as { manifests: unknown }).manifests, null);
  for (const [name, bytes] of files) {
    const digest = digestFromBlobPath(name);
    if (digest) assert.equal(digestOf(bytes), digest, name);
  }
  const [entry] = dockerSaveManifestSchema.parse(json(files.get('manifest.json')));
  assert.match(entry!.Config, /^blobs\/sha256\/[a-f0-9]{64}$/);
  const config = imageConfigSchema.parse(json(files.get(entry!.Config)));
  assert.deepEqual(
    entry!.Layers.map((p) => digestFromBlobPath(p)),
    config.rootfs.diff_ids,
  );
});

// ---------------------------------------------------------------------------
// Builder API: broken variants
// ---------------------------------------------------------------------------

test('builder API builds broken variants that the checks catch', async () => {
  await withTempDir(async (dir) => {
    const { base } = sampleImages();
    await writeLayout(join(dir, 'ok'), { manifests: [tagged(base.descriptor, '1.0')], blobs: base.blobs });
    assert.deepEqual((await walkLayout(join(dir, 'ok'))).problems, []);

    // flipped byte in a layer
    await writeLayout(join(dir, 'flip'), { manifests: [tagged(base.descriptor, '1.0')], blobs: base.blobs });
    await corruptBlob(join(dir, 'flip'), base.layers[1]!.descriptor.digest, 20);
    assert.ok((await walkLayout(join(dir, 'flip'))).problems.some((p) => p.includes('hashes to')));

    // wrong size in the manifest descriptor
    const wrong = { ...base.descriptor, size: base.descriptor.size + 1 };
    await writeLayout(join(dir, 'size'), { manifests: [wrong], blobs: base.blobs });
    assert.ok((await walkLayout(join(dir, 'size'))).problems.some((p) => /size \d+ but blob has/.test(p)));

    // missing blob, and a diff_id that does not match
    await writeLayout(join(dir, 'missing'), { manifests: [base.descriptor], blobs: base.blobs, omit: [base.layers[0]!.descriptor.digest] });
    assert.ok((await walkLayout(join(dir, 'missing'))).problems.some((p) => p.includes('missing')));
    const layer = makeLayer([{ path: 'x', content: 'x' }]);
    const liar = buildImage({ layers: [{ ...layer, diffId: digestOf('not the tar') }] });
    await writeLayout(join(dir, 'diffid'), { manifests: [liar.descriptor], blobs: liar.blobs });
    assert.ok((await walkLayout(join(dir, 'diffid'))).problems.some((p) => p.includes('diff_id')));

    // raw index.json override
    await writeLayout(join(dir, 'raw'), { manifests: [], blobs: [], indexJson: '{"schemaVersion":2,"manifests":[]}', ociLayout: null });
    await assert.rejects(readFile(join(dir, 'raw', 'oci-layout')));
    await writeFile(join(dir, 'raw', 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    assert.deepEqual((await walkLayout(join(dir, 'raw'))).problems, []);
  });
});

// ---------------------------------------------------------------------------
// External tools
// ---------------------------------------------------------------------------

function installed(tool: string): boolean {
  const r = spawnSync(tool, ['--version'], { encoding: 'utf8' });
  return !(r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT');
}

test('oci-image-tool validates the layouts it understands', (t) => {
  if (!installed('oci-image-tool')) {
    t.skip('oci-image-tool not installed');
    return;
  }
  // oci-image-tool 1.0.0-rc1 predates zstd, artifacts, nested indexes and in-toto layers, and
  // rejects Docker media types; the plain OCI images are the ones it can judge.
  for (const name of ['base', 'base-v2', 'app', 'whiteouts']) {
    let r = spawnSync('oci-image-tool', ['validate', '--type', 'imageLayout', layoutDir(name)], { encoding: 'utf8' });
    if (r.status !== 0 && /unimplemented/.test(r.stderr)) {
      // rc1 names the type "image" on the command line (it autodetects a directory as imageLayout).
      r = spawnSync('oci-image-tool', ['validate', '--type', 'image', layoutDir(name)], { encoding: 'utf8' });
    }
    assert.equal(r.status, 0, `${name}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout + r.stderr, /Validation succeeded/);
  }
});

test('umoci stat reads app:latest and base:1.0', (t) => {
  if (!installed('umoci')) {
    t.skip('umoci not installed');
    return;
  }
  for (const ref of [`${layoutDir('app')}:latest`, `${layoutDir('base')}:1.0`]) {
    const r = spawnSync('umoci', ['stat', '--image', ref], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${ref}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /2024-01-01T00:00:00Z/);
  }
});
