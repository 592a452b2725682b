import { closeSync, constants, fstatSync, lstatSync, openSync, readSync } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, rmdir, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { OcikitError, withPath } from '../errors.js';
import { blobPath, digestFromBlobPath, digestOf, type Digest } from '../model/digest.js';
import { parseDocument, DEFAULT_MAX_DOCUMENT_BYTES, type Doc } from '../model/document.js';
import { imageIndexSchema, type ImageIndex } from '../model/image-index.js';
import { IMAGE_LAYOUT_VERSION } from '../model/oci-layout.js';
import { removeStaleTemps, removeStaleTempsFor, syncDir, tempPathFor, writeFileAtomic } from './atomic-file.js';
import { acquireLock, type Lock, type LockOptions } from './lock.js';
import type { BlobRef, Store, StoreWriter } from './store.js';
import { canLandFiles, landFile, streamBlob } from './blob-copy.js';

export const LOCK_FILE = '.ocikit-lock';

/** One file found under blobs/, whether or not it is a valid blob. */
export interface BlobEntry {
  /** Relative to the layout root. */
  path: string;
  digest?: Digest;
  size: number;
  type: 'file' | 'symlink' | 'other';
  /** The whole content, when the listing was asked to read small blobs (see InventoryOptions). */
  data?: Buffer;
}

/** Small blobs read whole while listing: their open and fstat then stand in for the lstat each would cost. */
export interface InventoryOptions {
  /** Read regular blobs of at most this many bytes. */
  readUpTo: number;
  /** Stop reading once this many bytes are held; the rest are only sized. */
  budget: number;
  /** Only these blobs (default: every blob with a well-formed name). */
  wanted?: (digest: Digest) => boolean;
}

/** Never following a symlink (a blob or index.json linked out of the layout), never blocking on a FIFO. */
const READ_NOFOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Reads that never follow a symlink: a blob or index.json linked out of the layout is refused. */
async function readNoFollow(path: string, where: string, maxBytes: number): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, READ_NOFOLLOW);
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

/**
 * The same for documents, synchronously: a walk reads thousands of small files, and the thread-pool round
 * trips of async open/fstat/read/close cost several times the reads themselves (gc of 2,000 images,
 * verify of 200 documents).
 */
function readSmallNoFollow(path: string, where: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, READ_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new OcikitError(`${where}: is a symlink; refusing to follow it`);
    throw err;
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw new OcikitError(`${where}: not a regular file`);
    if (info.size > maxBytes) throw new OcikitError(`${where}: ${info.size} bytes is over the ${maxBytes}-byte limit for documents`);
    return readAll(fd, info.size);
  } finally {
    closeSync(fd);
  }
}

/**
 * Up to `capacity` bytes of a file whose fstat said `size`. A short read that reaches the size is the end:
 * no second read of 0 bytes to prove it.
 */
function readAll(fd: number, size: number, capacity = size): Buffer {
  const data = Buffer.allocUnsafe(capacity);
  let done = 0;
  while (done < capacity) {
    const want = capacity - done;
    const n = readSync(fd, data, done, want, done);
    done += n;
    if (n === 0 || (n < want && done >= size)) break;
  }
  return done === capacity ? data : data.subarray(0, done);
}

/** A regular blob's size, and its bytes when it has at most maxBytes; undefined when it cannot be opened as one. */
function readIfSmall(path: string, maxBytes: number): { size: number; data?: Buffer } | undefined {
  let fd: number;
  try {
    fd = openSync(path, READ_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) return undefined;
    if (info.size > maxBytes) return { size: info.size };
    // One byte over: a file that grew since the fstat is left to be read as it is then.
    const data = readAll(fd, info.size, info.size + 1);
    return data.length > info.size ? { size: info.size } : { size: info.size, data };
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Reads up to this cap are documents (verify's own cap is 64 MiB): synchronous, as readSmallNoFollow says. */
const SYNC_READ_MAX = 64 * 1024 * 1024;

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
      if (maxBytes <= SYNC_READ_MAX) return readSmallNoFollow(path, path, maxBytes);
      return await readNoFollow(path, path, maxBytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new OcikitError(`${path}: blob ${digest} is missing`);
      throw err;
    }
  }

  async openBlob(digest: Digest): Promise<Readable> {
    return (await this.openBlobFile(digest)).createReadStream({ highWaterMark: 1 << 20 });
  }

  /** The blob's file, opened without following a symlink and checked to be a regular file. */
  async openBlobFile(digest: Digest): Promise<FileHandle> {
    const path = await this.blobFile(digest);
    let fh;
    try {
      fh = await open(path, READ_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new OcikitError(`${path}: blob ${digest} is missing`);
      if (code === 'ELOOP') throw new OcikitError(`${path}: blob is a symlink; refusing to follow it`);
      throw err;
    }
    const info = await fh.stat().catch(async (err: unknown) => {
      await fh.close();
      throw err;
    });
    if (!info.isFile()) {
      await fh.close();
      throw new OcikitError(`${path}: blob is not a regular file`);
    }
    return fh;
  }

  async listBlobs(): Promise<BlobRef[]> {
    return (await this.inventory())
      .filter((e): e is BlobEntry & { digest: Digest } => e.type === 'file' && e.digest !== undefined)
      .map(({ digest, size }) => ({ digest, size }));
  }

  /** Every entry under blobs/<alg>/, with anomalies (symlinks, bad names) kept for verify to report. */
  async inventory(read?: InventoryOptions): Promise<BlobEntry[]> {
    const entries: BlobEntry[] = [];
    const blobsDir = join(this.path, 'blobs');
    let budget = read?.budget ?? 0;
    const algorithms = await readdir(blobsDir, { withFileTypes: true }).catch(() => []);
    for (const alg of algorithms) {
      if (!alg.isDirectory()) {
        entries.push({ path: `blobs/${alg.name}`, size: 0, type: alg.isSymbolicLink() ? 'symlink' : 'other' });
        continue;
      }
      const dir = join(blobsDir, alg.name);
      for (const file of await readdir(dir, { withFileTypes: true })) {
        if (file.name.startsWith('.ocikit-')) continue;
        const path = `blobs/${alg.name}/${file.name}`;
        const type = file.isFile() ? 'file' : file.isSymbolicLink() ? 'symlink' : 'other';
        const digest = digestFromBlobPath(path);
        const entry: BlobEntry = { path, digest, size: 0, type };
        entries.push(entry);
        if (type !== 'file') continue;
        // Anything odd here (unreadable, no longer a regular file) is sized by lstat as if not asked to read.
        const small = read && budget > 0 && digest !== undefined && (read.wanted?.(digest) ?? true)
          ? readIfSmall(`${dir}/${file.name}`, Math.min(read.readUpTo, budget)) : undefined;
        // Synchronous on purpose: 10,000 awaited lstat calls cost half a second of round trips.
        entry.size = small?.size ?? lstatSync(`${dir}/${file.name}`).size;
        if (small?.data) {
          entry.data = small.data;
          budget -= small.data.length;
        }
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

/** oci-layout itself must be a file: a symlink to one elsewhere does not make a layout. */
export async function isLayoutDir(path: string): Promise<boolean> {
  const info = await lstat(join(path, 'oci-layout')).catch(() => undefined);
  return info?.isFile() ?? false;
}

export interface DirWriterOptions extends LockOptions {
  /** Create the layout when the directory is missing or empty. */
  create?: boolean;
  /** Hard-link blobs copied from a layout on the same file system instead of copying their bytes. */
  link?: boolean;
}

/** How the writer's changes become visible: index.json in an existing layout, or a whole new layout renamed into place. */
type Publish =
  | { kind: 'existing'; lock: Lock }
  | { kind: 'new'; staging: string; createdParent: string | undefined };

/**
 * Writes into a layout directory. An existing layout is changed under its lock: blobs land as they come,
 * index.json last. A new layout is built in a hidden sibling directory and renamed into place at commit,
 * so a failed or killed run never leaves a half-made layout where the user asked for one.
 */
export class DirWriter implements StoreWriter {
  readonly kind = 'oci' as const;
  private readonly added: string[] = [];
  private readonly store: DirStore;
  private state: 'open' | 'committing' | 'closed' = 'open';
  private committed: Promise<void> | undefined;

  private constructor(readonly path: string, private readonly publish: Publish, private readonly link = false) {
    this.store = new DirStore(publish.kind === 'new' ? publish.staging : path);
  }

  static async open(path: string, options: DirWriterOptions = {}): Promise<DirWriter> {
    if (options.create && !(await isLayoutDir(path))) return DirWriter.create(path, options.link);
    if (!(await isLayoutDir(path))) throw new OcikitError(`${path}: not an OCI image layout (no oci-layout file)`);
    const lock = await acquireLock(join(path, LOCK_FILE), path, options);
    try {
      await cleanTemps(path);
      await removeStaleTempsFor(path);
      return new DirWriter(path, { kind: 'existing', lock }, options.link);
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  private static async create(path: string, link?: boolean): Promise<DirWriter> {
    const info = await lstat(path).catch(() => undefined);
    if (info && !(info.isDirectory() && (await readdir(path)).length === 0)) {
      throw new OcikitError(`${path}: exists and is not an OCI image layout; refusing to write into it`);
    }
    const createdParent = await mkdir(dirname(resolve(path)), { recursive: true });
    await removeStaleTempsFor(path);
    const staging = tempPathFor(resolve(path));
    try {
      await mkdir(staging);
      await mkdir(join(staging, 'blobs'));
      await writeFileAtomic(join(staging, 'oci-layout'), Buffer.from(JSON.stringify({ imageLayoutVersion: IMAGE_LAYOUT_VERSION })));
    } catch (err) {
      await discardNew(staging, createdParent);
      throw namingUserPath(err, staging, path);
    }
    return new DirWriter(path, { kind: 'new', staging, createdParent }, link);
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    return (await this.store.statBlob(digest)) !== undefined;
  }

  async putBlob(data: Buffer): Promise<BlobRef> {
    this.checkOpen();
    const blob = { digest: digestOf(data), size: data.length };
    if (await this.hasBlob(blob.digest)) return blob;
    const target = await this.prepare(blob.digest);
    await writeFileAtomic(target, data).catch((err) => Promise.reject(this.userFacing(err)));
    await this.track(target);
    return blob;
  }

  async copyBlob(from: Store, blob: BlobRef): Promise<void> {
    this.checkOpen();
    if (await this.hasBlob(blob.digest)) return;
    const target = await this.prepare(blob.digest);
    const temp = tempPathFor(target);
    try {
      if (from instanceof DirStore && canLandFiles(blob.digest)) await landFile(from, blob, temp, this.link);
      else await streamBlob(from, blob, temp);
      await rename(temp, target);
      // A rename onto another link of the same file does nothing and leaves the temp name behind.
      if (this.link) await rm(temp, { force: true });
    } catch (err) {
      await rm(temp, { force: true });
      throw this.userFacing(withPath(err, target));
    }
    await this.track(target);
  }

  /** Once commit starts, an abort (Ctrl-C) waits for it: blobs the new index.json names are never removed. */
  async commit(index: Buffer): Promise<void> {
    this.checkOpen();
    parseDocument(imageIndexSchema, index, join(this.path, 'index.json')); // never publish an index no reader accepts
    this.state = 'committing';
    this.committed = this.publishIndex(index);
    return this.committed;
  }

  private async publishIndex(index: Buffer): Promise<void> {
    try {
      for (const dir of new Set(this.added.map((p) => p.slice(0, p.lastIndexOf('/'))))) await syncDir(dir);
      await writeFileAtomic(join(this.store.path, 'index.json'), index);
      if (this.publish.kind === 'new') await this.moveIntoPlace(this.publish.staging);
    } catch (err) {
      // Nothing is published here: the renames are the last steps that can fail.
      await this.discard();
      throw this.userFacing(err);
    } finally {
      await this.finish();
    }
  }

  /** Errors name the layout the user asked for, not the hidden directory it is staged in. */
  private userFacing(err: unknown): unknown {
    return this.publish.kind === 'new' ? namingUserPath(err, this.publish.staging, this.path) : err;
  }

  async abort(): Promise<void> {
    if (this.state === 'committing') {
      await this.committed?.catch(() => undefined);
      return;
    }
    if (this.state === 'closed') return;
    this.state = 'closed';
    await this.discard();
    await this.releaseLock();
  }

  private checkOpen(): void {
    if (this.state !== 'open') throw new OcikitError(`${this.path}: this write was already ${this.state === 'committing' ? 'committing' : 'finished or aborted'}`);
  }

  /** Notes a blob this writer added; one that lands after an abort is removed at once. */
  private async track(target: string): Promise<void> {
    if (this.state === 'closed') {
      await rm(target, { force: true });
      this.checkOpen();
    }
    this.added.push(target);
  }

  /** A directory rename is atomic: readers see no layout, then the whole new one. */
  private async moveIntoPlace(staging: string): Promise<void> {
    await syncDir(staging);
    try {
      await rename(staging, resolve(this.path));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') {
        throw new OcikitError(`${this.path}: was created by another process while this layout was being written; nothing was written`);
      }
      throw err;
    }
    await syncDir(dirname(resolve(this.path)));
  }

  private async discard(): Promise<void> {
    if (this.publish.kind === 'new') await discardNew(this.publish.staging, this.publish.createdParent);
    else await Promise.all(this.added.map((p) => rm(p, { force: true })));
  }

  private async finish(): Promise<void> {
    this.state = 'closed';
    await this.releaseLock();
  }

  private async releaseLock(): Promise<void> {
    if (this.publish.kind === 'existing') await this.publish.lock.release();
  }

  private async prepare(digest: Digest): Promise<string> {
    const target = await this.store.blobFile(digest);
    const dir = dirname(target);
    const made = await mkdir(dir, { recursive: true });
    // A new directory is durable once its parent is synced; publishIndex syncs only the blob directories themselves.
    if (made) for (let d = dir; d.length >= made.length; d = dirname(d)) await syncDir(dirname(d));
    return target;
  }
}

function namingUserPath(err: unknown, staging: string, path: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.path === 'string' && e.path.startsWith(staging)) e.path = join(path, relative(staging, e.path));
  return err;
}

/** Removes a staged layout and the parent directories made for it (each only if nothing else is in it). */
async function discardNew(staging: string, createdParent: string | undefined): Promise<void> {
  await rm(staging, { recursive: true, force: true });
  if (!createdParent) return;
  for (let dir = dirname(staging); dir.length >= createdParent.length; dir = dirname(dir)) {
    if (!(await rmdir(dir).then(() => true, () => false))) break;
  }
}

async function cleanTemps(path: string): Promise<void> {
  await removeStaleTemps(path);
  const algorithms = await readdir(join(path, 'blobs'), { withFileTypes: true }).catch(() => []);
  for (const alg of algorithms) if (alg.isDirectory()) await removeStaleTemps(join(path, 'blobs', alg.name));
}
