// Deterministic benchmark data generator.
//
//   node --import tsx bench/generate.ts [--size 256M] [--out bench/data] [--layers 5]
//
// --size is the total *uncompressed* layer bytes of image/. Layer content is
// real files from this machine (/usr/bin, /usr/lib/x86_64-linux-gnu, /usr/share,
// walked in byte-sorted order and cycled), streamed into tar -> gzip/zstd with
// sha256 computed on the fly, so memory stays flat whatever the size.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type Writable, type Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as zlib from 'node:zlib';

export const GENERATOR_VERSION = 1;
const SOURCE_ROOTS = ['/usr/bin', '/usr/lib/x86_64-linux-gnu', '/usr/share'];
const CREATED = '2024-01-01T00:00:00Z';
const MT = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;
const REF_NAME = 'org.opencontainers.image.ref.name';
/** Relative layer sizes of image/: 3 base layers, then 2 app layers. */
const LAYER_WEIGHTS = [0.35, 0.25, 0.15, 0.15, 0.1];
export const BASE_LAYERS = 3;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}
export interface GenOptions {
  size: number;
  out: string;
  layers?: number;
}
/** What the generator made; stored in stamp.json and consumed by bench/run.ts. */
export interface DataInfo {
  version: number;
  params: { size: number; layers: number; gzip: string; sources: string[] };
  /** Per layout: layer blob paths relative to the layout, and byte counts. */
  layouts: Record<string, { layers: string[]; blobBytes: number; tarBytes: number; blobs: number }>;
  dockerArchive: boolean;
}

const log = (msg: string) => process.stderr.write(`[generate] ${msg}\n`);
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
const sha256 = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');

export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size: ${s} (want e.g. 64M, 1G)`);
  const exp = ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
  return Math.round(Number(m[1]) * 1024 ** exp);
}
export const formatSize = (n: number) =>
  n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(2)} GiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`;

function writeAtomic(file: string, data: string | Buffer) {
  fs.writeFileSync(file + '.tmp', data);
  fs.renameSync(file + '.tmp', file);
}

// ---------------------------------------------------------------- sources

interface SourceFile { path: string; size: number }

function listSources(): SourceFile[] {
  const out: SourceFile[] = [];
  const walk = (dir: string) => {
    let names: string[];
    try { names = fs.readdirSync(dir); } catch { return; }
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of names) {
      const p = path.join(dir, name);
      let st: fs.Stats;
      try { st = fs.lstatSync(p); } catch { continue; }
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.size > 0) out.push({ path: p, size: st.size });
    }
  };
  for (const root of SOURCE_ROOTS) walk(root);
  if (out.length === 0) throw new Error(`no source files under ${SOURCE_ROOTS.join(', ')}`);
  return out;
}

/** An endless, deterministic cursor over the source files. */
class SourceCursor {
  constructor(private files: SourceFile[], private pos: number) {}
  next(): SourceFile & { cycle: number } {
    const f = this.files[this.pos % this.files.length]!;
    const cycle = Math.floor(this.pos / this.files.length);
    this.pos++;
    return { ...f, cycle };
  }
}

// ---------------------------------------------------------------- tar

function tarHeader(name: string, size: number, mode: number): Buffer {
  const h = Buffer.alloc(512);
  const oct = (n: number, len: number) => n.toString(8).padStart(len - 1, '0') + '\0';
  let pax: Buffer | null = null;
  if (Buffer.byteLength(name) > 100) {
    // PAX extended header carrying the long path.
    const rec = (body: string) => {
      const bytes = (len: number) => Buffer.byteLength(`${len} ${body}\n`);
      let len = bytes(0);
      while (bytes(len) !== len) len = bytes(len);
      return `${len} ${body}\n`;
    };
    const data = Buffer.from(rec(`path=${name}`));
    pax = Buffer.concat([tarHeader('PaxHeader', data.length, 0o644), data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
    pax.write('x', 156); // typeflag
    fixChecksum(pax.subarray(0, 512));
    name = name.slice(-100).replace(/^\/+/, '');
  }
  h.write(name, 0, 100);
  h.write(oct(mode, 8), 100);
  h.write(oct(0, 8), 108); // uid
  h.write(oct(0, 8), 116); // gid
  h.write(oct(size, 12), 124);
  h.write(oct(0, 12), 136); // mtime: fixed for determinism
  h.write('0', 156);
  h.write('ustar\u000000', 257);
  h.write('root', 265);
  h.write('root', 297);
  fixChecksum(h);
  return pax ? Buffer.concat([pax, h]) : h;
}
function fixChecksum(h: Buffer) {
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
}
const pad512 = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

/** Yields a tar stream of source files totalling ~target bytes (last file truncated). */
async function* tarStream(cursor: SourceCursor, target: number, prefix: string): AsyncGenerator<Buffer> {
  let written = 0;
  let batch: Buffer[] = [];
  let batchLen = 0;
  const emit = (b: Buffer) => { batch.push(b); batchLen += b.length; written += b.length; };
  const CHUNK = 1 << 20;
  while (written < target) {
    const f = cursor.next();
    let fh: fs.promises.FileHandle;
    try { fh = await fs.promises.open(f.path, 'r'); } catch { continue; }
    try {
      const size = Math.max(1, Math.min(f.size, target - written - 1024));
      const rel = (f.cycle ? `cycle${f.cycle}/` : '') + f.path.replace(/^\/+/, '');
      const exec = f.path.startsWith('/usr/bin/') ? 0o755 : 0o644;
      emit(tarHeader(`${prefix}${rel}`, size, exec));
      for (let off = 0; off < size; ) {
        const buf = Buffer.alloc(Math.min(CHUNK, size - off)); // zero-filled if the file shrank
        const { bytesRead } = await fh.read(buf, 0, buf.length, off);
        off += buf.length;
        emit(buf);
        if (bytesRead === 0) { emit(Buffer.alloc(size - off)); break; }
        if (batchLen >= CHUNK) { yield Buffer.concat(batch); batch = []; batchLen = 0; }
      }
      emit(pad512(size));
    } finally {
      await fh.close();
    }
    if (batchLen >= CHUNK) { yield Buffer.concat(batch); batch = []; batchLen = 0; }
  }
  emit(Buffer.alloc(1024)); // end-of-archive
  yield Buffer.concat(batch);
}

// ---------------------------------------------------------------- compression + blobs

interface Compressor { mediaType: string; spawn(): { stdin: Writable; stdout: Readable; done: Promise<void> } }

function proc(cmd: string, args: string[]) {
  const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const done = new Promise<void>((res, rej) => {
    p.on('error', rej);
    p.on('close', (code) => (code === 0 ? res() : rej(new Error(`${cmd} exited ${code}`))));
  });
  return { stdin: p.stdin, stdout: p.stdout, done };
}
const gzipCompressor = (): Compressor => ({
  mediaType: MT.gzip,
  spawn: () => {
    if (has('pigz')) return proc('pigz', ['-6', '-n', '-c']);
    const z = zlib.createGzip({ level: 6 });
    return { stdin: z, stdout: z, done: Promise.resolve() };
  },
});
const zstdCompressor = (): Compressor => ({ mediaType: MT.zstd, spawn: () => proc('zstd', ['-3', '-q', '-c']) });

/** Pass-through that hashes and counts what flows by. */
function hashTap() {
  const h = createHash('sha256');
  let size = 0;
  const stream = new Transform({ transform(chunk: Buffer, _e, cb) { h.update(chunk); size += chunk.length; cb(null, chunk); } });
  return { stream, done: (): Descriptor => ({ mediaType: '', digest: 'sha256:' + h.digest('hex'), size }) };
}

function blobPath(layout: string, digest: string) {
  return path.join(layout, 'blobs', ...digest.split(':'));
}

/** Streams one tar into every compressor at once; returns diff_id and one descriptor per compressor. */
async function writeLayer(src: AsyncIterable<Buffer>, outs: { layout: string; comp: Compressor }[]) {
  const diff = createHash('sha256');
  let tarBytes = 0;
  const sinks = outs.map(({ layout, comp }) => {
    const p = comp.spawn();
    const tap = hashTap();
    const tmp = path.join(layout, `.layer-${process.pid}.tmp`);
    const written = pipeline(p.stdout, tap.stream, fs.createWriteStream(tmp));
    return { p, tap, tmp, written, layout, comp };
  });
  for await (const chunk of src) {
    diff.update(chunk);
    tarBytes += chunk.length;
    await Promise.all(sinks.map(({ p }) => (p.stdin.write(chunk) ? null : new Promise((r) => p.stdin.once('drain', r)))));
  }
  for (const s of sinks) s.p.stdin.end();
  const descs: Descriptor[] = [];
  for (const s of sinks) {
    await Promise.all([s.written, s.p.done]);
    const d = { ...s.tap.done(), mediaType: s.comp.mediaType };
    fs.renameSync(s.tmp, blobPath(s.layout, d.digest));
    descs.push(d);
  }
  return { diffId: 'sha256:' + diff.digest('hex'), tarBytes, descs };
}

function writeBlob(layout: string, mediaType: string, data: Buffer | string): Descriptor {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const digest = sha256(buf);
  const p = blobPath(layout, digest);
  if (!fs.existsSync(p)) writeAtomic(p, buf);
  return { mediaType, digest, size: buf.length };
}
const writeJsonBlob = (layout: string, mediaType: string, obj: unknown) => writeBlob(layout, mediaType, JSON.stringify(obj));

function initLayout(dir: string) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  writeAtomic(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
}
function writeIndex(layout: string, manifests: Descriptor[]) {
  writeAtomic(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests }, null, 2));
}
/** Hard-link a blob from another layout (fall back to copy). */
function shareBlob(from: string, to: string, d: Descriptor) {
  const dst = blobPath(to, d.digest);
  if (fs.existsSync(dst)) return;
  try { fs.linkSync(blobPath(from, d.digest), dst); } catch { fs.copyFileSync(blobPath(from, d.digest), dst); }
}

function config(arch: string, diffIds: string[], createdBy: string[]) {
  return {
    created: CREATED,
    architecture: arch,
    os: 'linux',
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['/usr/bin/bash'],
      WorkingDir: '/',
      Labels: { 'org.opencontainers.image.title': 'ocikit-bench' },
    },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: createdBy.map((c) => ({ created: CREATED, created_by: c })),
  };
}
function manifest(cfg: Descriptor, layers: Descriptor[]) {
  return { schemaVersion: 2, mediaType: MT.manifest, config: cfg, layers };
}

interface Layers { layers: Descriptor[][]; diffIds: string[]; tarBytes: number }
interface BuiltImage { config: Descriptor; manifest: Descriptor; layers: Descriptor[]; diffIds: string[]; tarBytes: number }

/** Writes layers into one or more layouts at once (one compressor per layout, same tar stream). */
async function buildLayers(targets: { layout: string; comp: Compressor }[], sizes: number[], cursor: SourceCursor, label: string, prefix = ''): Promise<Layers> {
  const res: Layers = { layers: targets.map(() => []), diffIds: [], tarBytes: 0 };
  for (const [i, size] of sizes.entries()) {
    log(`${label}: layer ${i + 1}/${sizes.length} (${formatSize(size)} uncompressed)`);
    const r = await writeLayer(tarStream(cursor, size, prefix), targets);
    res.diffIds.push(r.diffId);
    res.tarBytes += r.tarBytes;
    r.descs.forEach((d, t) => res.layers[t]!.push(d));
  }
  return res;
}

/** Writes config + manifest + index.json (tag "latest") for each target layout. */
function finishImage(layouts: string[], l: Layers, arch = 'amd64'): BuiltImage[] {
  const createdBy = l.diffIds.map((_, i) => `/bin/sh -c #(nop) ADD ${i < BASE_LAYERS ? 'base' : 'app'}-layer-${i} /`);
  return layouts.map((layout, t) => {
    const cfg = writeJsonBlob(layout, MT.config, config(arch, l.diffIds, createdBy));
    const man = writeJsonBlob(layout, MT.manifest, manifest(cfg, l.layers[t]!));
    writeIndex(layout, [{ ...man, annotations: { [REF_NAME]: 'latest' } }]);
    return { config: cfg, manifest: man, layers: l.layers[t]!, diffIds: l.diffIds, tarBytes: l.tarBytes };
  });
}

async function buildImage(layout: string, sizes: number[], cursor: SourceCursor, label: string): Promise<BuiltImage> {
  initLayout(layout);
  return finishImage([layout], await buildLayers([{ layout, comp: gzipCompressor() }], sizes, cursor, label))[0]!;
}

// ---------------------------------------------------------------- small blobs

function smallTar(name: string, body: Buffer): Buffer {
  return Buffer.concat([tarHeader(name, body.length, 0o644), body, pad512(body.length), Buffer.alloc(1024)]);
}

function buildSmallBlobs(dir: string, manifests = 100, layersEach = 100) {
  initLayout(dir);
  const index: Descriptor[] = [];
  for (let m = 0; m < manifests; m++) {
    const layers: Descriptor[] = [];
    const diffIds: string[] = [];
    for (let l = 0; l < layersEach; l++) {
      const line = `manifest ${m} layer ${l}: ocikit small-blob benchmark payload\n`;
      const tar = smallTar(`data/m${m}/l${l}.txt`, Buffer.from(line.repeat(4 + ((m * 7 + l * 13) % 60))));
      diffIds.push(sha256(tar));
      layers.push(writeBlob(dir, MT.gzip, zlib.gzipSync(tar, { level: 6 })));
    }
    const cfg = writeJsonBlob(dir, MT.config, config('amd64', diffIds, diffIds.map((_, l) => `layer ${l}`)));
    const man = writeJsonBlob(dir, MT.manifest, manifest(cfg, layers));
    index.push({ ...man, annotations: { [REF_NAME]: m === 0 ? 'latest' : `m${String(m).padStart(3, '0')}` } });
  }
  writeIndex(dir, index);
}

// ---------------------------------------------------------------- main

function layoutStats(dir: string, layers: Descriptor[], tarBytes: number) {
  const blobsDir = path.join(dir, 'blobs', 'sha256');
  const names = fs.readdirSync(blobsDir);
  const blobBytes = names.reduce((n, f) => n + fs.statSync(path.join(blobsDir, f)).size, 0);
  return { layers: layers.map((d) => path.join('blobs', ...d.digest.split(':'))), blobBytes, tarBytes, blobs: names.length };
}

function sizesFor(total: number, n: number): number[] {
  const w = n === LAYER_WEIGHTS.length ? LAYER_WEIGHTS : Array.from({ length: n }, () => 1 / n);
  return w.map((x) => Math.max(4096, Math.round(total * x)));
}

const OUTPUTS = ['image', 'image-zstd', 'multi', 'small-blobs', 'tiny', 'newbase', 'image.oci.tar', 'image.docker.tar'];

export async function generate(opts: GenOptions): Promise<DataInfo> {
  const out = path.resolve(opts.out);
  const nLayers = opts.layers ?? LAYER_WEIGHTS.length;
  if (nLayers <= BASE_LAYERS) throw new Error(`--layers must be > ${BASE_LAYERS}`);
  const params = { size: opts.size, layers: nLayers, gzip: has('pigz') ? 'pigz -6' : 'zlib -6', sources: SOURCE_ROOTS };
  const stampFile = path.join(out, 'stamp.json');
  try {
    const stamp = JSON.parse(fs.readFileSync(stampFile, 'utf8')) as DataInfo;
    if (stamp.version === GENERATOR_VERSION && JSON.stringify(stamp.params) === JSON.stringify(params)) {
      log(`${out} is up to date (${formatSize(opts.size)}), nothing to do`);
      return stamp;
    }
  } catch { /* no stamp: generate */ }

  fs.mkdirSync(out, { recursive: true });
  fs.rmSync(stampFile, { force: true });
  for (const o of OUTPUTS) fs.rmSync(path.join(out, o), { recursive: true, force: true });
  const t0 = Date.now();
  log(`listing source files under ${SOURCE_ROOTS.join(', ')}`);
  const files = listSources();
  const srcBytes = files.reduce((n, f) => n + f.size, 0);
  log(`${files.length} files, ${formatSize(srcBytes)}; target ${formatSize(opts.size)} uncompressed in ${nLayers} layers`);
  const D = (name: string) => path.join(out, name);
  const layouts: DataInfo['layouts'] = {};

  // image/ (gzip) and image-zstd/ (zstd) from the same tar streams.
  const withZstd = has('zstd');
  if (!withZstd) log('zstd not installed: skipping image-zstd/');
  const dirs = withZstd ? [D('image'), D('image-zstd')] : [D('image')];
  dirs.forEach(initLayout);
  const sizes = sizesFor(opts.size, nLayers);
  const cursor = new SourceCursor(files, 0);
  const comps = [gzipCompressor(), zstdCompressor()];
  const built = finishImage(dirs, await buildLayers(dirs.map((layout, i) => ({ layout, comp: comps[i]! })), sizes, cursor, 'image'));
  const img = built[0]!;
  layouts['image'] = layoutStats(D('image'), img.layers, img.tarBytes);
  if (withZstd) layouts['image-zstd'] = layoutStats(D('image-zstd'), built[1]!.layers, img.tarBytes);

  // multi/: amd64 = image's manifest; arm64 = the same layers but a different top layer.
  initLayout(D('multi'));
  for (const d of [img.config, img.manifest, ...img.layers]) shareBlob(D('image'), D('multi'), d);
  const top = await buildLayers([{ layout: D('multi'), comp: gzipCompressor() }], sizes.slice(-1), cursor, 'multi arm64 top', 'arm64/');
  const armLayers = [...img.layers.slice(0, -1), top.layers[0]![0]!];
  const armDiffIds = [...img.diffIds.slice(0, -1), top.diffIds[0]!];
  const armCfg = writeJsonBlob(D('multi'), MT.config, config('arm64', armDiffIds, armDiffIds.map((_, i) => `layer ${i}`)));
  const armMan = writeJsonBlob(D('multi'), MT.manifest, manifest(armCfg, armLayers));
  const idx = writeJsonBlob(D('multi'), MT.index, {
    schemaVersion: 2,
    mediaType: MT.index,
    manifests: [
      { ...img.manifest, platform: { architecture: 'amd64', os: 'linux' } },
      { ...armMan, platform: { architecture: 'arm64', os: 'linux' } },
    ],
  });
  writeIndex(D('multi'), [{ ...idx, annotations: { [REF_NAME]: 'latest' } }]);
  layouts['multi'] = layoutStats(D('multi'), armLayers, 0);

  // newbase/: a different 3-layer base, drawn from elsewhere in the source list.
  const nb = await buildImage(D('newbase'), sizes.slice(0, BASE_LAYERS), new SourceCursor(files, Math.floor(files.length / 2)), 'newbase');
  layouts['newbase'] = layoutStats(D('newbase'), nb.layers, nb.tarBytes);

  // tiny/: same shape, ~2 MiB.
  const tiny = await buildImage(D('tiny'), sizesFor(2 * 1024 * 1024, nLayers), new SourceCursor(files, 0), 'tiny');
  layouts['tiny'] = layoutStats(D('tiny'), tiny.layers, tiny.tarBytes);

  // small-blobs/: 100 manifests x 100 small layers = 10,000 layer blobs.
  log('small-blobs: 100 manifests x 100 layers');
  buildSmallBlobs(D('small-blobs'));
  layouts['small-blobs'] = layoutStats(D('small-blobs'), [], 0);

  // Archives.
  log('image.oci.tar');
  const tarArgs = ['--sort=name', '--format=ustar', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0'];
  const tr = spawnSync('tar', [...tarArgs, '-cf', D('image.oci.tar.tmp'), '-C', D('image'), 'blobs', 'index.json', 'oci-layout'], { stdio: 'inherit' });
  if (tr.status !== 0) throw new Error('tar failed');
  fs.renameSync(D('image.oci.tar.tmp'), D('image.oci.tar'));
  let dockerArchive = false;
  if (has('skopeo')) {
    log('image.docker.tar (skopeo)');
    fs.rmSync(D('image.docker.tar.tmp'), { force: true });
    const sr = spawnSync('skopeo', ['--insecure-policy', 'copy', '-q', `oci:${D('image')}:latest`, `docker-archive:${D('image.docker.tar.tmp')}:bench/image:latest`], { stdio: 'inherit' });
    if (sr.status !== 0) throw new Error('skopeo copy to docker-archive failed');
    fs.renameSync(D('image.docker.tar.tmp'), D('image.docker.tar'));
    dockerArchive = true;
  } else log('skopeo not installed: skipping image.docker.tar');

  const info: DataInfo = { version: GENERATOR_VERSION, params, layouts, dockerArchive };
  writeAtomic(stampFile, JSON.stringify(info, null, 2));
  log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s: image/ ${formatSize(layouts['image']!.blobBytes)} of blobs (${formatSize(img.tarBytes)} uncompressed)`);
  return info;
}

// ---------------------------------------------------------------- CLI

export const DEFAULT_SIZE = '256M';
export const DEFAULT_OUT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'data');

export function argValue(argv: string[], name: string): string | undefined {
  const i = argv.findIndex((a) => a === name || a.startsWith(name + '='));
  if (i < 0) return undefined;
  const a = argv[i]!;
  if (a.includes('=')) return a.slice(a.indexOf('=') + 1);
  const v = argv[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value`);
  return v;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const argv = process.argv.slice(2);
  const layers = argValue(argv, '--layers');
  generate({
    size: parseSize(argValue(argv, '--size') ?? DEFAULT_SIZE),
    out: argValue(argv, '--out') ?? DEFAULT_OUT,
    layers: layers ? Number(layers) : undefined,
  }).catch((e: unknown) => {
    process.stderr.write(`[generate] error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
