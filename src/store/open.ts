import { stat } from 'node:fs/promises';
import { looksLikeTar } from './tar-format.js';
import { OcikitError } from '../errors.js';
import { ArchiveStore } from './archive.js';
import { ArchiveWriter } from './archive-writer.js';
import { DirStore, DirWriter, isLayoutDir } from './dir.js';
import type { LockOptions } from './lock.js';
import { parseReference, type Reference } from './reference.js';
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
  if (!(await looksLikeTar(path))) throw new OcikitError(`${path}: not an OCI layout directory or a tar archive`);
  const archive = await ArchiveStore.open(path);
  return archive.kind;
}


export interface WriterOptions extends LockOptions {
  /** The store being rewritten in place (archives carry its content over). */
  base?: Store;
}

/**
 * A writer for a destination reference: in place when it names the store being read, else a new or
 * existing layout directory, or a new tarball (replaced atomically).
 */
export async function openWriter(ref: Reference, options: WriterOptions = {}): Promise<StoreWriter> {
  const kind = ref.kind ?? (await guessDestinationKind(ref.path));
  if (kind === 'oci') return DirWriter.open(ref.path, { ...options, create: true });
  const base = options.base instanceof ArchiveStore && options.base.path === ref.path ? options.base : undefined;
  const repoTag = ref.selector && 'tag' in ref.selector ? ref.selector.tag : undefined;
  return ArchiveWriter.open(ref.path, kind, { ...options, base, repoTag });
}

async function guessDestinationKind(path: string): Promise<StoreKind> {
  const info = await stat(path).catch(() => undefined);
  if (info?.isDirectory()) return 'oci';
  if (info?.isFile()) return (await detectKind(path));
  return /\.(tar|oci)$/.test(path) ? 'oci-archive' : 'oci';
}
