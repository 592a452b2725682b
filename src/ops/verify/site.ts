import { closeSync, constants, fstatSync, lstatSync, openSync, readSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { OcikitError } from '../../errors.js';
import { algorithmOf, digestFromBlobPath, isVerifiable, type Digest } from '../../model/digest.js';
import { ArchiveStore } from '../../store/archive.js';
import { DirStore } from '../../store/dir.js';
import type { Store } from '../../store/store.js';
import type { ReadSource } from './blob-jobs.js';

/** What verify knows about one blob without reading it. */
export interface BlobState {
  status: 'present' | 'missing' | 'symlink' | 'not-regular';
  size: number;
  /** Where it is, inside the layout or tarball. */
  path: string;
  /** How a worker reads it (present blobs stored as files or tar entries; absent for synthesized documents). */
  source?: ReadSource;
  /** A symlink because blobs/ or blobs/<alg>/ is one (reported there, once). */
  underLinkedDir?: boolean;
  /** The whole content, read with the listing (small blobs of a layout dir): hashed without another open. */
  data?: Buffer;
}

/** A file found where blobs live, valid or not. */
export interface BlobFile {
  path: string;
  digest?: Digest;
  size: number;
  type: 'file' | 'symlink' | 'other';
}

/** The storage under a store, as verify needs it: top-level files, every blob file, and where each blob is. */
export interface Site {
  readonly store: Store;
  /** Every file under blobs/ (layout dir) or every blob entry (tarball), including anomalies. */
  readonly files: BlobFile[];
  /** blobs/ or an algorithm folder is a symlink (dir only): what is under it is never read. */
  readonly linkedDirs: string[];
  /** blobs/ exists (a directory, or entries under blobs/ in a tarball). */
  readonly hasBlobsDir: boolean;
  readTop(name: string): Promise<Buffer | undefined>;
  /** A document blob (index, manifest, config), at most maxBytes; throws an Error naming the file when it cannot be read. */
  readDocument(digest: Digest, maxBytes: number): Promise<Buffer>;
  /** The same object for the same digest: callers must not change it. */
  blob(digest: Digest): BlobState;
  /** Every blob present and readable, by digest. */
  present(): Digest[];
}

export interface SiteOptions {
  /**
   * Read these blobs whole, when small, while listing a layout dir: the ones a run will hash. Their open
   * and fstat then also give the size the listing needs, in place of an lstat each.
   */
  readSmallBlobs?: (digest: Digest) => boolean;
}

export async function openSite(store: Store, options: SiteOptions = {}): Promise<Site> {
  if (store instanceof DirStore) return DirSite.open(store, options);
  if (store instanceof ArchiveStore) return ArchiveSite.open(store);
  throw new OcikitError(`${store.path}: verify reads layout directories and tarballs only`);
}

class DirSite implements Site {
  private readonly byDigest = new Map<Digest, BlobFile>();
  /** blob() is asked about each blob several times (walk, plan, prestart, unreferenced): one state each. */
  private readonly states = new Map<Digest, BlobState>();
  /** `<layout>/`, normalized as join() would: blob paths are made by concatenation, not a join per blob. */
  private readonly root: string;

  private constructor(
    readonly store: DirStore, readonly files: BlobFile[], readonly linkedDirs: string[], readonly hasBlobsDir: boolean,
    private readonly contents = new Map<Digest, Buffer>(),
  ) {
    for (const f of files) if (f.digest) this.byDigest.set(f.digest, f);
    this.root = rootOf(store.path);
  }

  static async open(store: DirStore, options: SiteOptions): Promise<DirSite> {
    const blobsDir = await lstat(join(store.path, 'blobs')).catch(() => undefined);
    if (blobsDir?.isSymbolicLink()) return new DirSite(store, [], ['blobs'], true);
    const { files, contents } = options.readSmallBlobs ? await listReading(store.path, options.readSmallBlobs) : { files: await store.inventory(), contents: undefined };
    const linked = files.filter((f) => f.type === 'symlink' && f.path.split('/').length === 2).map((f) => f.path);
    return new DirSite(store, files, linked, blobsDir?.isDirectory() ?? false, contents);
  }

  readTop(name: string): Promise<Buffer | undefined> {
    return this.store.readTopFile(name);
  }

  /**
   * DirStore.readBlob's checks and messages, read synchronously: above its 4 MiB document limit the store
   * reads asynchronously, and verify's 64 MiB cap sent every document through a thread-pool round trip
   * for each of open, fstat, read and close (the walk of 200 documents sat idle for 180 ms of them).
   */
  async readDocument(digest: Digest, maxBytes: number): Promise<Buffer> {
    const read = this.contents.get(digest); // read with the same checks, as a regular file not under a symlink
    if (read && read.length <= maxBytes) return read;
    const path = await this.store.blobFile(digest); // refuses blobs/ or blobs/<alg>/ turned into a symlink
    let fd: number;
    try {
      fd = openSync(path, READ_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw new OcikitError(`${path}: is a symlink; refusing to follow it`);
      if (code === 'ENOENT') throw new OcikitError(`${path}: blob ${digest} is missing`);
      throw err;
    }
    try {
      const info = fstatSync(fd);
      if (!info.isFile()) throw new OcikitError(`${path}: not a regular file`);
      if (info.size > maxBytes) throw new OcikitError(`${path}: ${info.size} bytes is over the ${maxBytes}-byte limit for documents`);
      const out = Buffer.allocUnsafe(info.size);
      let done = 0;
      while (done < out.length) {
        const n = readSync(fd, out, done, out.length - done, done);
        if (n === 0) break;
        done += n;
      }
      return done === out.length ? out : out.subarray(0, done);
    } finally {
      closeSync(fd);
    }
  }

  blob(digest: Digest): BlobState {
    let state = this.states.get(digest);
    if (!state) this.states.set(digest, (state = this.stateOf(digest)));
    return state;
  }

  private stateOf(digest: Digest): BlobState {
    const path = `blobs/${algorithmOf(digest)}/${digest.slice(digest.indexOf(':') + 1)}`;
    if (this.linkedDirs.some((d) => path.startsWith(`${d}/`))) return { status: 'symlink', size: 0, path, underLinkedDir: true };
    const file = this.byDigest.get(digest);
    if (!file) return { status: 'missing', size: 0, path };
    if (file.type === 'symlink') return { status: 'symlink', size: 0, path };
    if (file.type === 'other') return { status: 'not-regular', size: 0, path };
    // path is grammar-valid (no `/` or `..` in either half): concatenated, it is what join() would make.
    const state: BlobState = { status: 'present', size: file.size, path, source: { file: this.root + path, offset: 0, length: null, noFollow: true } };
    const data = this.contents.get(digest);
    if (data) state.data = data;
    return state;
  }

  present(): Digest[] {
    return this.files.filter((f) => f.type === 'file' && f.digest).map((f) => f.digest!);
  }
}

/** As DirStore opens documents: never following a symlink, never blocking on a FIFO. */
const READ_NOFOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** `<dir>/`, as join(dir, name) would prefix a plain name ('' for '.'). */
const rootOf = (dir: string) => join(dir, 'x').slice(0, -1);

/** Blobs up to this size are read with the listing; past the budget the rest are only sized, as DirStore.inventory does. */
const SMALL_BLOB_BYTES = 64 * 1024;
const SMALL_BLOBS_BUDGET = 16 * 1024 * 1024;

/**
 * DirStore.inventory (the same entries, in the same order), with small blobs read whole instead of sized
 * by lstat: 10,000 small blobs cost an lstat each here and an open, fstat, read and close each when
 * hashed; now the open, fstat, read and close only. Reading is not hashing: their sizes are still checked
 * against their descriptors before any is hashed, and a blob over the size is never hashed.
 */
export async function listReading(layout: string, wanted: (digest: Digest) => boolean = () => true): Promise<{ files: BlobFile[]; contents: Map<Digest, Buffer> }> {
  const files: BlobFile[] = [];
  const contents = new Map<Digest, Buffer>();
  const root = rootOf(layout);
  let budget = SMALL_BLOBS_BUDGET;
  const algorithms = await readdir(join(layout, 'blobs'), { withFileTypes: true }).catch(() => []);
  for (const alg of algorithms) {
    if (!alg.isDirectory()) {
      files.push({ path: `blobs/${alg.name}`, size: 0, type: alg.isSymbolicLink() ? 'symlink' : 'other' });
      continue;
    }
    for (const file of await readdir(join(layout, 'blobs', alg.name), { withFileTypes: true })) {
      if (file.name.startsWith('.ocikit-')) continue;
      const path = `blobs/${alg.name}/${file.name}`;
      const type = file.isFile() ? 'file' : file.isSymbolicLink() ? 'symlink' : 'other';
      const digest = digestFromBlobPath(path);
      if (type !== 'file') {
        files.push({ path, digest, size: 0, type });
        continue;
      }
      // Only blobs the content phase would hash; anything odd (unreadable, no longer a regular file) is sized as before.
      const read = budget > 0 && digest !== undefined && isVerifiable(digest) && wanted(digest) ? readSmall(root + path, Math.min(SMALL_BLOB_BYTES, budget)) : undefined;
      if (read?.data && digest !== undefined) {
        contents.set(digest, read.data);
        budget -= read.data.length;
      }
      files.push({ path, digest, size: read?.size ?? lstatSync(root + path).size, type });
    }
  }
  return { files, contents };
}

/** A regular file's size, and its bytes when it has at most maxBytes; undefined when it cannot be opened as one. */
function readSmall(path: string, maxBytes: number): { size: number; data?: Buffer } | undefined {
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
    // One byte over: a file that grew since the fstat is left to the content phase to read as it is then.
    // A short read that reaches the size is the end (as in hashBlob): no second read of 0 bytes to prove it.
    const data = Buffer.allocUnsafe(info.size + 1);
    let done = 0;
    while (done < data.length) {
      const want = data.length - done;
      const n = readSync(fd, data, done, want, done);
      done += n;
      if (n === 0 || (n < want && done >= info.size)) break;
    }
    return done > info.size ? { size: info.size } : { size: info.size, data: data.subarray(0, done) };
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

class ArchiveSite implements Site {
  readonly linkedDirs: string[] = [];
  readonly hasBlobsDir: boolean;

  private constructor(readonly store: ArchiveStore, readonly files: BlobFile[], private readonly sizes: Map<Digest, number>) {
    this.hasBlobsDir = store.tar.byName.has('blobs') || files.length > 0;
  }

  static async open(store: ArchiveStore): Promise<ArchiveSite> {
    const files: BlobFile[] = [];
    for (const entry of store.tar.entries) {
      if (!entry.name.startsWith('blobs/') || entry.type === 'dir') continue;
      const digest = digestFromBlobPath(entry.name);
      files.push({ path: entry.name, digest, size: entry.size, type: entry.type === 'other' ? 'other' : 'file' }); // links resolve inside the tar
    }
    const sizes = new Map((await store.listBlobs()).map((b) => [b.digest, b.size] as const));
    return new ArchiveSite(store, files, sizes);
  }

  readTop(name: string): Promise<Buffer | undefined> {
    return this.store.readTopFile(name);
  }

  readDocument(digest: Digest, maxBytes: number): Promise<Buffer> {
    return this.store.readBlob(digest, maxBytes);
  }

  blob(digest: Digest): BlobState {
    const size = this.sizes.get(digest);
    const entry = this.store.blobEntry(digest);
    const path = entry?.name ?? (size === undefined ? `blobs/${algorithmOf(digest)}/${digest.slice(digest.indexOf(':') + 1)}` : 'manifest.json');
    if (size === undefined) return { status: 'missing', size: 0, path };
    if (entry && entry.type !== 'file') return { status: 'not-regular', size: 0, path };
    const state: BlobState = { status: 'present', size, path };
    if (entry) state.source = { file: this.store.path, offset: entry.offset, length: entry.size, noFollow: false };
    return state;
  }

  present(): Digest[] {
    return [...this.sizes.keys()];
  }
}
