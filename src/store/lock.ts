import { link, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockedError } from '../errors.js';
import { isAlive, tempPathFor } from './atomic-file.js';

const INCOMPLETE_LOCK_GRACE_MS = 30_000;

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

/**
 * An exclusive lock file holding the owner's pid. A lock whose owner is gone (killed mid-write)
 * is stale and is taken over, so a crash never wedges the layout.
 */
export async function acquireLock(lockPath: string, what: string, options: LockOptions = {}): Promise<Lock> {
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  let delay = 5;
  for (;;) {
    if (await tryCreate(lockPath)) return ownedLock(lockPath);
    if (await breakIfStale(lockPath)) continue;
    if (!options.wait || Date.now() > deadline) {
      const owner = await readOwner(lockPath);
      throw new LockedError(`layout is locked by another ocikit process${owner ? ` (${owner})` : ''}: ${what} (use --wait to queue)`);
    }
    if (options.signal?.aborted) throw new LockedError(`interrupted while waiting for the lock on ${what}`);
    await sleep(delay + Math.random() * delay, undefined, { signal: options.signal }).catch(() => undefined);
    delay = Math.min(delay * 2, 100);
  }
}

/** Released once, and only while the file is still this process's lock (never one another process took over). */
function ownedLock(lockPath: string): Lock {
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      const content = await readFile(lockPath, 'utf8').catch(() => '');
      if (content === ownerLine()) await rm(lockPath, { force: true });
    },
  };
}

const ownerLine = (): string => `${process.pid} ${hostname()}\n`;

/**
 * Creates the lock with its content in one step: the owner line is written to a temp file that is then
 * hard-linked to the lock name, so a process killed at any moment never leaves an empty lock that no
 * one could tell from a lock being written.
 */
async function tryCreate(lockPath: string): Promise<boolean> {
  const owner = ownerLine();
  const temp = tempPathFor(lockPath);
  try {
    await writeFile(temp, owner, { flag: 'wx', mode: 0o644 });
    await link(temp, lockPath);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') return tryCreateInPlace(lockPath, owner);
    throw err;
  } finally {
    await rm(temp, { force: true });
  }
}

/** For file systems without hard links: exclusive create, then write (a kill in between leaves an empty lock). */
async function tryCreateInPlace(lockPath: string, owner: string): Promise<boolean> {
  try {
    const fh = await open(lockPath, 'wx', 0o644);
    try {
      await fh.writeFile(owner);
    } finally {
      await fh.close();
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

async function readOwner(lockPath: string): Promise<string | undefined> {
  try {
    const [pid, host] = (await readFile(lockPath, 'utf8')).trim().split(' ');
    return pid ? `pid ${pid}${host && host !== hostname() ? ` on ${host}` : ''}` : undefined;
  } catch {
    return undefined;
  }
}

async function breakIfStale(lockPath: string): Promise<boolean> {
  let content: string;
  try {
    content = await readFile(lockPath, 'utf8');
  } catch {
    return true; // released meanwhile: try again
  }
  const [pidText, host] = content.trim().split(' ');
  const pid = Number(pidText);
  // Only a lock made without hard links can be caught half-written; past a grace period its writer is gone.
  if (!content.endsWith('\n')) return (await ageMs(lockPath)) > INCOMPLETE_LOCK_GRACE_MS && removeIfUnchanged(lockPath, content);
  if (host !== hostname() || !Number.isInteger(pid) || isAlive(pid)) return false;
  return removeIfUnchanged(lockPath, content);
}

/** Re-reads just before removing so that a lock taken over by a third process meanwhile is left alone. */
async function removeIfUnchanged(lockPath: string, content: string): Promise<boolean> {
  const again = await readFile(lockPath, 'utf8').catch(() => '');
  if (again === content) await rm(lockPath, { force: true });
  return true;
}

async function ageMs(path: string): Promise<number> {
  const info = await stat(path).catch(() => undefined);
  return info ? Date.now() - info.mtimeMs : 0;
}
