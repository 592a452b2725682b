/** The directory a root filesystem is unpacked into: empty or absent before, and as it was again if the unpack fails. */
import { mkdir, readdir, stat } from 'node:fs/promises';
import fse from 'fs-extra';
import { OcikitError } from '../errors.js';

export interface UnpackTarget {
  path: string;
  /** Removes everything the unpack made (the directory too, when it made it). */
  discard(): Promise<void>;
}

export async function prepareTarget(path: string): Promise<UnpackTarget> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new OcikitError(`${path}: ${err.code === 'EACCES' ? 'permission denied' : err.message}`);
  });
  if (info && !info.isDirectory()) throw new OcikitError(`${path}: exists and is not a directory`);
  if (info && (await readdir(path)).length > 0) throw new OcikitError(`${path}: not empty; unpack writes only into an empty or new directory`);
  if (!info) await mkdir(path, { recursive: true });
  return { path, discard: () => (info ? fse.emptyDir(path) : fse.remove(path)) };
}
