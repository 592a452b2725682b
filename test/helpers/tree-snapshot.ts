/**
 * Snapshots of a directory tree (names, types, modes, content hashes, link targets; symlinks are never
 * followed) so a test can prove that a command changed nothing, or changed only what it names.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  /** sha256 of a file's content, a symlink's target, or '' for directories. */
  content: string;
  size: number;
}

export type TreeSnapshot = Map<string, TreeEntry>;

const HASH_LIMIT = 64 * 1024 * 1024;

export interface SnapshotOptions {
  /** Relative paths (and everything under them) left out, e.g. a filler file or the named output. */
  ignore?: (relative: string) => boolean;
}

export async function snapshotTree(root: string, options: SnapshotOptions = {}): Promise<TreeSnapshot> {
  const out: TreeSnapshot = new Map();
  const visit = async (relative: string): Promise<void> => {
    const names = await readdir(join(root, relative)).catch(() => [] as string[]);
    for (const name of names.sort()) {
      const rel = relative ? `${relative}/${name}` : name;
      if (options.ignore?.(rel)) continue;
      const path = join(root, rel);
      const info = await lstat(path);
      const mode = info.mode & 0o7777;
      if (info.isSymbolicLink()) {
        out.set(rel, { type: 'symlink', mode, content: await readlink(path), size: 0 });
      } else if (info.isDirectory()) {
        out.set(rel, { type: 'dir', mode, content: '', size: 0 });
        await visit(rel);
      } else if (info.isFile()) {
        // Huge (sparse) test files are compared by identity: a rewrite makes a new inode or mtime.
        const content = info.size > HASH_LIMIT
          ? `ino ${info.ino} mtime ${info.mtimeMs}`
          : createHash('sha256').update(await readFile(path)).digest('hex');
        out.set(rel, { type: 'file', mode, content, size: info.size });
      } else {
        out.set(rel, { type: 'other', mode, content: '', size: 0 });
      }
    }
  };
  await visit('');
  return out;
}

/** Human-readable differences between two snapshots; empty when equal. */
export function diffTrees(before: TreeSnapshot, after: TreeSnapshot): string[] {
  const diffs: string[] = [];
  for (const [name, a] of before) {
    const b = after.get(name);
    if (!b) diffs.push(`removed ${name}`);
    else if (a.type !== b.type) diffs.push(`${name}: ${a.type} became ${b.type}`);
    else if (a.content !== b.content || a.size !== b.size) diffs.push(`changed ${name}`);
    else if (a.mode !== b.mode) diffs.push(`${name}: mode ${a.mode.toString(8)} became ${b.mode.toString(8)}`);
  }
  for (const name of after.keys()) if (!before.has(name)) diffs.push(`added ${name}`);
  return diffs;
}

export async function assertTreeUnchanged(root: string, before: TreeSnapshot, what: string, options: SnapshotOptions = {}): Promise<void> {
  const diffs = diffTrees(before, await snapshotTree(root, options));
  assert.deepEqual(diffs, [], `${what}: ${root} changed: ${diffs.slice(0, 20).join('; ')}`);
}

/** The snapshot without the entries `ignore` names, to compare with a snapshot taken with the same filter. */
export function withoutPaths(snapshot: TreeSnapshot, ignore: (relative: string) => boolean): TreeSnapshot {
  return new Map([...snapshot].filter(([name]) => !ignore(name)));
}
