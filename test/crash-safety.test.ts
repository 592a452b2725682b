/**
 * Crash safety: every writing command, killed with SIGKILL at seeded moments spread over its run, leaves
 * its target exactly as it was or exactly as a finished run leaves it, sound (every blob hashes to its
 * name, everything index.json reaches is there), with no temp file taken for a blob; the next write
 * takes over the dead run's lock and removes its temp files. Also: a full disk and a read-only or
 * forbidden directory fail with one line and exit 2 and change nothing.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import { chmod, chown, cp, mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { killPlans, killTrial, referenceRun, scenarios, startupOf, writePhaseOf, type TrialOutcome } from './helpers/kill-harness.js';
import { checkLayout } from './helpers/layout-check.js';
import { assertCleanError, describeRun, runOcikit, startOcikit, finish } from './helpers/ocikit-process.js';
import { layoutFixture, pseudoRandomBytes, scratchDir, writeBigLayout } from './helpers/scratch.js';
import { assertTreeUnchanged, snapshotTree } from './helpers/tree-snapshot.js';

const TRIALS_PER_SCENARIO = Number(process.env.OCIKIT_CRASH_TRIALS ?? 20);
const PARALLEL = 2;
const SEED = 0x0c1c1e;

const { dir: root, cleanup } = await scratchDir('crash');
test.after(cleanup);

const bigLayout = join(root, 'big');
await writeBigLayout(bigLayout);
const bigArchive = join(root, 'big.tar');
{
  const r = await runOcikit(['convert', bigLayout, `oci-archive:${bigArchive}`]);
  assert.equal(r.code, 0, describeRun(r));
}

test('SIGKILL at any moment: the target is exactly old or exactly new, sound, and the next write cleans up', { timeout: 240_000 }, async (t) => {
  const all = scenarios({ layout: layoutFixture, bigLayout, bigArchive });
  assert.ok(all.length >= 7, 'tag, untag and every convert form are always covered');
  let scenarioSeed = SEED;
  for (const s of all) {
    await t.test(s.name, async (st) => {
      const ws = join(root, s.name.replace(/[^a-z0-9]+/gi, '-'));
      const ref = await referenceRun(s, ws);
      const plans = killPlans(TRIALS_PER_SCENARIO, scenarioSeed++);
      const outcomes: TrialOutcome[] = [];
      for (let i = 0; i < plans.length; i += PARALLEL) {
        const batch = plans.slice(i, i + PARALLEL).map((plan, j) => killTrial(s, ref, join(ws, `trial-${i + j}`), plan, (i + j) % 6 === 0));
        outcomes.push(...(await Promise.all(batch)));
        await Promise.all(plans.slice(i, i + PARALLEL).map((_, j) => rm(join(ws, `trial-${i + j}`), { recursive: true, force: true })));
      }
      const killed = outcomes.filter((o) => o.killed);
      const tally = (state: string) => killed.filter((o) => o.state === state).length;
      st.diagnostic(`${s.name}: startup ${startupOf(ref).toFixed(0)} ms, write phase ${writePhaseOf(ref).toFixed(0)} ms; `
        + `${killed.length}/${outcomes.length} killed (${tally('old')} old, ${tally('new')} new), `
        + `${outcomes.filter((o) => o.leftovers.length > 0).length} left temp files or a lock that the next write removed`);
      assert.ok(killed.length > 0, `${s.name}: no trial was killed; the kill moments miss the command`);
    });
  }
});

// ---------------------------------------------------------------------------
// Stale locks and temp files
// ---------------------------------------------------------------------------

/** A pid that belonged to a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  const pid = child.pid!;
  await new Promise((resolve) => child.once('exit', resolve));
  return pid;
}

async function appCopy(name: string): Promise<string> {
  const dir = join(root, name);
  await cp(layoutFixture('app'), dir, { recursive: true });
  return dir;
}

test('a lock left by a dead process is taken over; a live one makes writers fail with "layout is locked" and exit 2', async () => {
  const layout = await appCopy('stale-lock');
  const lockFile = join(layout, '.ocikit-lock');
  const hostname = (await import('node:os')).hostname();

  await writeFile(lockFile, `${await deadPid()} ${hostname}\n`);
  const taken = await runOcikit(['tag', `${layout}:latest`, 'after-dead-owner']);
  assert.equal(taken.code, 0, describeRun(taken));
  await assert.rejects(readFile(lockFile), 'the lock is released after the write');

  await writeFile(lockFile, `${process.pid} ${hostname}\n`);
  const before = await snapshotTree(layout);
  const refused = await runOcikit(['tag', `${layout}:latest`, 'while-locked']);
  assertCleanError(refused, [2], /layout is locked/);
  assert.match(refused.stderr, new RegExp(`pid ${process.pid}`), 'the message names the holder');
  await assertTreeUnchanged(layout, before, 'a refused write');

  // A lock file with no complete owner line: only a writer without hard links could leave one, and
  // only for a moment, so an old one is stale and a fresh one is respected.
  await writeFile(lockFile, '');
  const fresh = await runOcikit(['tag', `${layout}:latest`, 'fresh-empty-lock']);
  assertCleanError(fresh, [2], /layout is locked/);
  const old = new Date(Date.now() - 120_000);
  await utimes(lockFile, old, old);
  const stale = await runOcikit(['tag', `${layout}:latest`, 'old-empty-lock']);
  assert.equal(stale.code, 0, describeRun(stale));
});

test('--wait queues behind a live lock and proceeds once it is released', async () => {
  const layout = await appCopy('wait-lock');
  const lockFile = join(layout, '.ocikit-lock');
  await writeFile(lockFile, `${process.pid} ${(await import('node:os')).hostname()}\n`);
  const child = startOcikit(['tag', '--wait', `${layout}:latest`, 'queued']);
  const result = finish(child, ['tag', '--wait']);
  await new Promise((resolve) => setTimeout(resolve, 600));
  assert.equal(child.exitCode, null, 'still waiting while the lock is held');
  await rm(lockFile);
  const r = await result;
  assert.equal(r.code, 0, describeRun(r));
  assert.match(await readFile(join(layout, 'index.json'), 'utf8'), /"queued"/);
});

test('temp files of dead writers are removed by the next write; a live writer\'s temp file is left alone', async () => {
  const layout = await appCopy('stale-temps');
  const dead = await deadPid();
  const stale = [
    `.ocikit-tmp-${dead}-0123456789ab-index.json`,
    `blobs/sha256/.ocikit-tmp-${dead}-0123456789ab-${'e'.repeat(64)}`,
    `.ocikit-tmp-${dead}-0123456789ab-.ocikit-lock`,
  ];
  const live = `blobs/sha256/.ocikit-tmp-${process.pid}-0123456789ab-${'f'.repeat(64)}`;
  for (const name of [...stale, live]) await writeFile(join(layout, name), pseudoRandomBytes(1000, 7));
  const beside = join(root, `.ocikit-tmp-${dead}-0123456789ab-stale-temps`);
  await mkdir(join(beside, 'blobs'), { recursive: true });

  const report = await checkLayout(layout);
  assert.deepEqual(report.problems, [], 'temp files are never taken for blobs');
  assert.equal(report.temps.length, 4);

  const r = await runOcikit(['tag', `${layout}:latest`, 'cleaned']);
  assert.equal(r.code, 0, describeRun(r));
  for (const name of stale) await assert.rejects(readFile(join(layout, name)), `${name} is removed`);
  await readFile(join(layout, live));
  await assert.rejects(readdir(beside), 'a staging directory a killed convert left beside the layout is removed');
});

test('SIGTERM during a convert to a new layout removes everything it wrote', async (t) => {
  const box = join(root, 'sigterm');
  await mkdir(box);
  const before = await snapshotTree(box);
  const child = startOcikit(['convert', bigLayout, `oci:${join(box, 'a', 'new')}`]);
  const result = finish(child, ['convert']);
  // The first sign of writing is the parent directory made for the new layout.
  const watcher = watch(box, () => {
    watcher.close();
    setTimeout(() => child.kill('SIGTERM'), 5);
  });
  const r = await result;
  watcher.close();
  if (r.code === 0) {
    t.skip('the convert finished before the signal arrived');
    return;
  }
  assert.equal(r.code, 143, describeRun(r));
  await assertTreeUnchanged(box, before, 'after SIGTERM');
});

// ---------------------------------------------------------------------------
// Full disk, read-only and forbidden directories
// ---------------------------------------------------------------------------

// The promised line names the file (never a temp file's name): `no space left on device: PATH`.
const NO_SPACE = /no space left on device: \/(?!.*\.ocikit-tmp-)/;
const READ_ONLY = /read-only file system: \/(?!.*\.ocikit-tmp-)/;
const NO_PERMISSION = /permission denied: \/(?!.*\.ocikit-tmp-)/;

/**
 * Runs `fn` on a fresh tmpfs of `size` mounted at root/`name`, unmounted afterwards; skips the test
 * where mounting is not permitted.
 */
async function onTmpfs(t: TestContext, name: string, size: string, fn: (mnt: string) => Promise<void>): Promise<void> {
  const mnt = join(root, name);
  await mkdir(mnt);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt], { stdio: 'ignore' });
  } catch {
    t.skip('mount -t tmpfs is not permitted here (needs root or CAP_SYS_ADMIN)');
    return;
  }
  try {
    await fn(mnt);
  } finally {
    try {
      execFileSync('umount', [mnt], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
}

/** Fills the file system holding `dir` up to its last few KiB. */
async function fillUp(file: string): Promise<void> {
  const { open } = await import('node:fs/promises');
  const fh = await open(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (let size = chunk.length; size >= 512; ) {
      try {
        await fh.write(chunk.subarray(0, size));
      } catch {
        size = Math.floor(size / 2);
      }
    }
  } finally {
    await fh.close();
  }
}

test('ENOSPC: a full disk fails the write with one line and exit 2, and the layout is unchanged', (t) =>
  onTmpfs(t, 'full', '12m', async (mnt) => {
    const layout = join(mnt, 'layout');
    await cp(layoutFixture('app'), layout, { recursive: true });
    const filler = join(mnt, 'filler');
    const isFiller = (rel: string) => rel === 'filler';

    // Copying ~6 MiB of layers into a layout that has room for half of them.
    await writeFile(filler, Buffer.alloc(9 * 1024 * 1024));
    let before = await snapshotTree(mnt, { ignore: isFiller });
    const merge = await runOcikit(['convert', bigLayout, `oci:${layout}`]);
    assertCleanError(merge, [2], NO_SPACE);
    await assertTreeUnchanged(mnt, before, 'convert into a full layout', { ignore: isFiller });

    for (const dest of [`oci:${join(mnt, 'new-layout')}`, `oci-archive:${join(mnt, 'out.tar')}`, `docker-archive:${join(mnt, 'out.docker.tar')}`]) {
      const r = await runOcikit(['convert', bigLayout, dest]);
      assertCleanError(r, [2], NO_SPACE);
      await assertTreeUnchanged(mnt, before, `convert to ${dest} on a full disk`, { ignore: isFiller });
    }

    // Not a byte left: even index.json (or the lock) cannot be written.
    await fillUp(filler);
    before = await snapshotTree(mnt, { ignore: isFiller });
    for (const args of [['tag', `${layout}:latest`, 'v2'], ['untag', `${layout}:latest`]]) {
      const r = await runOcikit(args);
      assertCleanError(r, [2], NO_SPACE);
      await assertTreeUnchanged(mnt, before, `${args[0]} on a full disk`, { ignore: isFiller });
    }

    await rm(filler);
    const after = await runOcikit(['tag', `${layout}:latest`, 'v2']);
    assert.equal(after.code, 0, `with space again the layout is writable (no stale lock): ${describeRun(after)}`);
  }));

test('ENOSPC: gc runs on a full disk (the lock needs no room) and frees space', (t) =>
  onTmpfs(t, 'full-gc', '4m', async (mnt) => {
    const layout = join(mnt, 'layout');
    await cp(layoutFixture('app'), layout, { recursive: true });
    const garbage = join(layout, 'blobs', 'sha256', createHash('sha256').update(pseudoRandomBytes(256 * 1024, 3)).digest('hex'));
    await writeFile(garbage, pseudoRandomBytes(256 * 1024, 3));
    await fillUp(join(mnt, 'filler'));
    const r = await runOcikit(['gc', layout]);
    assert.equal(r.code, 0, describeRun(r));
    await assert.rejects(readFile(garbage), 'the unreachable blob is deleted');
    assert.deepEqual((await readdir(layout)).filter((name) => name.startsWith('.ocikit')), [], 'no lock or temp file is left');
    assert.deepEqual((await checkLayout(layout)).problems, []);
  }));

test('EROFS: a read-only layout refuses writes with one line and exit 2', (t) =>
  onTmpfs(t, 'readonly', '4m', async (mnt) => {
    await cp(layoutFixture('app'), join(mnt, 'layout'), { recursive: true });
    execFileSync('mount', ['-o', 'remount,ro', mnt]);
    const before = await snapshotTree(mnt);
    for (const args of [['tag', `${join(mnt, 'layout')}:latest`, 'v2'], ['convert', bigLayout, `oci:${join(mnt, 'layout')}`], ['convert', bigLayout, `oci:${join(mnt, 'new')}`]]) {
      const r = await runOcikit(args);
      assertCleanError(r, [2], READ_ONLY);
      await assertTreeUnchanged(mnt, before, `${args[0]} on a read-only file system`);
    }
  }));

test('EACCES: a directory the user may not write fails with one line and exit 2 and is unchanged', async () => {
  // Root ignores file modes, so the commands run as an unprivileged user.
  const nobody = 65534;
  const box = join(root, 'eacces');
  await mkdir(box);
  await cp(layoutFixture('app'), join(box, 'layout'), { recursive: true });
  await chmod(root, 0o755);
  await chmod(box, 0o555);
  await chmod(join(box, 'layout'), 0o555);
  const readable = join(root, 'eacces-src');
  await cp(bigLayout, readable, { recursive: true });
  await chown(readable, nobody, nobody);
  try {
    const before = await snapshotTree(box);
    const asNobody = { uid: nobody, gid: nobody };
    for (const args of [['tag', `${join(box, 'layout')}:latest`, 'v2'], ['convert', readable, `oci:${join(box, 'new')}`], ['convert', readable, `oci-archive:${join(box, 'out.tar')}`]]) {
      const r = await runOcikit(args, asNobody);
      assertCleanError(r, [2], NO_PERMISSION);
      await assertTreeUnchanged(box, before, `${args[0]} without write permission`);
    }
    // A blobs directory that is not writable while the layout root is: the blob write fails, index.json stays.
    await chmod(join(box, 'layout'), 0o777);
    await chmod(join(box, 'layout', 'blobs', 'sha256'), 0o555);
    const partial = await snapshotTree(box);
    const r = await runOcikit(['convert', readable, `oci:${join(box, 'layout')}`], asNobody);
    assertCleanError(r, [2], NO_PERMISSION);
    await assertTreeUnchanged(box, partial, 'convert into a layout whose blobs/sha256 is read-only');
  } finally {
    await chmod(box, 0o755);
  }
});
