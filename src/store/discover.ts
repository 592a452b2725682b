import { realpath, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import fg from 'fast-glob';
import { describeError, OcikitError } from '../errors.js';

/** One image store found under a tree: a layout directory or a tarball. */
export interface Discovered {
  path: string;
  kind: 'oci' | 'archive';
}

/** Tarballs are taken by name: sniffing every file would read into the layers of layouts stored as plain files. */
const TARBALL_PATTERN = '**/*.{tar,TAR,oci,docker}';

/**
 * Every layout directory (marked by its `oci-layout` file) and every tarball under `root`, sorted by path.
 * Links are never followed, so nothing outside the tree is read; nothing inside a layout is taken for another
 * store (its blobs are layers, not archives).
 */
export async function discoverStores(root: string): Promise<Discovered[]> {
  const info = await stat(root).catch((err: unknown) => {
    throw new OcikitError(`--find ${root}: ${describeError(err).split('\n')[0]}`);
  });
  if (!info.isDirectory()) throw new OcikitError(`--find ${root}: not a directory`);
  const top = await realpath(root);
  const options = { cwd: top, onlyFiles: true, followSymbolicLinks: false, dot: false, unique: true } as const;
  const markers = await glob(['**/oci-layout'], options, root);
  const layouts = markers.map((m) => dirname(m)).filter((d, _, all) => !all.some((o) => o !== d && inside(d, join(o, 'blobs'))));
  const inLayout = layouts.map((d) => (d === '.' ? '**' : `${fg.escapePath(d)}/**`));
  const tarballs = await glob([TARBALL_PATTERN], { ...options, ignore: inLayout }, root);
  const found: Discovered[] = [
    ...layouts.map((d) => ({ path: join(root, d), kind: 'oci' as const })),
    ...tarballs.map((f) => ({ path: join(root, f), kind: 'archive' as const })),
  ];
  return found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function glob(patterns: string[], options: fg.Options, root: string): Promise<string[]> {
  try {
    return await fg(patterns, options);
  } catch (err) {
    throw new OcikitError(`--find ${root}: ${describeError(err).split('\n')[0]}`);
  }
}

function inside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !rel.startsWith(sep));
}
