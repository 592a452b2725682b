import { stat } from 'node:fs/promises';
import { looksLikeTar } from './tar-format.js';
import { OcikitError } from '../errors.js';
import { ArchiveStore } from './archive.js';
import { ArchiveWriter } from './archive-writer.js';
import { DirStore, DirWriter, isLayoutDir } from './dir.js';
import type { LockOptions } from './lock.js';
import { parseReference, type Reference } from './reference.js';
import type { ImageIndex } from '../model/image-index.js';
import type { Store, StoreKind, StoreWriter } from './store.js';

/** Opens the layout or tarball a reference names, detecting the format of a bare path from its content. */
export async function openStore(ref: Reference | string): Promise<Store> {
  const reference = typeof ref === 'string' ? parseReference(ref) : ref;
  const kind = reference.kind ?? (await detectKind(reference.path));
  if (kind === 'oci') {
    const info = await stat(reference.path).catch(() => undefined);
    if (!info) throw new OcikitError(`${reference.path}: no such directory`);
    if (!info.isDirectory()) throw new OcikitError(`${reference.path}: not a directory`);
    return new DirStore(reference.path);
  }
  const info = await stat(reference.path).catch(() => undefined);
  if (!info) throw new OcikitError(`${reference.path}: no such file`);
  if (!info.isFile()) throw new OcikitError(`${reference.path}: not a tar file`);
  return ArchiveStore.open(reference.path, kind);
}

/** The library's entry point: `openLayout('oci:dir')`, `openLayout('image.tar')`. */
export const openLayout = openStore;

async function detectKind(path: string): Promise<StoreKind> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new OcikitError(`${path}: no such file or directory`);
  if (info.isDirectory()) {
    if (await isLayoutDir(path)) return 'oci';
    throw new OcikitError(`${path}: directory is not an OCI image layout (no oci-layout file)`);
  }
  // Before any open: a FIFO opened for reading would wait for a writer forever.
  if (!info.isFile()) throw new OcikitError(`${path}: not a regular file or a directory`);
  if (!(await looksLikeTar(path))) throw new OcikitError(`${path}: not an OCI layout directory or a tar archive`);
  const archive = await ArchiveStore.open(path);
  return archive.kind;
}


export interface WriterOptions extends LockOptions {
  /** The store being rewritten in place (archives carry its content over). */
  base?: Store;
  /** Into a layout directory: hard-link blobs from layouts on the same file system rather than copy them. */
  link?: boolean;
}

/** The archive a writer adds to (it was read before the writer took the lock), by writer. */
const archiveBases = new WeakMap<StoreWriter, ArchiveStore>();

/**
 * A writer for a destination reference: in place when it names the store being read, else a new or
 * existing layout directory, or a tarball; an existing one is added to, like a layout, and replaced atomically.
 */
export async function openWriter(ref: Reference, options: WriterOptions = {}): Promise<StoreWriter> {
  const kind = ref.kind ?? (await guessDestinationKind(ref.path));
  if (kind === 'oci') return DirWriter.open(ref.path, { ...options, create: true });
  const inPlace = options.base instanceof ArchiveStore && options.base.path === ref.path ? options.base : undefined;
  const base = inPlace ?? (await existingArchive(ref.path, kind));
  // A RepoTag override would rename every image already in the archive; the copied entries carry their names.
  const repoTag = ref.selector && 'tag' in ref.selector && base === inPlace ? ref.selector.tag : undefined;
  const writer = await ArchiveWriter.open(ref.path, kind, { ...options, base, repoTag });
  if (base) archiveBases.set(writer, base);
  return writer;
}

async function existingArchive(path: string, kind: 'oci-archive' | 'docker-archive'): Promise<ArchiveStore | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return undefined;
  if (!info.isFile()) throw new OcikitError(`${path}: exists and is not a tar file; refusing to write over it`);
  return ArchiveStore.open(path, kind);
}

/** The index a writer's destination already holds (an existing layout or archive), to merge into; undefined for a new one. */
export async function existingIndex(writer: StoreWriter): Promise<ImageIndex | undefined> {
  const base = archiveBases.get(writer);
  if (base) return (await base.readIndex()).value;
  if (writer.kind !== 'oci') return undefined;
  // A new layout is staged elsewhere and appears only at commit: until then there is no index here.
  const store = new DirStore(writer.path);
  return (await store.readTopFile('index.json')) ? (await store.readIndex()).value : undefined;
}

async function guessDestinationKind(path: string): Promise<StoreKind> {
  const info = await stat(path).catch(() => undefined);
  if (info?.isDirectory()) return 'oci';
  if (info?.isFile()) return (await detectKind(path));
  return /\.(tar|oci)$/.test(path) ? 'oci-archive' : 'oci';
}
