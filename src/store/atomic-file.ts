import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, open, rename, rm, readdir, type FileHandle } from 'node:fs/promises';
import { withPath } from '../errors.js';
import { basename, dirname, join } from 'node:path';

/** Temp files carry this prefix; a blob name never starts with a dot, so they are never taken for blobs. */
export const TEMP_PREFIX = '.ocikit-tmp-';

export function tempPathFor(target: string): string {
  return join(dirname(target), `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}-${basename(target)}`);
}

/**
 * Writes to a temp file in the same directory, fsyncs, then renames: readers see the old or the new file.
 * A file replaced keeps its mode (and, for root, its owner), as an edit in place would.
 */
export async function writeFileAtomic(target: string, data: Uint8Array): Promise<void> {
  const temp = tempPathFor(target);
  const old = await lstat(target).catch(() => undefined);
  try {
    const fh = await open(temp, 'wx', 0o644);
    try {
      if (old?.isFile()) await keepOwnership(fh, old);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { force: true });
    throw withPath(err, target);
  }
  await syncDir(dirname(target));
}

async function keepOwnership(fh: FileHandle, old: Stats): Promise<void> {
  await fh.chmod(old.mode & 0o7777);
  if (process.getuid?.() === 0) await fh.chown(old.uid, old.gid);
}

/** Makes a rename durable. Some file systems refuse to fsync a directory; that is not an error worth failing on. */
export async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* best effort */
  }
}

/** The pid a temp name was made by, or undefined when the name is not one of ours. */
function tempOwner(name: string): number | undefined {
  if (!name.startsWith(TEMP_PREFIX)) return undefined;
  const pid = Number(/^(\d+)-/.exec(name.slice(TEMP_PREFIX.length))?.[1]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The name a temp file was made for (`.ocikit-tmp-<pid>-<random>-<name>`). */
function tempTarget(name: string): string {
  return /^\d+-[0-9a-f]+-(.*)$/s.exec(name.slice(TEMP_PREFIX.length))?.[1] ?? '';
}

/** A temp file is stale when the process named in it is gone (killed mid-write); a live writer's is spared. */
export function isStaleTemp(name: string): boolean {
  if (!name.startsWith(TEMP_PREFIX)) return false;
  const pid = tempOwner(name);
  return pid === undefined || !isAlive(pid);
}

export function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temp files and directories a killed run left in `dir`; `only` narrows to temps made for those names. */
export async function removeStaleTemps(dir: string, only?: string[]): Promise<number> {
  let removed = 0;
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!isStaleTemp(name)) continue;
    if (only && !only.includes(tempTarget(name))) continue;
    await rm(join(dir, name), { force: true, recursive: true });
    removed++;
  }
  return removed;
}

/** Removes stale temps made for `target` beside it (a tarball or a new layout being written). */
export function removeStaleTempsFor(target: string, ...alsoFor: string[]): Promise<number> {
  return removeStaleTemps(dirname(target), [basename(target), ...alsoFor]);
}
