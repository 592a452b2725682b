import type { Dirent } from 'node:fs';
import { lstatSync, rmSync, unlinkSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, LockedError, OcikitError } from '../errors.js';
import { digestFromBlobPath, type Digest } from '../model/digest.js';
import { parseDocument } from '../model/document.js';
import { dockerSaveManifestSchema } from '../model/docker-save.js';
import { isStaleTemp, TEMP_PREFIX } from '../store/atomic-file.js';
import { DirStore, isLayoutDir, LOCK_FILE } from '../store/dir.js';
import { acquireLock, type LockOptions } from '../store/lock.js';
import { indexRoots, reachability } from './reachability.js';

export interface GcOptions extends LockOptions {
  /** Report what would go; delete nothing. */
  dryRun?: boolean;
}

export interface Tally {
  count: number;
  bytes: number;
}

export interface GcResult {
  layout: string;
  dryRun: boolean;
  /** Blobs that stay: reachable from index.json (referrers, subjects and extension descriptors included). */
  kept: Tally;
  /** Blobs nothing reaches: deleted (or, with dryRun, to be deleted). */
  removed: Tally & { digests: Digest[] };
  /** Temp files left by killed ocikit runs. */
  temps: Tally & { paths: string[] };
  /** Blobs kept only because an extension descriptor names them: tools that do not know the field lose them. */
  extensionOnly: Array<{ digest: Digest; size: number; mediaType: string; where: string }>;
  /** Entries under blobs/ that are not blobs (bad names, symlinks, directories): reported, never touched. */
  ignored: string[];
  /** Documents read to mark what is reachable. */
  documents: number;
}

/** One regular file named like a blob. */
interface BlobFile {
  digest: Digest;
  path: string;
}

/**
 * Deletes the blobs of a layout directory that nothing reachable from index.json names, and stale temp
 * files. Holds the layout lock throughout, so no ocikit writer adds a blob meanwhile. Marking reads
 * each document once and no layer; when any document cannot be read or parsed, gc fails and deletes nothing.
 */
export async function gc(layout: string | DirStore, options: GcOptions = {}): Promise<GcResult> {
  const path = typeof layout === 'string' ? layout : layout.path;
  if (!(await isLayoutDir(path))) throw new OcikitError(`${path}: not an OCI image layout directory (gc works on layout directories only)`);
  const lock = await acquireLock(join(path, LOCK_FILE), path, options);
  try {
    return await collect(new DirStore(path), options.dryRun ?? false);
  } finally {
    await lock.release();
  }
}

async function collect(store: DirStore, dryRun: boolean): Promise<GcResult> {
  const index = await store.readIndex().catch((err) => refuse(err));
  const reach = await reachability(store, indexRoots(index.value), { followSubjects: true, scanConfigs: true }).catch((err) => refuse(err));
  const keep = new Set<Digest>([...reach.blobs.keys(), ...(await dockerSaveBlobs(store).catch((err) => refuse(err)))]);
  const listing = await listLayout(store.path);
  const unreachable = listing.blobs.filter((b) => !keep.has(b.digest));
  const kept = listing.blobs.filter((b) => keep.has(b.digest));
  const sizeOf = (rel: string) => fileSize(join(store.path, rel));
  const result: GcResult = {
    layout: store.path,
    dryRun,
    // Declared sizes: stat-ing every kept blob would cost more than the whole walk (verify checks sizes).
    kept: tally(kept.map((b) => reach.blobs.get(b.digest)?.size ?? sizeOf(b.path))),
    removed: { ...tally(unreachable.map((b) => sizeOf(b.path))), digests: unreachable.map((b) => b.digest) },
    temps: { ...tally(listing.temps.map(sizeOf)), paths: listing.temps },
    extensionOnly: kept.flatMap(({ digest }) => {
      const only = reach.extensionOnly.get(digest);
      return only ? [{ digest, size: only.descriptor.size, mediaType: only.descriptor.mediaType, where: only.where }] : [];
    }),
    ignored: listing.ignored,
    documents: reach.documents,
  };
  if (dryRun) return result;
  // Tools that do not take ocikit's lock (skopeo, umoci) commit index.json last: a change means new roots.
  const now = await store.readTopFile('index.json');
  if (!now?.equals(index.raw)) throw new OcikitError(`${join(store.path, 'index.json')}: changed while gc was marking (another tool wrote to the layout); nothing was deleted, run gc again`);
  // No fsync after deleting: a deletion the disk forgets only brings an unreachable blob back for the next gc.
  removeAll(unreachable.map((b) => join(store.path, b.path)), false);
  removeAll(listing.temps.map((t) => join(store.path, t)), true);
  return result;
}

function refuse(err: unknown): never {
  if (err instanceof LockedError) throw err;
  throw new OcikitError(`${describeError(err)}; gc deleted nothing`, { exitCode: 2, cause: err });
}

/** A layout extracted from a Docker 25+ `docker save` may name blobs in manifest.json only: those stay. */
async function dockerSaveBlobs(store: DirStore): Promise<Digest[]> {
  const raw = await store.readTopFile('manifest.json');
  if (!raw) return [];
  const entries = parseDocument(dockerSaveManifestSchema, raw, join(store.path, 'manifest.json')).value;
  return entries.flatMap((e) => [e.Config, ...e.Layers]).map((p) => digestFromBlobPath(p)).filter((d): d is Digest => d !== undefined);
}

interface Listing {
  blobs: BlobFile[];
  /** Stale temp files and directories, relative to the layout. */
  temps: string[];
  ignored: string[];
}

/** blobs/<alg>/<encoded> files, from directory entries only (one readdir per directory, no stat per blob). */
async function listLayout(root: string): Promise<Listing> {
  const listing: Listing = { blobs: [], temps: [], ignored: [] };
  const noteTemps = (dir: string, entries: Dirent[]) => {
    for (const e of entries) if (isStaleTemp(e.name)) listing.temps.push(dir ? `${dir}/${e.name}` : e.name);
  };
  noteTemps('', await readdir(root, { withFileTypes: true }));
  const algorithms = await readdir(join(root, 'blobs'), { withFileTypes: true }).catch(() => [] as Dirent[]);
  noteTemps('blobs', algorithms);
  for (const alg of algorithms) {
    if (alg.name.startsWith(TEMP_PREFIX)) continue;
    if (!alg.isDirectory()) {
      listing.ignored.push(`blobs/${alg.name}`);
      continue;
    }
    const entries = await readdir(join(root, 'blobs', alg.name), { withFileTypes: true });
    noteTemps(`blobs/${alg.name}`, entries);
    for (const e of entries) {
      if (e.name.startsWith(TEMP_PREFIX)) continue;
      const path = `blobs/${alg.name}/${e.name}`;
      const digest = digestFromBlobPath(path);
      if (digest && e.isFile()) listing.blobs.push({ digest, path });
      else listing.ignored.push(path);
    }
  }
  return listing;
}

/**
 * Sizes and deletions use the synchronous calls on purpose: for thousands of small metadata operations the
 * thread-pool round trip of the async ones costs several times the call itself.
 */
function fileSize(path: string): number {
  try {
    const info = lstatSync(path);
    return info.isFile() ? info.size : 0;
  } catch {
    return 0;
  }
}

function removeAll(paths: string[], recursive: boolean): void {
  for (const p of paths) {
    if (recursive) rmSync(p, { recursive: true, force: true });
    else {
      try {
        unlinkSync(p);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }
}

function tally(sizes: number[]): Tally {
  return { count: sizes.length, bytes: sizes.reduce((a, b) => a + b, 0) };
}
