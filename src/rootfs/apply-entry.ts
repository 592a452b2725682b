/**
 * Applies one layer entry to a root filesystem: regular files, directories, symlinks, hard links, modes,
 * owners and times, and OCI whiteouts. Every name is resolved inside the root (secure-path.ts); an entry
 * replaces whatever a lower layer left at its name, but a directory over a directory keeps the contents.
 */
import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import fse from 'fs-extra';
import { OcikitError } from '../errors.js';
import { entryPath, nameComponents, resolveParent } from './secure-path.js';

/** The parts of a tar header an entry is applied from (node-tar's ReadEntry has them). */
export interface LayerEntry {
  type: string;
  path: string;
  linkpath?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  size: number;
}

export interface ApplyOptions {
  /** Owners from the layer (as root); otherwise files belong to the caller, as umoci's --rootless. */
  owners: boolean;
}

export interface RootfsTally {
  files: number;
  directories: number;
  symlinks: number;
  hardlinks: number;
  whiteouts: number;
  bytes: number;
  /** Entries that could not be made here, by kind (`character device`, …). */
  skipped: Record<string, number>;
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

export class RootfsWriter {
  readonly tally: RootfsTally = { files: 0, directories: 0, symlinks: 0, hardlinks: 0, whiteouts: 0, bytes: 0, skipped: {} };
  /** Directory times are set last: creating what is inside a directory changes its mtime. */
  private readonly dirTimes = new Map<string, Date>();
  /** Root-relative names this layer made (and their parents): whiteouts only hide lower layers. */
  private layerNames = new Set<string>();

  constructor(private readonly root: string, private readonly options: ApplyOptions) {}

  startLayer(): void {
    this.layerNames = new Set();
  }

  /** Applies an entry; `body` is its content for regular files (drained by the caller otherwise). */
  async apply(entry: LayerEntry, body: AsyncIterable<Buffer>, where: string): Promise<void> {
    const parts = nameComponents(entry.path, where);
    if (parts.length === 0) return this.rootEntry(entry);
    const base = parts.at(-1)!;
    if (base.startsWith(WHITEOUT)) return this.whiteout(parts, base, where);
    const parent = await resolveParent(this.root, parts, where);
    await fse.mkdirs(join(this.root, ...parent));
    const path = join(this.root, ...parent, base);
    this.remember([...parent, base]);
    switch (entry.type) {
      case 'File':
      case 'OldFile':
      case 'ContiguousFile':
        await this.replace(path, false);
        await writeBody(path, body);
        this.tally.files++;
        this.tally.bytes += entry.size;
        return this.finish(path, entry, 'file');
      case 'Directory':
        if (!(await this.replace(path, true))) await mkdir(path, { mode: 0o700 });
        this.tally.directories++;
        return this.finish(path, entry, 'directory');
      case 'SymbolicLink':
        await this.replace(path, false);
        await symlink(entry.linkpath ?? '', path);
        this.tally.symlinks++;
        return this.finish(path, entry, 'symlink');
      case 'Link':
        return this.hardLink(path, entry, where);
      default:
        this.skip(kindName(entry.type));
    }
  }

  /** Sets the directories' times, deepest first, once every layer is in. */
  async close(): Promise<void> {
    const dirs = [...this.dirTimes].sort(([a], [b]) => b.length - a.length);
    for (const [path, time] of dirs) await utimes(path, time, time);
  }

  private async rootEntry(entry: LayerEntry): Promise<void> {
    if (entry.type !== 'Directory') return;
    await this.finish(this.root, entry, 'directory');
  }

  private async hardLink(path: string, entry: LayerEntry, where: string): Promise<void> {
    const targetParts = nameComponents(entry.linkpath ?? '', where);
    const target = await entryPath(this.root, targetParts, where);
    const info = await lstat(target).catch(() => undefined);
    if (!info || info.isDirectory()) {
      throw new OcikitError(`${where}: hard link ${entry.path} -> ${entry.linkpath}: ${info ? 'is a directory' : 'no such file in the layers so far'}`, { exitCode: 1 });
    }
    if (target === path) return;
    await this.replace(path, false);
    await link(target, path);
    this.tally.hardlinks++;
  }

  /** Clears the name for a new entry; true when a directory stays (a directory over a directory). */
  private async replace(path: string, isDir: boolean): Promise<boolean> {
    const info = await lstat(path).catch(() => undefined);
    if (!info) return false;
    if (isDir && info.isDirectory()) return true;
    await this.remove(path);
    return false;
  }

  /** Removes a name and all under it, and forgets the times of directories that went with it. */
  private async remove(path: string): Promise<void> {
    await fse.remove(path);
    for (const dir of this.dirTimes.keys()) if (dir === path || dir.startsWith(`${path}/`)) this.dirTimes.delete(dir);
  }

  private async finish(path: string, entry: LayerEntry, kind: 'file' | 'directory' | 'symlink'): Promise<void> {
    if (this.options.owners && entry.uid !== undefined && entry.gid !== undefined) await lchown(path, entry.uid, entry.gid);
    // chmod after chown: chown clears set-id bits.
    if (kind !== 'symlink' && entry.mode !== undefined) await chmod(path, entry.mode & 0o7777);
    const time = entry.mtime ?? new Date(0);
    if (kind === 'directory') this.dirTimes.set(path, time);
    else if (kind === 'symlink') await lutimes(path, time, time);
    else await utimes(path, time, time);
  }

  /** `.wh.NAME` removes NAME of lower layers; `.wh..wh..opq` empties its directory of them. */
  private async whiteout(parts: string[], base: string, where: string): Promise<void> {
    const name = base.slice(WHITEOUT.length);
    if (name === '') throw new OcikitError(`${where}: entry ${parts.join('/')}: a bare whiteout names nothing`, { exitCode: 1 });
    const parent = await resolveParent(this.root, parts, where);
    const dir = join(this.root, ...parent);
    this.tally.whiteouts++;
    if (base === OPAQUE) {
      const children = await readdir(dir).catch(() => [] as string[]);
      for (const child of children) {
        if (!this.layerNames.has([...parent, child].join('/'))) await this.remove(join(dir, child));
      }
      return;
    }
    if (name.startsWith(WHITEOUT)) return; // other aufs metadata (.wh..wh.plnk and the like) has no meaning here
    if (!this.layerNames.has([...parent, name].join('/'))) await this.remove(join(dir, name));
  }

  private remember(parts: string[]): void {
    for (let i = 1; i <= parts.length; i++) this.layerNames.add(parts.slice(0, i).join('/'));
  }

  private skip(kind: string): void {
    this.tally.skipped[kind] = (this.tally.skipped[kind] ?? 0) + 1;
  }
}

async function writeBody(path: string, body: AsyncIterable<Buffer>): Promise<void> {
  const file = await open(path, 'wx', 0o600);
  try {
    for await (const chunk of body) await file.write(chunk);
  } finally {
    await file.close();
  }
}

function kindName(type: string): string {
  const names: Record<string, string> = { CharacterDevice: 'character device', BlockDevice: 'block device', FIFO: 'fifo' };
  return names[type] ?? `${type} entry`;
}
