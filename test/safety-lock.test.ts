/**
 * The layout lock against what it may find in its place: a symlink, a directory or a FIFO where the lock
 * file should be (refused at once, with or without --wait, nothing left behind), and a lock written by a
 * process in another PID namespace (a container sharing the volume), whose pid proves nothing here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { cp, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { assertCleanError, describeRun, runOcikit } from './helpers/ocikit-process.js';
import { layoutFixture, scratchDir } from './helpers/scratch.js';
import { assertTreeUnchanged, snapshotTree } from './helpers/tree-snapshot.js';

const { dir: root, cleanup } = await scratchDir('safety-lock');
test.after(cleanup);

let n = 0;
async function appCopy(): Promise<string> {
  const dir = join(root, `app-${n++}`);
  await cp(layoutFixture('app'), dir, { recursive: true });
  return dir;
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

const notRegular: Array<[string, (lock: string) => Promise<void>, RegExp]> = [
  ['a dangling symlink', (lock) => symlink('/nonexistent/ocikit-lock-target', lock), /lock file is a symlink/],
  ['a directory', (lock) => mkdir(lock), /lock file is a directory/],
  ['a FIFO', async (lock) => void execFileSync('mkfifo', [lock]), /lock file is a special file/],
];

for (const [what, make, message] of notRegular) {
  test(`a lock path that is ${what} is refused at once, even with --wait, and nothing is left behind`, async () => {
    // Only ENOENT means the lock was released: anything else used to send writers round the loop
    // forever at full CPU, deaf to SIGTERM, leaving a temp lock file behind on every pass.
    const layout = await appCopy();
    await make(join(layout, '.ocikit-lock'));
    const before = await snapshotTree(layout);
    for (const args of [['tag', `${layout}:latest`, 'v2'], ['tag', '--wait', `${layout}:latest`, 'v2'], ['gc', layout]]) {
      const r = await runOcikit(args, { timeoutMs: 20_000 });
      assertCleanError(r, [2], message);
      assert.ok(r.stderr.includes(join(layout, '.ocikit-lock')), `the error names the lock path: ${describeRun(r)}`);
      await assertTreeUnchanged(layout, before, `${args.join(' ')} with the lock as ${what}`);
    }
  });
}

test('a lock from another PID namespace is respected even when its pid is not running here', async () => {
  const layout = await appCopy();
  const lock = join(layout, '.ocikit-lock');
  const own = execFileSync('readlink', ['/proc/self/ns/pid'], { encoding: 'utf8' }).trim();
  const other = own === 'pid:[1]' ? 'pid:[2]' : 'pid:[1]';
  const line = `${await deadPid()} ${hostname()} ${other}\n`;
  await writeFile(lock, line);
  const refused = await runOcikit(['tag', `${layout}:latest`, 'v2']);
  assertCleanError(refused, [2], /layout is locked by another ocikit process \(pid \d+ in another PID namespace\)/);
  assert.equal(await readFile(lock, 'utf8'), line, 'the lock is left in place');

  // The same dead pid in this namespace is provably gone: taken over.
  await writeFile(lock, `${line.split(' ').slice(0, 2).join(' ')} ${own}\n`);
  const taken = await runOcikit(['tag', `${layout}:latest`, 'v2']);
  assert.equal(taken.code, 0, describeRun(taken));
  assert.deepEqual((await readdir(layout)).filter((name) => name.startsWith('.ocikit')), []);
});

test('the lock records pid, host and PID namespace, and is removed on release', async () => {
  const own = execFileSync('readlink', ['/proc/self/ns/pid'], { encoding: 'utf8' }).trim();
  const { acquireLock } = await import('../src/store/lock.js');
  const lock = join(root, 'own.lock');
  const held = await acquireLock(lock, lock);
  try {
    assert.equal(await readFile(lock, 'utf8'), `${process.pid} ${hostname()} ${own}\n`);
  } finally {
    await held.release();
  }
  await assert.rejects(readFile(lock), 'released');
});
