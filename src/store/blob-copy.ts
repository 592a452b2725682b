import { constants, createWriteStream, existsSync, type Stats } from 'node:fs';
import { copyFile, link, open, rm, type FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { algorithmOf, isVerifiable, type Digest } from '../model/digest.js';
import { fileHasher } from '../hash/file-hasher.js';
import type { BlobRef, Store } from './store.js';
import { blobMismatch, verifiedBlob } from './verified-blob.js';

/** What a stream-written blob gets: read once, before any thread could be creating files. */
const BLOB_MODE = 0o644 & ~process.umask();

/** A store whose blobs are files of their own (a layout directory). */
export interface BlobFileSource extends Store {
  openBlobFile(digest: Digest): Promise<FileHandle>;
  blobFile(digest: Digest): Promise<string>;
}

let procFd: boolean | undefined;

/** The kernel copy needs the source reopened through /proc/self/fd, and the hash an algorithm Node knows. */
export function canLandFiles(digest: Digest): boolean {
  return isVerifiable(digest) && (procFd ??= existsSync('/proc/self/fd'));
}

/**
 * Puts a blob file into `temp` without passing its bytes through JavaScript: a hard link when asked
 * for and possible, else a clone (copy-on-write file systems) or an in-kernel copy. Then the bytes that
 * landed are hashed, on whichever core is free, while they are synced. The source is reopened through
 * its descriptor, so the file that was checked (no symlink, regular, its size) is the file copied.
 */
export async function landFile(from: BlobFileSource, blob: BlobRef, temp: string, hardLink: boolean): Promise<void> {
  fileHasher().prestart(blob.size); // it boots while the kernel copies
  const source = await from.openBlobFile(blob.digest);
  let linked = false;
  try {
    const info = await source.stat();
    if (info.size !== blob.size) throw blobMismatch(blob, from.path, `has ${info.size} bytes, declared size is ${blob.size}`);
    linked = hardLink && (await linkSame(await from.blobFile(blob.digest), temp, info));
    if (!linked) await copyFile(`/proc/self/fd/${source.fd}`, temp, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
  } finally {
    await source.close();
  }
  const landed = await open(temp, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    // copyFile gives the copy its source's mode; a blob ocikit writes has the mode of every other.
    if (!linked) await landed.chmod(BLOB_MODE);
    const [hex] = await Promise.all([fileHasher().hash(landed.fd, algorithmOf(blob.digest), blob.size), landed.sync()]);
    const actual = `${algorithmOf(blob.digest)}:${hex}`;
    if (actual !== blob.digest) throw blobMismatch(blob, from.path, `content digest is ${actual}`);
  } finally {
    await landed.close();
  }
}

/**
 * Links the source to `temp`, and keeps the link only when it is the very file that was opened and
 * checked (a rename in between would otherwise slip another file in). False when the file system or
 * its policy refuses (another device, protected_hardlinks, a link count at its limit): the caller copies.
 */
async function linkSame(path: string, temp: string, opened: Stats): Promise<boolean> {
  try {
    await link(path, temp);
  } catch {
    return false;
  }
  const fh = await open(temp, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
  const info = await fh?.stat().finally(() => fh.close());
  if (info && info.ino === opened.ino && info.dev === opened.dev) return true;
  await rm(temp, { force: true });
  return false;
}

/** Any store: the bytes stream through a check of size and digest into `temp`, which is then synced. */
export async function streamBlob(from: Store, blob: BlobRef, temp: string): Promise<void> {
  const source = await from.openBlob(blob.digest);
  // Made only now: its open error must find the pipeline listening, not go unhandled while the source opens.
  const out = createWriteStream(temp, { flags: 'wx', mode: 0o644, highWaterMark: 1 << 20 });
  await pipeline(source, verifiedBlob(blob, from.path), out);
  const fh = await open(temp, 'r');
  await fh.sync().finally(() => fh.close());
}
