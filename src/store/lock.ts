import { open, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockedError } from '../errors.js';

export interface LockOptions {
  /** Queue behind the current holder instead of failing at once. */
  wait?: boolean;
  /** Give up waiting after this long. */
  timeoutMs?: number;
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
    if (await tryCreate(lockPath)) return { release: () => rm(lockPath, { force: true }) };
    if (await breakIfStale(lockPath)) continue;
    if (!options.wait || Date.now() > deadline) {
      const owner = await readOwner(lockPath);
      throw new LockedError(`layout is locked by another ocikit process${owner ? ` (${owner})` : ''}: ${what} (use --wait to queue)`);
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 100);
  }
}

async function tryCreate(lockPath: string): Promise<boolean> {
  try {
    const fh = await open(lockPath, 'wx', 0o644);
    try {
      await fh.writeFile(`${process.pid} ${hostname()}\n`);
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
  if (!content.endsWith('\n')) return false; // still being written by its owner
  if (host !== hostname() || !Number.isInteger(pid) || isAlive(pid)) return false;
  // Re-read just before removing so that a lock taken over by a third process meanwhile is left alone.
  const again = await readFile(lockPath, 'utf8').catch(() => '');
  if (again !== content) return true;
  await rm(lockPath, { force: true });
  return true;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
