/**
 * Deterministic builder for ocikit's sample OCI images.
 *
 * Everything here is pure and byte-reproducible: fixed timestamps, sorted tar
 * entries, compact JSON, gzip level 9 with a zero mtime, and a hand-written
 * zstd encoder that emits only Raw blocks (no external tool). `buildFixtures`
 * writes the committed fixtures under a given root; the smaller helpers let
 * tests assemble variants (and broken variants) in temp dirs.
 */
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import type { Annotations, Descriptor, Platform } from '../src/model/descriptor.js';
import { REF_NAME } from '../src/model/keys.js';
import { EMPTY_JSON_DIGEST, blobPath, digestOf } from '../src/model/digest.js';
import type { ImageConfig } from '../src/model/image-config.js';
import type { ImageIndex } from '../src/model/image-index.js';
import type { ImageManifest } from '../src/model/image-manifest.js';
import { MediaType, type Compression } from '../src/model/media-types.js';
import { IMAGE_LAYOUT_VERSION } from '../src/model/oci-layout.js';
import { TarWriter, type TarWriteEntry } from '../src/store/tar-format.js';

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

export const FIXED_CREATED = '2024-01-01T00:00:00Z';
/** 2024-01-01T00:00:00Z in seconds: the mtime of every tar entry the builder writes. */
export const FIXED_EPOCH = 1704067200;
export const EMPTY_JSON = Buffer.from('{}');
export const OCI_LAYOUT_FILE = JSON.stringify({ imageLayoutVersion: IMAGE_LAYOUT_VERSION });
export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// ---------------------------------------------------------------------------
// Blobs and descriptors
// ---------------------------------------------------------------------------

/** A content-addressed blob and the descriptor that points at it. */
export interface Blob {
  descriptor: Descriptor;
  bytes: Buffer;
}

/** Descriptor for `bytes`: correct digest and size, plus any extra fields (annotations, platform …). */
export function describe(bytes: Buffer, mediaType: string, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType, digest: digestOf(bytes), size: bytes.length, ...extra };
}

export function blob(bytes: Buffer | string, mediaType: string, extra: Partial<Descriptor> = {}): Blob {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'utf8');
  return { bytes: buf, descriptor: describe(buf, mediaType, extra) };
}

/** Compact `JSON.stringify(value)` as a blob. */
export function jsonBlob(value: unknown, mediaType: string, extra: Partial<Descriptor> = {}): Blob {
  return blob(Buffer.from(JSON.stringify(value), 'utf8'), mediaType, extra);
}

/** The OCI empty descriptor and its two-byte `{}` blob. */
export function emptyBlob(): Blob {
  const b = blob(EMPTY_JSON, MediaType.ociEmpty);
  if (b.descriptor.digest !== EMPTY_JSON_DIGEST) throw new Error('empty JSON digest mismatch');
  return b;
}

/** A copy of `descriptor` with the `org.opencontainers.image.ref.name` annotation set. */
export function tagged(descriptor: Descriptor, ref: string): Descriptor {
  return { ...descriptor, annotations: { ...descriptor.annotations, [REF_NAME]: ref } };
}

export function hexOf(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

// ---------------------------------------------------------------------------
// Tar (layers)
// ---------------------------------------------------------------------------

/** One layer entry. Directories may be given with or without a trailing `/`. */
export interface TarFile {
  path: string;
  /** File content (default empty). Ignored for dirs and links. */
  content?: Buffer | string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink';
  /** Default 0644 for files, 0755 for dirs, 0777 for symlinks. */
  mode?: number;
  linkname?: string;
  /** Seconds since the epoch; default FIXED_EPOCH. */
  mtime?: number;
  uid?: number;
  gid?: number;
}

export interface MakeTarOptions {
  /** Sort entries by path (default true). Turn off to build order-sensitive fixtures. */
  sort?: boolean;
}

const BLOCK = 512;

function octal(block: Buffer, value: number, start: number, width: number): void {
  const text = value.toString(8).padStart(width - 1, '0');
  if (text.length > width - 1) throw new Error(`tar: ${value} does not fit a ${width}-byte octal field`);
  block.write(`${text}\0`, start, width, 'latin1');
}

function tarHeader(file: TarFile, name: string, size: number): Buffer {
  const type = file.type ?? 'file';
  const bytes = Buffer.from(name, 'utf8');
  let nameField = bytes;
  let prefixField: Buffer | undefined;
  if (bytes.length > 100) {
    const cut = bytes.subarray(0, Math.min(155, bytes.length - 1)).lastIndexOf(0x2f);
    if (cut <= 0 || bytes.length - cut - 1 > 100) throw new Error(`tar: name too long for ustar: ${name}`);
    prefixField = bytes.subarray(0, cut);
    nameField = bytes.subarray(cut + 1);
  }
  const linkname = Buffer.from(file.linkname ?? '', 'utf8');
  if (linkname.length > 100) throw new Error(`tar: link target too long: ${file.linkname}`);
  const defaultMode = type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644;
  const block = Buffer.alloc(BLOCK);
  nameField.copy(block, 0);
  octal(block, file.mode ?? defaultMode, 100, 8);
  octal(block, file.uid ?? 0, 108, 8);
  octal(block, file.gid ?? 0, 116, 8);
  octal(block, size, 124, 12);
  octal(block, file.mtime ?? FIXED_EPOCH, 136, 12);
  block.write({ file: '0', hardlink: '1', symlink: '2', dir: '5' }[type], 156, 1, 'latin1');
  linkname.copy(block, 157);
  block.write('ustar\x0000', 257, 8, 'latin1');
  octal(block, 0, 329, 8);
  octal(block, 0, 337, 8);
  prefixField?.copy(block, 345);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

/**
 * A reproducible ustar archive. Unlike the store's TarWriter (fixed 0644/0755
 * modes, files and dirs only) this keeps per-entry modes and supports links,
 * which layers need (`bin/hello` is 0755). Names are written as given, so
 * tests can also build hostile layers (`../x`, absolute paths).
 */
export function makeTar(files: TarFile[], opts: MakeTarOptions = {}): Buffer {
  const entries = files.map((f) => {
    const type = f.type ?? 'file';
    const name = type === 'dir' ? `${f.path.replace(/\/+$/, '')}/` : f.path;
    return { f, name };
  });
  if (opts.sort ?? true) entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const chunks: Buffer[] = [];
  for (const { f, name } of entries) {
    const content = (f.type ?? 'file') === 'file' ? toBuffer(f.content ?? '') : Buffer.alloc(0);
    chunks.push(tarHeader(f, name, content.length), content, Buffer.alloc((BLOCK - (content.length % BLOCK)) % BLOCK));
  }
  chunks.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(chunks);
}

function toBuffer(content: Buffer | string): Buffer {
  return Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
}

// ---------------------------------------------------------------------------
// Compression
// ---------------------------------------------------------------------------

/** gzip level 9. The header has mtime 0; the OS byte is pinned to 3 (Unix) so Windows builds match. */
export function gzip(data: Buffer): Buffer {
  const out = gzipSync(data, { level: 9 });
  out[9] = 3;
  return out;
}

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const ZSTD_MAX_BLOCK = 128 * 1024;

/**
 * A valid zstd frame made only of Raw (stored) blocks: magic, a single-segment
 * frame header carrying the content size, no checksum, no dictionary. Any zstd
 * decoder reads it; it is trivially deterministic.
 */
export function zstdRaw(data: Buffer): Buffer {
  const n = data.length;
  let fcsFlag: number;
  let fcs: Buffer;
  if (n < 256) {
    fcsFlag = 0;
    fcs = Buffer.from([n]);
  } else if (n < 65536 + 256) {
    fcsFlag = 1;
    fcs = Buffer.alloc(2);
    fcs.writeUInt16LE(n - 256);
  } else if (n <= 0xffffffff) {
    fcsFlag = 2;
    fcs = Buffer.alloc(4);
    fcs.writeUInt32LE(n);
  } else {
    fcsFlag = 3;
    fcs = Buffer.alloc(8);
    fcs.writeBigUInt64LE(BigInt(n));
  }
  const descriptor = (fcsFlag << 6) | 0x20; // Single_Segment_flag; no checksum, no dictionary id
  const parts: Buffer[] = [ZSTD_MAGIC, Buffer.from([descriptor]), fcs];
  let offset = 0;
  do {
    const size = Math.min(ZSTD_MAX_BLOCK, n - offset);
    const last = offset + size >= n ? 1 : 0;
    const header = (size << 3) | (0 /* Raw_Block */ << 1) | last;
    parts.push(Buffer.from([header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff]), data.subarray(offset, offset + size));
    offset += size;
  } while (offset < n);
  return Buffer.concat(parts);
}

export function compress(data: Buffer, compression: Compression): Buffer {
  if (compression === 'gzip') return gzip(data);
  if (compression === 'zstd') return zstdRaw(data);
  return data;
}

// ---------------------------------------------------------------------------
// Layers, images, indexes
// ---------------------------------------------------------------------------

/** A layer blob together with its uncompressed tar and diff_id. */
export interface Layer extends Blob {
  /** The uncompressed content (the tar, or the raw bytes for non-tar layers). */
  tar: Buffer;
  diffId: string;
  compression: Compression;
}

const OCI_LAYER_TYPES: Record<Compression, string> = {
  none: MediaType.ociLayer,
  gzip: MediaType.ociLayerGzip,
  zstd: MediaType.ociLayerZstd,
};

export interface LayerOptions extends MakeTarOptions {
  /** Default: the OCI layer type for the compression. */
  mediaType?: string;
  annotations?: Annotations;
}

/** A tar layer from `files`, compressed deterministically. */
export function makeLayer(files: TarFile[], compression: Compression = 'gzip', opts: LayerOptions = {}): Layer {
  return layerFromTar(makeTar(files, opts), compression, opts);
}

export function layerFromTar(tar: Buffer, compression: Compression = 'gzip', opts: LayerOptions = {}): Layer {
  const bytes = compress(tar, compression);
  const extra = opts.annotations ? { annotations: opts.annotations } : {};
  return { tar, bytes, compression, diffId: digestOf(tar), descriptor: describe(bytes, opts.mediaType ?? OCI_LAYER_TYPES[compression], extra) };
}

/** A "layer" that is not a tar (in-toto statement, signature …): diff_id = digest. */
export function rawLayer(bytes: Buffer | string, mediaType: string, annotations?: Annotations): Layer {
  const b = blob(bytes, mediaType, annotations ? { annotations } : {});
  return { ...b, tar: b.bytes, diffId: b.descriptor.digest, compression: 'none' };
}

/** Same layer blob, different media type (e.g. an OCI gzip layer reused under a Docker type). */
export function withMediaType<T extends Blob>(b: T, mediaType: string): T {
  return { ...b, descriptor: { ...b.descriptor, mediaType } };
}

export type HistoryEntry = NonNullable<ImageConfig['history']>[number];
export type ContainerConfig = NonNullable<ImageConfig['config']>;

export interface ImageSpec {
  layers: Layer[];
  /** Default linux/amd64. Goes into the config and the manifest descriptor. */
  platform?: Platform;
  created?: string;
  author?: string;
  /** The config's `config` section (Env, Cmd, Labels …). */
  config?: ContainerConfig;
  /** Default: one `created_by` entry per layer. */
  history?: HistoryEntry[];
  /** Extra top-level config fields, merged last (docker_version, or overrides for broken configs). */
  configExtra?: Record<string, unknown>;
  /** Use Docker schema2 manifest and container.image.v1 config media types. */
  docker?: boolean;
  manifestMediaType?: string;
  configMediaType?: string;
  /** Replace the config blob entirely (e.g. the empty descriptor for artifacts). */
  configBlob?: Blob;
  artifactType?: string;
  subject?: Descriptor;
  annotations?: Annotations;
  /** Extra fields on the returned manifest descriptor (e.g. annotations for the index entry). */
  descriptor?: Partial<Descriptor>;
}

export interface BuiltImage {
  manifest: ImageManifest;
  config: ImageConfig;
  configBlob: Blob;
  manifestBlob: Blob;
  layers: Layer[];
  /** Manifest descriptor with `platform` (unless the spec is an artifact without platform). */
  descriptor: Descriptor;
  /** Every blob the image needs: manifest, config, layers. */
  blobs: Blob[];
}

export const LINUX_AMD64: Platform = { architecture: 'amd64', os: 'linux' };
export const LINUX_ARM64: Platform = { architecture: 'arm64', os: 'linux', variant: 'v8' };

export function buildImage(spec: ImageSpec): BuiltImage {
  const platform = spec.platform ?? LINUX_AMD64;
  const config: ImageConfig = {
    created: spec.created ?? FIXED_CREATED,
    ...(spec.author !== undefined ? { author: spec.author } : {}),
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
    ...(spec.config !== undefined ? { config: spec.config } : {}),
    rootfs: { type: 'layers', diff_ids: spec.layers.map((l) => l.diffId) },
    history: spec.history ?? spec.layers.map((_, i) => ({ created: spec.created ?? FIXED_CREATED, created_by: `layer ${i + 1}` })),
    ...spec.configExtra,
  };
  const configMediaType = spec.configMediaType ?? (spec.docker ? MediaType.dockerConfig : MediaType.ociConfig);
  const configBlob = spec.configBlob ?? jsonBlob(config, configMediaType);
  const manifestMediaType = spec.manifestMediaType ?? (spec.docker ? MediaType.dockerManifest : MediaType.ociManifest);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: manifestMediaType,
    ...(spec.artifactType !== undefined ? { artifactType: spec.artifactType } : {}),
    config: configBlob.descriptor,
    layers: spec.layers.map((l) => l.descriptor),
    ...(spec.subject !== undefined ? { subject: spec.subject } : {}),
    ...(spec.annotations !== undefined ? { annotations: spec.annotations } : {}),
  };
  const manifestBytes = jsonBlob(manifest, manifestMediaType).bytes;
  const isArtifact = spec.configBlob?.descriptor.mediaType === MediaType.ociEmpty && spec.platform === undefined;
  const manifestBlob = blob(manifestBytes, manifestMediaType, {
    ...(spec.artifactType !== undefined ? { artifactType: spec.artifactType } : {}),
    ...(isArtifact ? {} : { platform }),
    ...spec.descriptor,
  });
  return {
    manifest,
    config,
    configBlob,
    manifestBlob,
    layers: spec.layers,
    descriptor: manifestBlob.descriptor,
    blobs: [manifestBlob, configBlob, ...spec.layers],
  };
}

export interface BuiltIndex {
  index: ImageIndex;
  blob: Blob;
  descriptor: Descriptor;
  /** The index blob plus every child blob handed in. */
  blobs: Blob[];
}

export interface IndexSpec {
  manifests: Descriptor[];
  /** Blobs of the children, carried along into `blobs`. */
  children?: Blob[];
  mediaType?: string;
  annotations?: Annotations;
  /** Extra fields on the returned descriptor. */
  descriptor?: Partial<Descriptor>;
}

export function buildIndex(spec: IndexSpec): BuiltIndex {
  const mediaType = spec.mediaType ?? MediaType.ociIndex;
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType,
    manifests: spec.manifests,
    ...(spec.annotations !== undefined ? { annotations: spec.annotations } : {}),
  };
  const b = jsonBlob(index, mediaType, spec.descriptor ?? {});
  return { index, blob: b, descriptor: b.descriptor, blobs: [b, ...(spec.children ?? [])] };
}

// ---------------------------------------------------------------------------
// Writing layouts
// ---------------------------------------------------------------------------

export interface LayoutSpec {
  /** index.json `manifests`; `null` writes `"manifests":null` (Docker 25 style). */
  manifests: Descriptor[] | null;
  blobs: Iterable<Blob>;
  /** index.json annotations. */
  annotations?: Annotations;
  /** Raw index.json bytes, replacing the generated one. */
  indexJson?: Buffer | string;
  /** Raw oci-layout bytes; `null` omits the file. */
  ociLayout?: Buffer | string | null;
  /** Blob digests to leave out (for missing-blob fixtures). */
  omit?: Iterable<string>;
  /** Additional files, relative to the layout root. */
  extraFiles?: Record<string, Buffer | string>;
}

/** Unique blobs by digest; throws if one digest is given two different contents. */
export function uniqueBlobs(blobs: Iterable<Blob>): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const b of blobs) {
    const seen = out.get(b.descriptor.digest);
    if (seen && !seen.equals(b.bytes)) throw new Error(`two different blobs claim ${b.descriptor.digest}`);
    out.set(b.descriptor.digest, b.bytes);
  }
  return out;
}

export function indexJsonBytes(manifests: Descriptor[] | null, annotations?: Annotations): Buffer {
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests,
    ...(annotations !== undefined ? { annotations } : {}),
  };
  return Buffer.from(JSON.stringify(index), 'utf8');
}

/** The files of an OCI layout, as relative path → bytes, in sorted order. */
export function layoutFiles(spec: LayoutSpec): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const omit = new Set(spec.omit ?? []);
  for (const [digest, bytes] of uniqueBlobs(spec.blobs)) {
    if (!omit.has(digest)) files.set(blobPath(digest), bytes);
  }
  files.set('index.json', spec.indexJson !== undefined ? toBuffer(spec.indexJson) : indexJsonBytes(spec.manifests, spec.annotations));
  if (spec.ociLayout !== null) files.set('oci-layout', toBuffer(spec.ociLayout ?? OCI_LAYOUT_FILE));
  for (const [name, content] of Object.entries(spec.extraFiles ?? {})) files.set(name, toBuffer(content));
  return new Map([...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Write an OCI image layout into `dir` (created if needed; existing files are overwritten, not removed). */
export async function writeLayout(dir: string, spec: LayoutSpec): Promise<Map<string, Buffer>> {
  const files = layoutFiles(spec);
  await writeFiles(dir, files);
  return files;
}

export async function writeFiles(dir: string, files: Map<string, Buffer>): Promise<void> {
  for (const [name, bytes] of files) {
    const dest = join(dir, ...name.split('/'));
    await mkdir(dirname(dest), { recursive: true });
    await writeFile(dest, bytes);
  }
}

/** Every regular file under `dir`, as `/`-separated relative path → bytes, sorted. */
export async function readTree(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const names = (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath, d.name)).split(sep).join('/'))
    .sort();
  for (const name of names) out.set(name, await readFile(join(dir, name)));
  return out;
}

// ---------------------------------------------------------------------------
// Mutations for broken fixtures
// ---------------------------------------------------------------------------

/** XOR one byte of a file (default: the middle byte). */
export async function flipByte(file: string, offset?: number): Promise<void> {
  const buf = await readFile(file);
  if (buf.length === 0) throw new Error(`flipByte: ${file} is empty`);
  const at = offset ?? Math.floor(buf.length / 2);
  buf[at] = (buf[at] ?? 0) ^ 0xff;
  await writeFile(file, buf);
}

/** Path of a blob inside a layout directory. */
export function blobFile(layoutDir: string, digest: string): string {
  return join(layoutDir, ...blobPath(digest).split('/'));
}

export async function corruptBlob(layoutDir: string, digest: string, offset?: number): Promise<void> {
  await flipByte(blobFile(layoutDir, digest), offset);
}

export async function truncateBlob(layoutDir: string, digest: string, length: number): Promise<void> {
  const file = blobFile(layoutDir, digest);
  await writeFile(file, (await readFile(file)).subarray(0, length));
}

// ---------------------------------------------------------------------------
// Archives
// ---------------------------------------------------------------------------

/** Collects a Writable's output into one buffer. */
function collector(): { stream: Writable; result: () => Buffer } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  return { stream, result: () => Buffer.concat(chunks) };
}

/**
 * A tar made by the store's TarWriter, with its mtime pinned to FIXED_EPOCH.
 * TarWriter reads SOURCE_DATE_EPOCH when constructed, so the variable is set
 * for that synchronous moment only and restored right after.
 */
export async function tarBuffer(entries: TarWriteEntry[]): Promise<Buffer> {
  const { stream, result } = collector();
  const saved = process.env.SOURCE_DATE_EPOCH;
  process.env.SOURCE_DATE_EPOCH = String(FIXED_EPOCH);
  let writer: TarWriter;
  try {
    writer = new TarWriter(stream);
  } finally {
    if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
    else process.env.SOURCE_DATE_EPOCH = saved;
  }
  for (const entry of entries) {
    if ('dir' in entry) await writer.addDir(entry.name);
    else await writer.addFile(entry.name, entry.data.length, entry.data);
  }
  await writer.finish();
  return result();
}

/** Tar entries for `files` (path → bytes) with each parent directory once, sorted by name. */
export function treeEntries(files: Map<string, Buffer>): TarWriteEntry[] {
  const dirs = new Set<string>();
  for (const name of files.keys()) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  const entries: TarWriteEntry[] = [
    ...[...dirs].map((name) => ({ name, dir: true as const })),
    ...[...files].map(([name, data]) => ({ name, data })),
  ];
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** An OCI archive (`oci-archive:`): the layout's files in a tar. */
export function ociArchive(files: Map<string, Buffer>): Promise<Buffer> {
  return tarBuffer(treeEntries(files));
}

export interface DockerSaveOptions {
  /** e.g. `example.com/app:latest` */
  repoTag: string;
}

function splitRepoTag(repoTag: string): [string, string] {
  const colon = repoTag.lastIndexOf(':');
  if (colon <= repoTag.lastIndexOf('/')) return [repoTag, 'latest'];
  return [repoTag.slice(0, colon), repoTag.slice(colon + 1)];
}

/**
 * Legacy `docker save` files (Docker < 25): `<config hex>.json`, `<v1 id>/layer.tar`
 * (uncompressed, so its sha256 is the diff_id), `<v1 id>/VERSION`, `<v1 id>/json`,
 * `manifest.json`, `repositories`. v1 ids chain like Docker's: sha256 over the
 * layer's diff_id and its parent id.
 */
export function dockerSaveLegacyFiles(image: BuiltImage, opts: DockerSaveOptions): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const configHex = hexOf(image.configBlob.descriptor.digest);
  files.set(`${configHex}.json`, image.configBlob.bytes);
  const ids: string[] = [];
  let parent = '';
  image.layers.forEach((layer, i) => {
    const top = i === image.layers.length - 1;
    const id = hexOf(digestOf(JSON.stringify({ created: FIXED_CREATED, layer_id: layer.diffId, parent: parent ? `sha256:${parent}` : '' })));
    const v1: Record<string, unknown> = { id, ...(parent ? { parent } : {}), created: top ? image.config.created : '1970-01-01T00:00:00Z' };
    if (top) {
      v1.architecture = image.config.architecture;
      v1.os = image.config.os;
      if (image.config.config) v1.config = image.config.config;
    } else {
      v1.container_config = { Cmd: null };
      v1.os = image.config.os;
    }
    files.set(`${id}/VERSION`, Buffer.from('1.0'));
    files.set(`${id}/json`, Buffer.from(JSON.stringify(v1)));
    files.set(`${id}/layer.tar`, layer.tar);
    ids.push(id);
    parent = id;
  });
  const manifest = [{ Config: `${configHex}.json`, RepoTags: [opts.repoTag], Layers: ids.map((id) => `${id}/layer.tar`) }];
  files.set('manifest.json', Buffer.from(JSON.stringify(manifest)));
  const [repo, tag] = splitRepoTag(opts.repoTag);
  files.set('repositories', Buffer.from(JSON.stringify({ [repo]: { [tag]: ids.at(-1) ?? '' } })));
  return files;
}

/**
 * Docker 25+ `docker save` files: an OCI layout skeleton (`oci-layout`,
 * `index.json` with `"manifests":null`), uncompressed layer and config blobs
 * under `blobs/sha256/`, and `manifest.json` / `repositories` pointing at them.
 */
export function dockerSave25Files(image: BuiltImage, opts: DockerSaveOptions): Map<string, Buffer> {
  const layers = image.layers.map((l) => blob(l.tar, MediaType.ociLayer));
  const files = layoutFiles({ manifests: null, blobs: [image.configBlob, ...layers] });
  const manifest = [
    {
      Config: blobPath(image.configBlob.descriptor.digest),
      RepoTags: [opts.repoTag],
      Layers: layers.map((l) => blobPath(l.descriptor.digest)),
    },
  ];
  files.set('manifest.json', Buffer.from(JSON.stringify(manifest)));
  const [repo, tag] = splitRepoTag(opts.repoTag);
  const top = layers.at(-1);
  files.set('repositories', Buffer.from(JSON.stringify({ [repo]: { [tag]: top ? hexOf(top.descriptor.digest) : '' } })));
  return new Map([...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export async function dockerSaveLegacy(image: BuiltImage, opts: DockerSaveOptions): Promise<Buffer> {
  return tarBuffer(treeEntries(dockerSaveLegacyFiles(image, opts)));
}

export async function dockerSave25(image: BuiltImage, opts: DockerSaveOptions): Promise<Buffer> {
  return tarBuffer(treeEntries(dockerSave25Files(image, opts)));
}

// ---------------------------------------------------------------------------
// The sample images
// ---------------------------------------------------------------------------

const at = (created_by: string, extra: Partial<HistoryEntry> = {}): HistoryEntry => ({ created: FIXED_CREATED, created_by, ...extra });

const OS_RELEASE = `NAME="Example Linux"
ID=example
VERSION_ID=1.0
PRETTY_NAME="Example Linux 1.0"
HOME_URL="https://example.com/"
`;

const HELLO = `#!/bin/sh
echo "hello from the ocikit base image"
`;

const BASE_LABELS = {
  'org.label-schema.vcs-url': 'https://example.com/base.git',
  'org.label-schema.build-date': FIXED_CREATED,
  'org.opencontainers.image.source': 'https://example.com/base',
};

function baseImage(motd: string, version: string): BuiltImage {
  const layer1 = makeLayer([
    { path: 'bin', type: 'dir' },
    { path: 'bin/hello', content: HELLO, mode: 0o755 },
    { path: 'etc', type: 'dir' },
    { path: 'etc/os-release', content: OS_RELEASE },
  ]);
  const layer2 = makeLayer([
    { path: 'etc', type: 'dir' },
    { path: 'etc/motd', content: motd },
    { path: 'usr', type: 'dir' },
    { path: 'usr/share', type: 'dir' },
    { path: 'usr/share/base.txt', content: `base image ${version}\n` },
  ]);
  return buildImage({
    layers: [layer1, layer2],
    config: {
      Env: [DEFAULT_PATH_ENV, `BASE_VERSION=${version}`],
      Cmd: ['/bin/hello'],
      WorkingDir: '/',
      Labels: { ...BASE_LABELS, 'org.opencontainers.image.version': version },
    },
    history: [
      at('/bin/sh -c #(nop) ADD file:rootfs.tar in / '),
      at('/bin/sh -c #(nop) COPY file:motd in /etc/motd '),
      at('/bin/sh -c #(nop)  CMD ["/bin/hello"]', { empty_layer: true }),
    ],
  });
}

function appImage(base: BuiltImage): BuiltImage {
  const baseDigest = base.descriptor.digest;
  const appLayer = makeLayer([
    { path: 'app', type: 'dir' },
    { path: 'app/config.json', content: `${JSON.stringify({ greeting: 'hello', port: 8080 })}\n` },
    { path: 'app/main.sh', content: '#!/bin/sh\nexec /bin/hello "$@"\n', mode: 0o755 },
  ]);
  const lifecycle = {
    app: [{ sha: appLayer.diffId }],
    buildpacks: [],
    runImage: {
      topLayer: base.layers.at(-1)!.diffId,
      reference: `example.com/base@${baseDigest}`,
      image: 'example.com/base:1.0',
    },
    stack: { runImage: { image: 'example.com/base:1.0' } },
  };
  const buildinfo = {
    frontend: 'dockerfile.v0',
    sources: [{ type: 'docker-image', ref: 'docker.io/example/base:1.0', pin: baseDigest }],
  };
  const baseHistory = base.config.history ?? [];
  return buildImage({
    layers: [...base.layers, appLayer],
    config: {
      Env: [...(base.config.config?.Env ?? []), 'APP_ENV=production'],
      Cmd: ['/app/main.sh'],
      WorkingDir: '/app',
      Labels: {
        ...BASE_LABELS,
        'org.opencontainers.image.source': 'https://example.com/app',
        'io.buildpacks.lifecycle.metadata': JSON.stringify(lifecycle),
        'moby.buildkit.buildinfo.v1': Buffer.from(JSON.stringify(buildinfo)).toString('base64'),
      },
    },
    history: [...baseHistory, at('COPY app /app # buildkit', { comment: 'buildkit.dockerfile.v0' }), at('CMD ["/app/main.sh"]', { comment: 'buildkit.dockerfile.v0', empty_layer: true })],
  });
}

function multiImages(base: BuiltImage): { index: BuiltIndex; amd64: BuiltImage; arm64: BuiltImage; attestation: BuiltImage } {
  const shared = base.layers[0]!;
  const archImage = (platform: Platform): BuiltImage => {
    const arch = platform.variant ? `${platform.architecture}/${platform.variant}` : platform.architecture;
    const top = makeLayer([
      { path: 'etc', type: 'dir' },
      { path: 'etc/arch', content: `${arch}\n` },
    ]);
    return buildImage({
      platform,
      layers: [shared, top],
      config: { Env: [DEFAULT_PATH_ENV], Cmd: ['/bin/hello'], Labels: { 'org.opencontainers.image.source': 'https://example.com/multi' } },
      history: [at('ADD rootfs.tar / # buildkit', { comment: 'buildkit.dockerfile.v0' }), at(`RUN echo ${arch} > /etc/arch # buildkit`, { comment: 'buildkit.dockerfile.v0' })],
    });
  };
  const amd64 = archImage(LINUX_AMD64);
  const arm64 = archImage(LINUX_ARM64);
  const provenance = {
    _type: 'https://in-toto.io/Statement/v0.1',
    predicateType: 'https://slsa.dev/provenance/v0.2',
    subject: [{ name: 'pkg:docker/example/multi@multi?platform=linux%2Famd64', digest: { sha256: hexOf(amd64.descriptor.digest) } }],
    predicate: {
      builder: { id: '' },
      buildType: 'https://mobyproject.org/buildkit@v1',
      materials: [
        {
          uri: `pkg:docker/example/base@1.0?digest=${base.descriptor.digest}&platform=linux%2Famd64`,
          digest: { sha256: hexOf(base.descriptor.digest) },
        },
      ],
      invocation: { configSource: { entryPoint: 'Dockerfile' }, parameters: { frontend: 'dockerfile.v0' } },
      metadata: { buildStartedOn: FIXED_CREATED, buildFinishedOn: FIXED_CREATED, completeness: { parameters: true, environment: true, materials: false }, reproducible: false },
    },
  };
  const statement = rawLayer(JSON.stringify(provenance), MediaType.inToto, { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v0.2' });
  const unknown: Platform = { architecture: 'unknown', os: 'unknown' };
  const attestation = buildImage({
    platform: unknown,
    layers: [statement],
    // BuildKit's attestation config: unknown platform, diff_ids = the statement digests, no history.
    configBlob: jsonBlob(
      { architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [statement.diffId] } },
      MediaType.ociConfig,
    ),
    descriptor: {
      annotations: { 'vnd.docker.reference.digest': amd64.descriptor.digest, 'vnd.docker.reference.type': 'attestation-manifest' },
    },
  });
  const index = buildIndex({
    manifests: [amd64.descriptor, arm64.descriptor, attestation.descriptor],
    children: [...amd64.blobs, ...arm64.blobs, ...attestation.blobs],
  });
  return { index, amd64, arm64, attestation };
}

function nestedImages(): { outer: BuiltIndex; inner: BuiltIndex; image: BuiltImage } {
  const image = buildImage({
    layers: [makeLayer([{ path: 'nested.txt', content: 'reached through two indexes\n' }])],
    config: { Env: [DEFAULT_PATH_ENV], Cmd: ['/bin/sh'] },
    history: [at('ADD nested.txt / # buildkit')],
  });
  const inner = buildIndex({ manifests: [image.descriptor], children: image.blobs });
  const outer = buildIndex({ manifests: [inner.descriptor], children: inner.blobs });
  return { outer, inner, image };
}

function artifactImages(): { image: BuiltImage; artifact: BuiltImage } {
  const image = buildImage({
    layers: [makeLayer([{ path: 'signed.txt', content: 'an image that carries a signature\n' }])],
    config: { Env: [DEFAULT_PATH_ENV], Cmd: ['/bin/sh'] },
    history: [at('ADD signed.txt / # buildkit')],
  });
  const signature = rawLayer(
    JSON.stringify({ critical: { identity: { 'docker-reference': 'example.com/signed' }, image: { 'docker-manifest-digest': image.descriptor.digest }, type: 'example signature' }, optional: null }),
    'application/vnd.example.signature.v1+json',
    { 'org.opencontainers.image.title': 'signature.json' },
  );
  const created = { 'org.opencontainers.image.created': FIXED_CREATED };
  const { platform: _platform, ...subject } = image.descriptor;
  const artifact = buildImage({
    layers: [signature],
    configBlob: emptyBlob(),
    artifactType: 'application/vnd.example.signature.v1',
    subject,
    annotations: created,
    descriptor: { annotations: created },
  });
  return { image, artifact };
}

function dockerTypesImage(): BuiltImage {
  const layer = makeLayer(
    [
      { path: 'etc', type: 'dir' },
      { path: 'etc/docker-built', content: 'built by docker build (schema2 media types)\n' },
    ],
    'gzip',
    { mediaType: MediaType.dockerLayerGzip },
  );
  return buildImage({
    docker: true,
    layers: [layer],
    config: { Env: [DEFAULT_PATH_ENV], Cmd: ['/bin/sh'], Labels: { maintainer: 'fixtures@example.com' } },
    history: [at('/bin/sh -c #(nop) ADD file:docker-built in /etc/ '), at('/bin/sh -c #(nop)  CMD ["/bin/sh"]', { empty_layer: true })],
    configExtra: { docker_version: '24.0.7' },
  });
}

function zstdImage(): BuiltImage {
  const zstdLayer = makeLayer(
    [
      { path: 'opt', type: 'dir' },
      { path: 'opt/zstd.txt', content: 'this layer is zstd compressed (raw blocks)\n'.repeat(4) },
    ],
    'zstd',
  );
  const plainLayer = makeLayer(
    [
      { path: 'opt', type: 'dir' },
      { path: 'opt/plain.txt', content: 'this layer is an uncompressed tar\n' },
    ],
    'none',
  );
  return buildImage({
    layers: [zstdLayer, plainLayer],
    config: { Env: [DEFAULT_PATH_ENV], Cmd: ['/bin/sh'] },
    history: [at('ADD zstd.txt /opt/ # buildkit'), at('ADD plain.txt /opt/ # buildkit')],
  });
}

function whiteoutImage(): BuiltImage {
  const lower = makeLayer([
    { path: 'dir', type: 'dir' },
    { path: 'dir/a.txt', content: 'a\n' },
    { path: 'dir/b.txt', content: 'b\n' },
    { path: 'kept.txt', content: 'kept\n' },
    { path: 'removed-file', content: 'this file is deleted by the next layer\n' },
  ]);
  const upper = makeLayer([
    { path: '.wh.removed-file' },
    { path: 'dir', type: 'dir' },
    { path: 'dir/.wh..wh..opq' },
    { path: 'dir/c.txt', content: 'c\n' },
  ]);
  return buildImage({
    layers: [lower, upper],
    config: { Env: [DEFAULT_PATH_ENV], Cmd: ['/bin/sh'] },
    history: [at('ADD files / # buildkit'), at('RUN rm /removed-file && rm -rf /dir/* && echo c > /dir/c.txt # buildkit')],
  });
}

/** Every sample image, built in memory (no I/O). */
export function sampleImages() {
  const base = baseImage('Welcome to the example base image (v1).\n', '1.0');
  const baseV2 = baseImage('Welcome to the example base image (v2, patched).\n', '2.0');
  const app = appImage(base);
  const multi = multiImages(base);
  const nested = nestedImages();
  const artifact = artifactImages();
  const docker = dockerTypesImage();
  const zstd = zstdImage();
  const whiteouts = whiteoutImage();
  return { base, baseV2, app, multi, nested, artifact, docker, zstd, whiteouts };
}
export type SampleImages = ReturnType<typeof sampleImages>;

/** The committed fixtures as relative path (under the testdata root) → bytes. */
export async function fixtureFiles(): Promise<Map<string, Buffer>> {
  const s = sampleImages();
  const layouts: Record<string, LayoutSpec> = {
    base: { manifests: [tagged(s.base.descriptor, '1.0')], blobs: s.base.blobs },
    'base-v2': { manifests: [tagged(s.baseV2.descriptor, '2.0')], blobs: s.baseV2.blobs },
    app: { manifests: [tagged(s.app.descriptor, 'latest')], blobs: s.app.blobs },
    multi: { manifests: [tagged(s.multi.index.descriptor, 'multi')], blobs: s.multi.index.blobs },
    nested: { manifests: [tagged(s.nested.outer.descriptor, 'nested')], blobs: s.nested.outer.blobs },
    artifact: {
      manifests: [tagged(s.artifact.image.descriptor, 'latest'), s.artifact.artifact.descriptor],
      blobs: [...s.artifact.image.blobs, ...s.artifact.artifact.blobs],
    },
    'docker-types': { manifests: [tagged(s.docker.descriptor, 'docker')], blobs: s.docker.blobs },
    zstd: { manifests: [tagged(s.zstd.descriptor, 'zstd')], blobs: s.zstd.blobs },
    whiteouts: { manifests: [tagged(s.whiteouts.descriptor, 'whiteouts')], blobs: s.whiteouts.blobs },
  };
  const out = new Map<string, Buffer>();
  for (const [name, spec] of Object.entries(layouts)) {
    for (const [file, bytes] of layoutFiles(spec)) out.set(`layouts/${name}/${file}`, bytes);
  }
  const appFiles = layoutFiles(layouts.app!);
  out.set('archives/app.oci.tar', await ociArchive(appFiles));
  out.set('archives/app.docker.tar', await dockerSaveLegacy(s.app, { repoTag: 'example.com/app:latest' }));
  out.set('archives/app.docker25.tar', await dockerSave25(s.app, { repoTag: 'example.com/app:latest' }));
  return out;
}

/** The directories `buildFixtures` owns (and wipes) under its root. */
export const FIXTURE_DIRS = ['layouts', 'archives'] as const;

/**
 * (Re)create every fixture under `root` (normally `testdata/`). Only
 * `root/layouts` and `root/archives` are removed first, so stale blobs vanish.
 */
export async function buildFixtures(root: string): Promise<Map<string, Buffer>> {
  const files = await fixtureFiles();
  for (const d of FIXTURE_DIRS) await rm(join(root, d), { recursive: true, force: true });
  await writeFiles(root, files);
  return files;
}
