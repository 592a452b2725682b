import { readlinkSync } from 'node:fs';
import { constants, link, lstat, open, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockedError, OcikitError } from '../errors.js';
import { isAlive, tempPathFor } from './atomic-file.js';

const INCOMPLETE_LOCK_GRACE_MS = 30_000;
/** A takeover holds the break lock for a few file operations: one older than this was left by a killed process. */
const BREAK_LOCK_STALE_MS = 10_000;
/** Lock files hold one short line; anything longer is not read in full. */
const MAX_LOCK_BYTES = 4096;

export interface LockOptions {
  /** Queue behind the current holder instead of failing at once. */
  wait?: boolean;
  /** Give up waiting after this long. */
  timeoutMs?: number;
  /** Stop waiting when this fires (Ctrl-C while queued with --wait). */
  signal?: AbortSignal;
}

export interface Lock {
  release(): Promise<void>;
}

/** A lock file as read: its content and inode, so a later step can tell whether it is still the same file. */
interface LockFile {
  content: string;
  ino: number;
  mtimeMs: number;
}

/**
 * An exclusive lock file holding the owner's pid, host and PID namespace. A lock whose owner is provably
 * gone (killed mid-write) is stale and is taken over, so a crash never wedges the layout.
 */
export async function acquireLock(lockPath: string, what: string, options: LockOptions = {}): Promise<Lock> {
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  let delay = 5;
  for (;;) {
    const mine = await tryCreate(lockPath);
    if (mine) return ownedLock(lockPath, mine);
    const held = await readLock(lockPath);
    const stale = held !== undefined && isStale(held, INCOMPLETE_LOCK_GRACE_MS);
    if (stale) await breakStale(lockPath);
    if (held && !stale && !options.wait) throw lockedError(held, what);
    if (options.signal?.aborted) throw new LockedError(`interrupted while waiting for the lock on ${what}`);
    if (Date.now() > deadline) throw lockedError(held, what);
    // A pause on every pass, even when the lock just went away: signals are handled and no core is burnt.
    const pause = held && !stale ? delay + Math.random() * delay : 1;
    await sleep(pause, undefined, { signal: options.signal }).catch(() => undefined);
    if (held && !stale) delay = Math.min(delay * 2, 100);
  }
}

function lockedError(held: LockFile | undefined, what: string): LockedError {
  const owner = held && describeOwner(held.content);
  return new LockedError(`layout is locked by another ocikit process${owner ? ` (${owner})` : ''}: ${what} (use --wait to queue)`);
}

/** Released once, and only while the file is still this process's lock (never one another process took over). */
function ownedLock(lockPath: string, mine: LockFile): Lock {
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      if (isSameFile(await readLock(lockPath).catch(() => undefined), mine)) await rm(lockPath, { force: true });
    },
  };
}

/** Same inode and content; a lock written in place on a full disk may hold less than its owner line. */
function isSameFile(now: LockFile | undefined, mine: LockFile): boolean {
  return now !== undefined && now.ino === mine.ino && mine.content.startsWith(now.content);
}

/** The PID namespace a pid belongs to: a pid from another one (a container sharing the volume) says nothing here. */
const ownPidNamespace = ((): string | undefined => {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
})();

const ownerLine = (): string => `${process.pid} ${hostname()}${ownPidNamespace ? ` ${ownPidNamespace}` : ''}\n`;

function parseOwner(content: string): { pid: number; host?: string; pidNamespace?: string } {
  const [pid, host, pidNamespace] = content.trim().split(' ');
  return { pid: pid ? Number(pid) : NaN, host, pidNamespace };
}

function describeOwner(content: string): string | undefined {
  const { pid, host, pidNamespace } = parseOwner(content);
  if (Number.isNaN(pid)) return undefined;
  if (host && host !== hostname()) return `pid ${pid} on ${host}`;
  return pidNamespace && pidNamespace !== ownPidNamespace ? `pid ${pid} in another PID namespace` : `pid ${pid}`;
}

/**
 * Creates the lock with its content in one step: the owner line is written to a temp file that is then
 * hard-linked to the lock name, so a process killed at any moment never leaves an empty lock that no
 * one could tell from a lock being written. Undefined when the lock exists.
 */
async function tryCreate(lockPath: string): Promise<LockFile | undefined> {
  const owner = ownerLine();
  const temp = tempPathFor(lockPath);
  try {
    await writeFile(temp, owner, { flag: 'wx', mode: 0o644 });
    await link(temp, lockPath);
    return { content: owner, ino: (await lstat(lockPath)).ino, mtimeMs: Date.now() };
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EEXIST') return undefined;
    // No hard links, or no room for the temp file (gc must still run on a full disk to free space).
    if (IN_PLACE_CODES.has(code)) return tryCreateInPlace(lockPath, owner);
    throw namingLock(err, lockPath);
  } finally {
    await rm(temp, { force: true });
  }
}

const IN_PLACE_CODES = new Set<string | undefined>(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'ENOSPC', 'EDQUOT']);

/** Exclusive create, then a best-effort write: a kill in between, or a full disk, leaves an empty lock. */
async function tryCreateInPlace(lockPath: string, owner: string): Promise<LockFile | undefined> {
  let fh;
  try {
    fh = await open(lockPath, 'wx', 0o644);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return undefined;
    throw namingLock(err, lockPath);
  }
  try {
    const { ino } = await fh.stat();
    const written = await fh.write(owner).then(({ bytesWritten }) => owner.slice(0, bytesWritten), () => '');
    return { content: written, ino, mtimeMs: Date.now() };
  } finally {
    await fh.close();
  }
}

/** The lock as it is now, or undefined when there is none. Only a regular file is a lock. */
async function readLock(lockPath: string): Promise<LockFile | undefined> {
  let fh;
  try {
    // Non-blocking: a FIFO put in the lock's place must not hang the process.
    fh = await open(lockPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw notALock(lockPath, 'a symlink');
    throw err;
  }
  try {
    const info = await fh.stat();
    if (!info.isFile()) throw notALock(lockPath, info.isDirectory() ? 'a directory' : 'a special file');
    const buf = Buffer.alloc(MAX_LOCK_BYTES);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return { content: buf.toString('utf8', 0, bytesRead), ino: info.ino, mtimeMs: info.mtimeMs };
  } finally {
    await fh.close();
  }
}

function notALock(lockPath: string, what: string): OcikitError {
  return new OcikitError(`${lockPath}: the lock file is ${what}, not a regular file; remove it if no ocikit process is writing`);
}

/** Stale only when its owner is provably gone: dead, on this host, in this PID namespace. */
function isStale(lock: LockFile, incompleteGraceMs: number): boolean {
  // Only a lock made in place can be caught half-written; past a grace period its writer is gone.
  if (!lock.content.endsWith('\n')) return Date.now() - lock.mtimeMs > incompleteGraceMs;
  const { pid, host, pidNamespace } = parseOwner(lock.content);
  if (host !== hostname() || !Number.isInteger(pid)) return false;
  // Locks written before namespaces were recorded name none; they are judged by pid as before.
  if (pidNamespace !== undefined && pidNamespace !== ownPidNamespace) return false;
  return !isAlive(pid);
}

/**
 * Takeovers are serialised by a second exclusive lock: judging a lock stale and removing it are two
 * steps, and two breakers interleaving them would let the second remove the lock the first one made.
 * Only breakers ever change a lock that exists, so a stale lock re-judged under the break lock stays stale.
 */
async function breakStale(lockPath: string): Promise<void> {
  const breakPath = `${lockPath}.break`;
  const mine = await tryCreate(breakPath);
  if (!mine) {
    const other = await readLock(breakPath);
    if (other && (isStale(other, BREAK_LOCK_STALE_MS) || Date.now() - other.mtimeMs > BREAK_LOCK_STALE_MS)) await removeIfSame(breakPath, other);
    return;
  }
  try {
    const now = await readLock(lockPath);
    if (now && isStale(now, INCOMPLETE_LOCK_GRACE_MS)) await removeIfSame(lockPath, now);
  } finally {
    await ownedLock(breakPath, mine).release();
  }
}

/** Moves the file aside and deletes it only if it is still the one judged stale; any other file is put back. */
async function removeIfSame(path: string, judged: LockFile): Promise<void> {
  const aside = tempPathFor(path);
  try {
    await rename(path, aside);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw namingLock(err, path);
  }
  const moved = await readLock(aside).catch(() => undefined);
  if (!moved || moved.ino !== judged.ino || moved.content !== judged.content) await link(aside, path).catch(() => undefined);
  await rm(aside, { force: true });
}

const errnoCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

/** Errors name the lock, never the temp file it is made from. */
function namingLock(err: unknown, lockPath: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string') e.path = lockPath;
  return err;
}
