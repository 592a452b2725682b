/** The hashing threads: how a worker that fails or exits is handled, by the pool and by both of its users. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FileHasher } from '../src/hash/file-hasher.js';
import { JobRunner } from '../src/hash/job-runner.js';
import { HashPool } from '../src/hash/pool.js';
import { countingPool, workerProgram } from './helpers/hash-threads.js';
import { pseudoRandomBytes, scratchDir } from './helpers/scratch.js';

const MIB = 1024 * 1024;
const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > 5000) assert.fail(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

test('a worker that exits mid-file rejects that file\'s hash; the main thread goes on hashing', async (t) => {
  const { dir, cleanup } = await scratchDir('hash-exit');
  t.after(cleanup);
  const pool = new HashPool(await workerProgram(dir, `parentPort.on('message', () => process.exit(3));`));
  const hasher = new FileHasher(1, pool);
  await writeFile(join(dir, 'f'), 'abc');
  const fh = await open(join(dir, 'f'), 'r');
  t.after(() => fh.close());
  // Declared big, so the second goes to a worker while the main thread hashes the first.
  const [onMain, onWorker] = await Promise.allSettled([hasher.hash(fh.fd, 'sha256', 64 * MIB), hasher.hash(fh.fd, 'sha256', 64 * MIB)]);
  assert.deepEqual(onMain, { status: 'fulfilled', value: sha256('abc') });
  assert.equal(onWorker.status, 'rejected');
  assert.match(String((onWorker as PromiseRejectedResult).reason), /the hashing thread stopped/);
  await until(() => pool.size === 0, 'the exited worker is dropped');
  assert.equal(await hasher.hash(fh.fd, 'sha256', 3), sha256('abc'));
});

test('a worker that fails while idle is dropped quietly, and a new one takes the next request', async (t) => {
  const { dir, cleanup } = await scratchDir('hash-idle');
  t.after(cleanup);
  // Answers, then throws once idle: an unhandled 'error' would fail this test file.
  const program = await workerProgram(dir, `parentPort.on('message', ({ jobs }) => {
    parentPort.postMessage(jobs.map(() => ({ bytes: 0, digest: 'sha256:answered' })));
    setTimeout(() => { throw new Error('failed while idle'); }, 20);
  });`);
  const pool = new HashPool(program);
  const job = { kind: 'hash' as const, source: { fd: 0 }, algorithm: 'sha256' };
  assert.deepEqual(await pool.run([job], 1), [{ bytes: 0, digest: 'sha256:answered' }]);
  assert.equal(pool.size, 1);
  await until(() => pool.size === 0, 'the failed worker is dropped');
  assert.equal(pool.run([job], 0), undefined, 'no idle worker left, and none may be started');
  assert.deepEqual(await pool.run([job], 1), [{ bytes: 0, digest: 'sha256:answered' }]);
});

test('verify\'s runner: a batch whose worker exits is hashed on the main thread instead', async (t) => {
  const { dir, cleanup } = await scratchDir('hash-runner-exit');
  t.after(cleanup);
  const { threads, answered } = countingPool(await workerProgram(dir, `parentPort.on('message', () => process.exit(3));`));
  const contents = [pseudoRandomBytes(3 * MIB, 1), pseudoRandomBytes(2 * MIB, 2)];
  await Promise.all(contents.map((bytes, i) => writeFile(join(dir, `b${i}`), bytes)));
  const runner = new JobRunner({ jobs: 2, workersOnly: true }, threads);
  const jobs = contents.map((bytes, i) => ({ job: { kind: 'hash' as const, source: { file: join(dir, `b${i}`), offset: 0, length: null, noFollow: true }, algorithm: 'sha256' }, size: bytes.length }));
  const results = await runner.run(jobs);
  assert.equal(runner.workers, 1, 'one batch, for one worker');
  assert.equal(answered(), 0, 'no worker answered');
  assert.deepEqual(results.map((r) => r.digest), contents.map((bytes) => `sha256:${sha256(bytes)}`));
  assert.equal(runner.progress(), 5 * MIB);
});

test('the worker program of the build answers verify\'s runner and the file hasher alike', async (t) => {
  const { dir, cleanup } = await scratchDir('hash-real');
  t.after(cleanup);
  const { threads, answered } = countingPool();
  t.after(() => threads.trim());
  const bytes = pseudoRandomBytes(5 * MIB, 3);
  await writeFile(join(dir, 'b'), bytes);
  const runner = new JobRunner({ jobs: 2, workersOnly: true }, threads);
  const [result] = await runner.run([{ job: { kind: 'hash', source: { file: join(dir, 'b'), offset: 0, length: null, noFollow: true }, algorithm: 'sha512' }, size: bytes.length }]);
  assert.equal(result!.digest, `sha512:${createHash('sha512').update(bytes).digest('hex')}`);
  assert.equal(answered(), 1);
  const fh = await open(join(dir, 'b'), 'r');
  t.after(() => fh.close());
  const hasher = new FileHasher(1, threads);
  const both = await Promise.all([hasher.hash(fh.fd, 'sha256', bytes.length), hasher.hash(fh.fd, 'sha256', bytes.length)]);
  assert.deepEqual(both, [sha256(bytes), sha256(bytes)]);
  assert.equal(answered(), 2, 'the idle worker took the second file');
});
