/**
 * Names inside a root filesystem being built, resolved as the image's own processes would see them: every
 * component but the last is followed if it is a symlink, with the root standing in for `/` (as
 * securejoin does for umoci), so no link a layer made can lead a later entry outside the root.
 */
import { lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { OcikitError } from '../errors.js';

/** The most links followed resolving one name (Linux's own limit is 40). */
const MAX_LINKS = 40;

/**
 * The components of a tar entry name, after the lexical rules: a leading `/` or `./` is dropped (as GNU tar
 * and Docker do); `..`, empty names and NUL are refused.
 */
export function nameComponents(name: string, where: string): string[] {
  if (name.includes('\0')) throw new OcikitError(`${where}: entry name ${JSON.stringify(name)} contains NUL`, { exitCode: 1 });
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new OcikitError(`${where}: entry name ${JSON.stringify(name)} climbs out with '..'`, { exitCode: 1 });
  return parts;
}

/** The root-relative components of the directory a name's parent resolves to, links followed inside the root. */
export function resolveParent(root: string, parts: string[], where: string): Promise<string[]> {
  return resolveInRoot(root, parts.slice(0, -1), where, parts, false);
}

/** A whole name resolved inside the root, its last component followed too (for reading a file such as etc/passwd). */
export async function followInRoot(root: string, parts: string[], where: string): Promise<string> {
  return join(root, ...(await resolveInRoot(root, parts, where, parts, true)));
}

async function resolveInRoot(root: string, components: string[], where: string, parts: string[], lastMayBeFile: boolean): Promise<string[]> {
  const resolved: string[] = [];
  const pending = [...components];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.' || part === '') continue;
    if (part === '..') {
      resolved.pop(); // `..` at the root stays at the root, as in the kernel's own lookup
      continue;
    }
    const here = join(root, ...resolved, part);
    const info = await lstat(here).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (info?.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw new OcikitError(`${where}: more than ${MAX_LINKS} symbolic links resolving ${parts.join('/')}`, { exitCode: 1 });
      const target = await readlink(here);
      if (target.startsWith('/')) resolved.length = 0;
      pending.unshift(...target.split('/'));
      continue;
    }
    if (info && !info.isDirectory() && !(lastMayBeFile && pending.length === 0)) throw new OcikitError(`${where}: ${parts.join('/')}: ${[...resolved, part].join('/')} is not a directory`, { exitCode: 1 });
    resolved.push(part);
  }
  return resolved;
}

/** The path on disk for an entry: its parent resolved inside the root, its last component never followed. */
export async function entryPath(root: string, parts: string[], where: string): Promise<string> {
  if (parts.length === 0) return root;
  const parent = await resolveParent(root, parts, where);
  return join(root, ...parent, parts.at(-1)!);
}
