import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { OcikitError } from '../../errors.js';
import { algorithmOf, digestFromBlobPath, isVerifiable, type Digest } from '../../model/digest.js';
import { ArchiveStore } from '../../store/archive.js';
import { DirStore } from '../../store/dir.js';
import type { Store } from '../../store/store.js';
import type { ReadSource } from '../../hash/jobs.js';

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
    // Reading is not hashing: sizes are still checked against descriptors before any blob is hashed.
    const wanted = options.readSmallBlobs;
    const files = await store.inventory(wanted && { readUpTo: SMALL_BLOB_BYTES, budget: SMALL_BLOBS_BUDGET, wanted: (d) => isVerifiable(d) && wanted(d) });
    const contents = new Map<Digest, Buffer>();
    for (const f of files) if (f.data && f.digest) contents.set(f.digest, f.data);
    const linked = files.filter((f) => f.type === 'symlink' && f.path.split('/').length === 2).map((f) => f.path);
    return new DirSite(store, files, linked, blobsDir?.isDirectory() ?? false, contents);
  }

  readTop(name: string): Promise<Buffer | undefined> {
    return this.store.readTopFile(name);
  }

  async readDocument(digest: Digest, maxBytes: number): Promise<Buffer> {
    const read = this.contents.get(digest); // read with the listing, with the same checks
    if (read && read.length <= maxBytes) return read;
    return this.store.readBlob(digest, maxBytes);
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

/** `<dir>/`, as join(dir, name) would prefix a plain name ('' for '.'). */
const rootOf = (dir: string) => join(dir, 'x').slice(0, -1);

/** Blobs up to this size are read with the listing; past the budget the rest are only sized. */
const SMALL_BLOB_BYTES = 64 * 1024;
const SMALL_BLOBS_BUDGET = 16 * 1024 * 1024;

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
