import { constants, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OcikitError } from '../errors.js';
import { blobPath, digestFromBlobPath, digestOf, type Digest } from '../model/digest.js';
import { parseDocument, DEFAULT_MAX_DOCUMENT_BYTES, type Doc } from '../model/document.js';
import { imageIndexSchema, type ImageIndex } from '../model/image-index.js';
import { IMAGE_LAYOUT_VERSION } from '../model/oci-layout.js';
import { removeStaleTemps, syncDir, tempPathFor, writeFileAtomic } from './atomic-file.js';
import { acquireLock, type Lock, type LockOptions } from './lock.js';
import type { BlobRef, Store, StoreWriter } from './store.js';
import { verifiedBlob } from './verified-blob.js';

export const LOCK_FILE = '.ocikit-lock';

/** One file found under blobs/, whether or not it is a valid blob. */
export interface BlobEntry {
  /** Relative to the layout root. */
  path: string;
  digest?: Digest;
  size: number;
  type: 'file' | 'symlink' | 'other';
}

/** Reads that never follow a symlink: a blob or index.json linked out of the layout is refused. */
async function readNoFollow(path: string, where: string, maxBytes: number): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new OcikitError(`${where}: is a symlink; refusing to follow it`);
    throw err;
  }
  try {
    const info = await fh.stat();
    if (!info.isFile()) throw new OcikitError(`${where}: not a regular file`);
    if (info.size > maxBytes) throw new OcikitError(`${where}: ${info.size} bytes is over the ${maxBytes}-byte limit for documents`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

export class DirStore implements Store {
  readonly kind = 'oci' as const;
  private checkedDirs = new Set<string>();

  constructor(readonly path: string) {}

  async readIndex(): Promise<Doc<ImageIndex>> {
    const where = join(this.path, 'index.json');
    const raw = await this.readTopFile('index.json', DEFAULT_MAX_DOCUMENT_BYTES);
    if (!raw) throw new OcikitError(`${where}: missing (not an OCI image layout?)`);
    return parseDocument(imageIndexSchema, raw, where);
  }

  /** A top-level file such as oci-layout or index.json, or undefined when absent. */
  async readTopFile(name: string, maxBytes = DEFAULT_MAX_DOCUMENT_BYTES): Promise<Buffer | undefined> {
    try {
      return await readNoFollow(join(this.path, name), join(this.path, name), maxBytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async statBlob(digest: Digest): Promise<number | undefined> {
    const path = await this.blobFile(digest);
    try {
      const info = await lstat(path);
      if (!info.isFile()) throw new OcikitError(`${path}: blob is not a regular file`);
      return info.size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async readBlob(digest: Digest, maxBytes = Number.MAX_SAFE_INTEGER): Promise<Buffer> {
    const path = await this.blobFile(digest);
    try {
      return await readNoFollow(path, path, maxBytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new OcikitError(`${path}: blob ${digest} is missing`);
      throw err;
    }
  }

  async openBlob(digest: Digest): Promise<Readable> {
    const path = await this.blobFile(digest);
    let fh;
    try {
      fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new OcikitError(`${path}: blob ${digest} is missing`);
      if (code === 'ELOOP') throw new OcikitError(`${path}: blob is a symlink; refusing to follow it`);
      throw err;
    }
    return fh.createReadStream({ highWaterMark: 1 << 20 });
  }

  async listBlobs(): Promise<BlobRef[]> {
    return (await this.inventory())
      .filter((e): e is BlobEntry & { digest: Digest } => e.type === 'file' && e.digest !== undefined)
      .map(({ digest, size }) => ({ digest, size }));
  }

  /** Every entry under blobs/<alg>/, with anomalies (symlinks, bad names) kept for verify to report. */
  async inventory(): Promise<BlobEntry[]> {
    const entries: BlobEntry[] = [];
    const blobsDir = join(this.path, 'blobs');
    const algorithms = await readdir(blobsDir, { withFileTypes: true }).catch(() => []);
    for (const alg of algorithms) {
      if (!alg.isDirectory()) {
        entries.push({ path: `blobs/${alg.name}`, size: 0, type: alg.isSymbolicLink() ? 'symlink' : 'other' });
        continue;
      }
      for (const file of await readdir(join(blobsDir, alg.name), { withFileTypes: true })) {
        if (file.name.startsWith('.ocikit-')) continue;
        const path = `blobs/${alg.name}/${file.name}`;
        const type = file.isFile() ? 'file' : file.isSymbolicLink() ? 'symlink' : 'other';
        const size = type === 'file' ? (await lstat(join(this.path, path))).size : 0;
        entries.push({ path, digest: digestFromBlobPath(path), size, type });
      }
    }
    return entries;
  }

  async close(): Promise<void> {}

  /** The blob's path, after checking that blobs/ and blobs/<alg>/ are real directories inside the layout. */
  async blobFile(digest: Digest): Promise<string> {
    const relative = blobPath(digest);
    const algDir = relative.slice(0, relative.lastIndexOf('/'));
    if (!this.checkedDirs.has(algDir)) {
      for (const dir of ['blobs', algDir]) {
        const info = await lstat(join(this.path, dir)).catch(() => undefined);
        if (info?.isSymbolicLink()) throw new OcikitError(`${join(this.path, dir)}: is a symlink; refusing to follow it`);
      }
      this.checkedDirs.add(algDir);
    }
    return join(this.path, relative);
  }
}

export async function isLayoutDir(path: string): Promise<boolean> {
  const info = await stat(join(path, 'oci-layout')).catch(() => undefined);
  return info?.isFile() ?? false;
}

export interface DirWriterOptions extends LockOptions {
  /** Create the layout when the directory is missing or empty. */
  create?: boolean;
}

/** Writes into a layout directory under its lock; blobs land as they come, index.json last. */
export class DirWriter implements StoreWriter {
  readonly kind = 'oci' as const;
  private readonly added: string[] = [];
  private readonly store: DirStore;
  private done = false;

  /** Whether this writer made the layout: an aborted write then removes it again. */
  private constructor(readonly path: string, private readonly lock: Lock, private readonly created: boolean) {
    this.store = new DirStore(path);
  }

  static async open(path: string, options: DirWriterOptions = {}): Promise<DirWriter> {
    const created = options.create ? await createLayout(path) : false;
    if (!created && !(await isLayoutDir(path))) throw new OcikitError(`${path}: not an OCI image layout (no oci-layout file)`);
    const lock = await acquireLock(join(path, LOCK_FILE), path, options);
    try {
      await cleanTemps(path);
      return new DirWriter(path, lock, created);
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    return (await this.store.statBlob(digest)) !== undefined;
  }

  async putBlob(data: Buffer): Promise<BlobRef> {
    const blob = { digest: digestOf(data), size: data.length };
    if (await this.hasBlob(blob.digest)) return blob;
    const target = await this.prepare(blob.digest);
    await writeFileAtomic(target, data);
    this.added.push(target);
    return blob;
  }

  async copyBlob(from: Store, blob: BlobRef): Promise<void> {
    if (await this.hasBlob(blob.digest)) return;
    const target = await this.prepare(blob.digest);
    const temp = tempPathFor(target);
    try {
      const out = createWriteStream(temp, { flags: 'wx', mode: 0o644 });
      await pipeline(await from.openBlob(blob.digest), verifiedBlob(blob, from.path), out);
      const fh = await open(temp, 'r');
      await fh.sync().finally(() => fh.close());
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    this.added.push(target);
  }

  async commit(index: Buffer): Promise<void> {
    try {
      for (const dir of new Set(this.added.map((p) => p.slice(0, p.lastIndexOf('/'))))) await syncDir(dir);
      await writeFileAtomic(join(this.path, 'index.json'), index);
    } finally {
      await this.finish();
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    await Promise.all(this.added.map((p) => rm(p, { force: true })));
    if (this.created) {
      for (const name of ['index.json', 'oci-layout', 'blobs']) await rm(join(this.path, name), { recursive: true, force: true });
    }
    await this.finish();
    if (this.created) await rmdir(this.path).catch(() => {}); // only when empty: never a directory we did not make
  }

  private async finish(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.lock.release();
  }

  private async prepare(digest: Digest): Promise<string> {
    const target = await this.store.blobFile(digest);
    await mkdir(target.slice(0, target.lastIndexOf('/')), { recursive: true });
    return target;
  }
}

/** Makes an empty layout; true when it did (false when one was there already). */
async function createLayout(path: string): Promise<boolean> {
  if (await isLayoutDir(path)) return false;
  const existing = (await readdir(path).catch(() => [] as string[])).filter((n) => n !== LOCK_FILE && !n.startsWith('.ocikit-tmp-'));
  if (existing.length > 0) throw new OcikitError(`${path}: exists and is not an OCI image layout; refusing to write into it`);
  await mkdir(join(path, 'blobs'), { recursive: true });
  await writeFileAtomic(join(path, 'oci-layout'), Buffer.from(JSON.stringify({ imageLayoutVersion: IMAGE_LAYOUT_VERSION })));
  await writeFileAtomic(join(path, 'index.json'), Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] })));
  return true;
}

async function cleanTemps(path: string): Promise<void> {
  await removeStaleTemps(path);
  const algorithms = await readdir(join(path, 'blobs'), { withFileTypes: true }).catch(() => []);
  for (const alg of algorithms) if (alg.isDirectory()) await removeStaleTemps(join(path, 'blobs', alg.name));
}
