import { createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { OcikitError, withPath } from '../errors.js';
import { blobPath, digestOf, type Digest } from '../model/digest.js';
import type { Descriptor } from '../model/descriptor.js';
import { fullNameOf, withLatest } from '../model/image-name.js';
import { parseDocument, parseJson } from '../model/document.js';
import { imageIndexSchema, type ImageIndex } from '../model/image-index.js';
import { IMAGE_LAYOUT_VERSION } from '../model/oci-layout.js';
import { isIndexType, isManifestType } from '../model/media-types.js';
import { fileIdentity, type ArchiveStore } from './archive.js';
import { removeStaleTempsFor, syncDir, tempPathFor } from './atomic-file.js';
import { acquireLock, type Lock, type LockOptions } from './lock.js';
import type { BlobRef, Store, StoreWriter } from './store.js';
import { entryStream, TarWriter } from './tar-format.js';
import { verifiedBlob } from './verified-blob.js';

type PendingBlob = { size: number; open: () => Promise<Readable>; verify?: BlobRef; where: string };

/**
 * Writes a new OCI archive or docker-save tarball. Blobs are only noted until commit, then streamed
 * (and verified) straight from their sources into a temp file that replaces the target atomically.
 */
export class ArchiveWriter implements StoreWriter {
  private readonly blobs = new Map<Digest, PendingBlob>();
  private state: 'open' | 'committing' | 'closed' = 'open';
  private committed: Promise<void> | undefined;
  private interrupted = false;

  private constructor(
    readonly kind: 'oci-archive' | 'docker-archive',
    readonly path: string,
    private readonly lock: Lock,
    private readonly base: ArchiveStore | undefined,
    private readonly repoTag: string | undefined,
  ) {}

  /** `base` is the archive being rewritten in place: its blobs and unknown entries are carried over. */
  static async open(
    path: string, kind: 'oci-archive' | 'docker-archive',
    options: LockOptions & { base?: ArchiveStore; repoTag?: string } = {},
  ): Promise<ArchiveWriter> {
    await checkParent(path);
    const lock = await acquireLock(`${path}.ocikit-lock`, path, options);
    try {
      // The archive was read before the lock was taken: if another writer replaced it since, writing
      // what was read would silently drop that writer's change.
      if (options.base && (await fileIdentity(path).catch(() => '')) !== options.base.identity) {
        throw new OcikitError(`${path}: was rewritten by another process after it was read; nothing was written (run the command again)`);
      }
      await removeStaleTempsFor(path, `${basename(path)}.ocikit-lock`, `${basename(path)}.ocikit-lock.break`);
    } catch (err) {
      await lock.release();
      throw err;
    }
    const writer = new ArchiveWriter(kind, path, lock, options.base, options.repoTag);
    if (options.base) for (const blob of await options.base.listBlobs()) writer.carry(options.base, blob, false);
    return writer;
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    return this.blobs.has(digest);
  }

  async putBlob(data: Buffer): Promise<BlobRef> {
    this.checkOpen();
    const blob = { digest: digestOf(data), size: data.length };
    this.blobs.set(blob.digest, { size: data.length, open: async () => Readable.from([data]), where: 'new blob' });
    return blob;
  }

  async copyBlob(from: Store, blob: BlobRef): Promise<void> {
    this.checkOpen();
    if (!this.blobs.has(blob.digest)) this.carry(from, blob, true);
  }

  private carry(from: Store, blob: BlobRef, verify: boolean): void {
    this.blobs.set(blob.digest, { size: blob.size, open: () => from.openBlob(blob.digest), verify: verify ? blob : undefined, where: from.path });
  }

  async commit(index: Buffer): Promise<void> {
    this.checkOpen();
    parseDocument(imageIndexSchema, index, `${this.path}:index.json`); // a tarball is never written around an index no reader accepts
    this.state = 'committing';
    this.committed = this.write(index);
    return this.committed;
  }

  private async write(index: Buffer): Promise<void> {
    const temp = tempPathFor(this.path);
    try {
      const out = createWriteStream(temp, { flags: 'wx', mode: 0o644, highWaterMark: 1 << 20 });
      const tar = new TarWriter(out);
      for (const [name, blob] of await this.entries(index)) {
        if (this.interrupted) throw new OcikitError(`${this.path}: interrupted; the tarball was not written`);
        const source = await blob.open();
        await tar.addFile(name, blob.size, blob.verify ? verifying(source, blob.verify, blob.where) : source);
      }
      await tar.finish();
      await finished(out);
      const fh = await open(temp, 'r');
      await fh.sync().finally(() => fh.close());
      await rename(temp, this.path);
      await syncDir(dirname(this.path));
    } catch (err) {
      await rm(temp, { force: true });
      throw withPath(err, this.path);
    } finally {
      await this.finish();
    }
  }

  /** Before commit: drops the change. During commit: stops it at the next entry and removes the temp file. */
  async abort(): Promise<void> {
    if (this.state === 'committing') {
      this.interrupted = true;
      await this.committed?.catch(() => undefined);
      return;
    }
    await this.finish();
  }

  private checkOpen(): void {
    if (this.state !== 'open') throw new OcikitError(`${this.path}: this write was already ${this.state === 'committing' ? 'committing' : 'finished or aborted'}`);
  }

  private async finish(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    await this.lock.release();
  }

  /** Every entry of the new tarball, sorted by name so the same content gives the same bytes. */
  private async entries(index: Buffer): Promise<Array<[string, PendingBlob]>> {
    const file = (data: Buffer, where: string): PendingBlob => ({ size: data.length, open: async () => Readable.from([data]), where });
    const entries = new Map<string, PendingBlob>();
    const layout = (await this.base?.readTopFile('oci-layout')) ?? Buffer.from(JSON.stringify({ imageLayoutVersion: IMAGE_LAYOUT_VERSION }));
    entries.set('oci-layout', file(layout, 'oci-layout'));
    entries.set('index.json', file(index, 'index.json'));
    for (const [digest, blob] of this.blobs) entries.set(blobPath(digest), blob);
    if (this.kind === 'docker-archive') {
      entries.set('manifest.json', file(await this.dockerSaveManifest(index), 'manifest.json'));
    }
    for (const entry of this.base?.otherEntries() ?? []) {
      if (!entries.has(entry.name)) {
        const base = this.base!;
        entries.set(entry.name, { size: entry.size, open: async () => entryStream(base.path, entry), where: base.path });
      }
    }
    return [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** manifest.json for `docker load`: one entry per image manifest, RepoTags from the ref names. */
  private async dockerSaveManifest(indexRaw: Buffer): Promise<Buffer> {
    const index = parseJson(indexRaw, 'index.json') as ImageIndex;
    const images: Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }> = [];
    const byDigest = new Map<Digest, (typeof images)[number]>();
    for (const descriptor of await this.imageManifests(index.manifests)) {
      const tag = repoTagOf(descriptor, this.repoTag);
      const known = byDigest.get(descriptor.digest);
      if (known) {
        if (tag && !known.RepoTags?.includes(tag)) known.RepoTags = [...(known.RepoTags ?? []), tag];
        continue;
      }
      const manifest = parseJson(await this.read(descriptor.digest), descriptor.digest) as { config: Descriptor; layers: Descriptor[] };
      const image = { Config: blobPath(manifest.config.digest), RepoTags: tag ? [tag] : null, Layers: manifest.layers.map((l) => blobPath(l.digest)) };
      byDigest.set(descriptor.digest, image);
      images.push(image);
    }
    return Buffer.from(JSON.stringify(images));
  }

  /** Image manifests named by index.json, looking one level into indexes (docker save holds single-platform images). */
  private async imageManifests(descriptors: Descriptor[]): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    for (const d of descriptors) {
      if (isManifestType(d.mediaType)) out.push(d);
      else if (isIndexType(d.mediaType)) {
        const child = parseJson(await this.read(d.digest), d.digest) as ImageIndex;
        for (const m of child.manifests) {
          const platform = m.platform;
          if (isManifestType(m.mediaType) && platform && platform.os !== 'unknown') out.push({ ...m, annotations: { ...m.annotations, ...d.annotations } });
        }
      }
    }
    return out;
  }

  private async read(digest: Digest): Promise<Buffer> {
    const blob = this.blobs.get(digest);
    if (!blob) throw new OcikitError(`${this.path}: blob ${digest} was not written to the archive`);
    const chunks: Buffer[] = [];
    for await (const chunk of await blob.open()) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
}

/** A tarball is written beside itself (temp file, lock), so its directory must exist; it is not made up. */
async function checkParent(path: string): Promise<void> {
  const parent = dirname(path);
  const info = await stat(parent).catch(() => undefined);
  if (!info) throw new OcikitError(`${path}: no such directory ${parent}`);
  if (!info.isDirectory()) throw new OcikitError(`${path}: ${parent} is not a directory`);
}

/** A RepoTag needs a repository: a bare tag `v1` is written as `localhost/image:v1` (documented in the README). */
function repoTagOf(descriptor: Descriptor, override: string | undefined): string | undefined {
  if (override) return withLatest(override);
  const name = fullNameOf(descriptor);
  if (!name) return undefined;
  return /[/:]/.test(name) ? withLatest(name) : `localhost/image:${name}`;
}

/** The source piped through a size and digest check; a failure on either side fails the consumer. */
function verifying(source: Readable, blob: BlobRef, where: string): Readable {
  const checked = verifiedBlob(blob, where);
  pipeline(source, checked).catch(() => {}); // the error reaches the consumer through `checked`
  return checked;
}
