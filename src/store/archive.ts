import { readSync, type Stats } from 'node:fs';
import { stat, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { OcikitError } from '../errors.js';
import { digestFromBlobPath, digestOf, isDigest, type Digest } from '../model/digest.js';
import type { Descriptor } from '../model/descriptor.js';
import { CONTAINERD_IMAGE_NAME, REF_NAME } from '../model/keys.js';
import { DEFAULT_MAX_DOCUMENT_BYTES, parseDocument, parseJson, type Doc } from '../model/document.js';
import { dockerSaveEntrySchema, dockerSaveManifestSchema, type DockerSaveEntry } from '../model/docker-save.js';
import { imageConfigSchema } from '../model/image-config.js';
import { imageIndexSchema, type ImageIndex } from '../model/image-index.js';
import { MediaType } from '../model/media-types.js';
import type { BlobRef, Store } from './store.js';
import { linkTarget, openRegular, readEntry, resolveEntry, scanTar, type TarEntry, type TarIndex } from './tar-format.js';

/** Where a blob's bytes are: a tar entry, or bytes ocikit made up (a legacy docker-save manifest). */
type BlobSource = { entry: TarEntry } | { bytes: Buffer };

export interface ArchiveOpenOptions {
  /**
   * For verify, which reports what is broken instead of refusing it: index.json is parsed only when
   * readIndex is called, and a docker-save image that cannot be built is left out (see skippedImages).
   */
  tolerant?: boolean;
}

/** A docker-save image left out by a tolerant open, and why; no index when manifest.json's own shape is at fault. */
export interface SkippedImage {
  index?: number;
  message: string;
}

/**
 * An OCI archive or docker-save tarball, read in place: entry headers are scanned once and blobs are
 * read by offset. Nothing is extracted and no layer byte is read unless a caller streams that layer.
 */
export class ArchiveStore implements Store {
  private readonly blobs = new Map<Digest, BlobSource>();
  private index: Doc<ImageIndex> | undefined;
  /** index.json as stored, parsed on first use (tolerant open). */
  private indexRaw: Buffer | undefined;
  private tolerant = false;
  readonly skippedImages: SkippedImage[] = [];

  private constructor(readonly kind: 'oci-archive' | 'docker-archive', readonly path: string, readonly tar: TarIndex) {}

  /** Which file was read (inode, size, mtime), so a writer can tell whether it was replaced since. */
  identity = '';

  static async open(path: string, kind?: 'oci-archive' | 'docker-archive', options: ArchiveOpenOptions = {}): Promise<ArchiveStore> {
    const identity = await archiveIdentity(path);
    const tar = await scanTar(path);
    await checkEntries(tar);
    const detected = kind ?? (tar.byName.has('manifest.json') ? 'docker-archive' : 'oci-archive');
    const store = new ArchiveStore(detected, path, tar);
    store.identity = identity;
    store.tolerant = options.tolerant ?? false;
    await store.load();
    return store;
  }

  /** The raw bytes of a top-level file such as oci-layout, or undefined when absent. */
  async readTopFile(name: string, maxBytes = DEFAULT_MAX_DOCUMENT_BYTES): Promise<Buffer | undefined> {
    if (!this.tar.byName.has(name)) return undefined;
    return this.read(resolveEntry(this.tar, name), maxBytes);
  }

  async readIndex(): Promise<Doc<ImageIndex>> {
    if (!this.index && this.indexRaw) this.index = parseDocument(imageIndexSchema, this.indexRaw, `${this.path}:index.json`);
    if (!this.index) throw new OcikitError(`${this.path}: no index.json in the archive`);
    return this.index;
  }

  async statBlob(digest: Digest): Promise<number | undefined> {
    const source = this.blobs.get(digest);
    if (!source) return undefined;
    return 'entry' in source ? source.entry.size : source.bytes.length;
  }

  async readBlob(digest: Digest, maxBytes = Number.MAX_SAFE_INTEGER): Promise<Buffer> {
    const source = this.source(digest);
    return 'entry' in source ? this.read(source.entry, maxBytes) : source.bytes;
  }

  async openBlob(digest: Digest): Promise<Readable> {
    const source = this.source(digest);
    if (!('entry' in source)) return Readable.from([source.bytes]);
    const { entry } = source;
    const fh = await this.openScanned();
    if (entry.size === 0) {
      await fh.close();
      return Readable.from([]);
    }
    return fh.createReadStream({ start: entry.offset, end: entry.offset + entry.size - 1, highWaterMark: 1 << 20 });
  }

  /**
   * Entries are read by the offsets the scan found, so every read must hit the file that was scanned:
   * a writer that replaced the archive meanwhile (a new inode) makes the read fail instead of
   * returning bytes from another file.
   */
  private async openScanned(): Promise<FileHandle> {
    const fh = await openRegular(this.path);
    const info = await fh.stat().catch(async (err) => {
      await fh.close();
      throw err;
    });
    if (identityOf(info) !== this.identity) {
      await fh.close();
      throw new OcikitError(`${this.path}: was replaced by another process while being read; run the command again`);
    }
    return fh;
  }

  private async read(entry: TarEntry, maxBytes?: number): Promise<Buffer> {
    const fh = await this.openScanned();
    try {
      return await readEntry(fh, entry, maxBytes);
    } finally {
      await fh.close();
    }
  }

  /** The tar entry holding a blob (links resolved); undefined for absent blobs and synthesized manifests. */
  blobEntry(digest: Digest): TarEntry | undefined {
    const source = this.blobs.get(digest);
    return source && 'entry' in source ? source.entry : undefined;
  }

  isSynthesized(digest: Digest): boolean {
    const source = this.blobs.get(digest);
    return source !== undefined && !('entry' in source);
  }

  async listBlobs(): Promise<BlobRef[]> {
    return [...this.blobs].map(([digest, s]) => ({ digest, size: 'entry' in s ? s.entry.size : s.bytes.length }));
  }

  /** Entries that are not blobs, index.json, oci-layout or docker-save metadata: carried along by writers. */
  otherEntries(): TarEntry[] {
    const known = new Set(['oci-layout', 'index.json', 'manifest.json', 'repositories']);
    return this.tar.entries.filter((e) => e.type === 'file' && !known.has(e.name) && !digestFromBlobPath(e.name) && !this.legacyNames.has(e.name));
  }

  async close(): Promise<void> {}

  private legacyNames = new Set<string>();

  private source(digest: Digest): BlobSource {
    const source = this.blobs.get(digest);
    if (!source) throw new OcikitError(`${this.path}: blob ${digest} is not in the archive`);
    return source;
  }

  private async load(): Promise<void> {
    for (const entry of this.tar.entries) {
      const digest = digestFromBlobPath(entry.name);
      if (digest && entry.type !== 'dir') this.blobs.set(digest, { entry: resolveEntry(this.tar, entry.name) });
    }
    const indexRaw = await this.readTopFile('index.json');
    if (indexRaw && (this.kind === 'oci-archive' || this.listsImages(indexRaw))) {
      this.indexRaw = indexRaw;
      if (!this.tolerant) await this.readIndex();
      return;
    }
    if (this.kind === 'docker-archive') await this.synthesizeFromDockerSave();
  }

  /** Docker 25+ may write `"manifests": null`; its images are then in manifest.json only. */
  private listsImages(indexRaw: Buffer): boolean {
    try {
      return (parseJson(indexRaw, `${this.path}:index.json`) as { manifests?: unknown } | null)?.manifests != null;
    } catch (err) {
      if (this.tolerant) return false; // verify reports the broken index.json; manifest.json may still hold the images
      throw err;
    }
  }

  /**
   * Legacy docker-save tarballs (and Docker 25+ ones whose index.json lists no manifests) have no manifest
   * blob: one is made up per image from manifest.json, with layer digests from the entry names or diff_ids.
   */
  private async synthesizeFromDockerSave(): Promise<void> {
    const raw = await this.readTopFile('manifest.json');
    if (!raw) throw new OcikitError(`${this.path}: neither index.json nor manifest.json in the archive`);
    const manifests: Descriptor[] = [];
    for (const [i, image] of this.dockerSaveImages(raw).entries()) {
      if (!image) continue;
      const manifest = await this.synthesizeManifest(image, `${this.path}:manifest.json $[${i}]`).catch((err: unknown) => this.skip(i, err));
      if (!manifest) continue;
      const descriptor = { mediaType: MediaType.dockerManifest, digest: digestOf(manifest), size: manifest.length };
      this.blobs.set(descriptor.digest, { bytes: manifest });
      const tags = image.RepoTags ?? [];
      if (tags.length === 0) manifests.push(descriptor);
      for (const tag of tags) manifests.push({ ...descriptor, annotations: { [CONTAINERD_IMAGE_NAME]: tag, [REF_NAME]: tag } });
    }
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }));
    this.index = { raw: index, value: parseDocument(imageIndexSchema, index, `${this.path}:manifest.json`).value };
  }

  /** manifest.json's entries; tolerant: the unusable ones skipped (undefined), a broken file as none. */
  private dockerSaveImages(raw: Buffer): Array<DockerSaveEntry | undefined> {
    const where = `${this.path}:manifest.json`;
    if (!this.tolerant) return parseDocument(dockerSaveManifestSchema, raw, where).value;
    let value: unknown;
    try {
      value = parseJson(raw, where);
    } catch (err) {
      this.skip(undefined, err);
      return [];
    }
    if (!Array.isArray(value)) {
      this.skip(undefined, new OcikitError(`${where}: not an array`));
      return [];
    }
    return value.map((entry, i) => {
      const parsed = dockerSaveEntrySchema.safeParse(entry);
      if (!parsed.success) this.skip(undefined, new OcikitError(`${where} $[${i}]: not a {Config, Layers} entry`));
      return parsed.success ? parsed.data : undefined;
    });
  }

  /** Tolerant: records an image that cannot be built. Otherwise the error stands. */
  private skip(index: number | undefined, err: unknown): undefined {
    if (!this.tolerant) throw err;
    this.skippedImages.push(index === undefined ? { message: (err as Error).message } : { index, message: (err as Error).message });
    return undefined;
  }

  private async synthesizeManifest(image: DockerSaveEntry, where: string): Promise<Buffer> {
    const configEntry = this.entry(image.Config, `${where}.Config`);
    const configRaw = await this.read(configEntry, DEFAULT_MAX_DOCUMENT_BYTES);
    const config = parseDocument(imageConfigSchema, configRaw, `${this.path}:${image.Config}`).value;
    const configDigest = digestOf(configRaw);
    this.addLegacyBlob(image.Config, configDigest, configEntry);
    const layers: Descriptor[] = [];
    for (const [j, name] of image.Layers.entries()) {
      const entry = this.entry(name, `${where}.Layers[${j}]`);
      const digest = digestFromBlobPath(name) ?? digestFromLegacyName(name) ?? config.rootfs.diff_ids[j];
      if (!digest || !isDigest(digest)) throw new OcikitError(`${where}.Layers[${j}]: cannot tell the digest of ${name}`);
      this.addLegacyBlob(name, digest, entry);
      layers.push({ mediaType: await this.sniffLayerType(entry), size: entry.size, digest });
    }
    const config_ = { mediaType: MediaType.dockerConfig, size: configRaw.length, digest: configDigest };
    return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.dockerManifest, config: config_, layers }, null, 3));
  }

  private entry(name: string, where: string): TarEntry {
    if (!this.tar.byName.has(name)) throw new OcikitError(`${where}: ${name} is not in the archive ${this.path}`);
    return resolveEntry(this.tar, name);
  }

  private addLegacyBlob(name: string, digest: Digest, entry: TarEntry): void {
    this.legacyNames.add(name);
    if (!this.blobs.has(digest)) this.blobs.set(digest, { entry });
  }

  /** Compression is told by magic bytes (4 bytes read), since docker save keeps no media type. */
  private async sniffLayerType(entry: TarEntry): Promise<string> {
    const head = Buffer.alloc(4);
    const fh = await this.openScanned();
    try {
      await fh.read(head, 0, Math.min(4, entry.size), entry.offset);
    } finally {
      await fh.close();
    }
    if (head[0] === 0x1f && head[1] === 0x8b) return MediaType.dockerLayerGzip;
    if (head.readUInt32LE(0) === 0xfd2fb528) return MediaType.ociLayerZstd;
    return MediaType.dockerLayer;
  }
}

const errnoCode = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;

/** The identity of the file to scan; a missing path or one that is not a file is the caller's mistake, said plainly. */
async function archiveIdentity(path: string): Promise<string> {
  const info = await stat(path).catch((err: unknown) => {
    throw errnoCode(err) === 'ENOENT' ? new OcikitError(`${path}: no such file`) : err;
  });
  if (!info.isFile()) throw new OcikitError(`${path}: not a tar file (${info.isDirectory() ? 'a directory' : 'not a regular file'})`);
  return identityOf(info);
}

export async function fileIdentity(path: string): Promise<string> {
  return identityOf(await stat(path));
}

function identityOf(info: Stats): string {
  return `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`;
}

const SPECIAL_FILES: Record<string, string> = { '3': 'a character device', '4': 'a block device', '6': 'a FIFO', S: 'a sparse file' };

/**
 * Refuses, before anything is read, what no image tool writes and what extracting tools have been
 * tricked by: device files, links out of the archive, entries that lie under a link (written "through"
 * it on extraction), and one name holding two different files.
 */
async function checkEntries(tar: TarIndex): Promise<void> {
  const entry = (e: TarEntry) => `tar ${tar.path}: entry ${JSON.stringify(e.name)}`;
  const nonDirectories = new Set(tar.entries.filter((e) => e.type !== 'dir').map((e) => e.name));
  for (const e of tar.entries) {
    if (e.type === 'other') {
      const what = SPECIAL_FILES[e.typeflag] ?? (e.typeflag === '0' || e.typeflag === '\0' ? 'a sparse file' : `of type ${JSON.stringify(e.typeflag)}`);
      throw new OcikitError(`${entry(e)} is ${what}; an image archive holds only files, directories and links`);
    }
    if ((e.type === 'symlink' || e.type === 'hardlink') && linkTarget(e) === undefined) {
      throw new OcikitError(`${entry(e)} is a ${e.type} to ${JSON.stringify(e.linkname)}, outside the archive`);
    }
    for (let i = e.name.indexOf('/'); i >= 0; i = e.name.indexOf('/', i + 1)) {
      const parent = e.name.slice(0, i);
      if (nonDirectories.has(parent)) throw new OcikitError(`${entry(e)} lies under ${JSON.stringify(parent)}, which is not a directory`);
    }
  }
  await checkDuplicates(tar);
}

/** The copies of every repeated name, grouped in one pass and read through one handle. */
async function checkDuplicates(tar: TarIndex): Promise<void> {
  if (tar.duplicates.length === 0) return;
  const copies = new Map<string, TarEntry[]>(tar.duplicates.map((name) => [name, []]));
  for (const e of tar.entries) copies.get(e.name)?.push(e);
  const fh = await openRegular(tar.path);
  try {
    for (const [name, list] of copies) checkDuplicate(tar, fh, name, list);
  } finally {
    await fh.close();
  }
}

/**
 * Repeated names are allowed only when every copy is the same. Copies too big to compare cheaply
 * need only agree in size: blobs are digest-checked whenever they are used, whichever copy is read.
 */
function checkDuplicate(tar: TarIndex, fh: FileHandle, name: string, copies: TarEntry[]): void {
  if (copies.every((e) => e.type === 'dir')) return;
  const first = copies[0]!;
  const content = (e: TarEntry) => (e.type === 'file' && e.size > 0 && e.size <= DEFAULT_MAX_DOCUMENT_BYTES ? readAt(fh, e) : undefined);
  const firstContent = content(first);
  for (const other of copies.slice(1)) {
    const same = other.type === first.type && other.size === first.size && other.linkname === first.linkname
      && (!firstContent || firstContent.equals(content(other)!));
    if (!same) throw new OcikitError(`tar ${tar.path}: duplicate entry ${JSON.stringify(name)} with different content; tools disagree on which copy counts`);
  }
}

/** Synchronous: thousands of small copies cost a thread-pool round trip each when awaited (20,000: 3 s). */
function readAt(fh: FileHandle, entry: TarEntry): Buffer {
  const buf = Buffer.allocUnsafe(entry.size);
  for (let done = 0; done < buf.length; ) {
    const n = readSync(fh.fd, buf, done, buf.length - done, entry.offset + done);
    if (n === 0) throw new OcikitError(`tar entry ${JSON.stringify(entry.name)}: expected ${entry.size} bytes at offset ${entry.offset}, file ends after ${done}`);
    done += n;
  }
  return buf;
}

/** skopeo and Docker name layer files after their digest: `<hex>.tar`, `<hex>/layer.tar` is not one. */
function digestFromLegacyName(name: string): Digest | undefined {
  const m = /^([a-f0-9]{64})\.tar$/.exec(name);
  return m ? `sha256:${m[1]}` : undefined;
}

