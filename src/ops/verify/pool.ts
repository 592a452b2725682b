import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import {
  createDecoder, deepCheckBlob, describe, fzstdDecoder, hashBlob, programDecoder, openReader, runJob, sniffCompression, streamDecoder,
  type BlobJob, type JobDeps, type JobResult,
} from './blob-jobs.js';
import { createTarChecker } from './layer-check.js';

/** The hashing buffer: big enough that syscalls are few, small enough to stay in cache between read and hash. */
const HASH_BUFFER = 512 * 1024;
/** Small blobs travel to a worker in batches so message passing does not dominate. */
const BATCH_BYTES = 8 * 1024 * 1024;
const BATCH_JOBS = 256;

export interface PoolOptions {
  /** Threads hashing at once, the main thread included. */
  jobs: number;
  /** Below this many bytes of thread-bound work no worker is started (it would cost more than it saves). */
  minWorkerBytes?: number;
  /** Leave all thread-bound jobs to workers (tests use it to prove the worker program runs). */
  workersOnly?: boolean;
  /** A `zstd` program for zstd layers where the runtime's zlib has none; fzstd otherwise. */
  zstdProgram?: string;
}

export interface PoolJob {
  job: BlobJob;
  size: number;
  /** A hash job's content, already in memory: hashed at once on the main thread, never sent to a worker. */
  data?: Buffer;
}

/**
 * Runs blob jobs across the cores. Two kinds of work:
 * - gzip layers (--deep): inflation runs on libuv's thread pool whichever thread drives it, so the
 *   main thread drives `jobs + 1` of them at once. One JS heap then holds all the short-lived output
 *   buffers, which keeps peak memory low (each heap lets tens of MiB of them wait for a GC).
 * - zstd layers decoded by fzstd (pure JS): one at a time on the main thread (see laneOf).
 * - everything else (hashing, uncompressed layers) is CPU on the calling thread: the main thread and
 *   `jobs - 1` worker threads each take the next batch, largest first.
 */
export class BlobPool {
  private readonly counter = new BigInt64Array(new SharedArrayBuffer(8));
  private readonly workers: Worker[] = [];

  constructor(private readonly options: PoolOptions) {}

  /** Bytes read so far by every lane. */
  progress(): number {
    return Number(Atomics.load(this.counter, 0));
  }

  async run(jobs: PoolJob[]): Promise<JobResult[]> {
    const results: JobResult[] = new Array(jobs.length);
    const inMemory = (i: number) => jobs[i]!.data !== undefined && jobs[i]!.job.kind === 'hash';
    for (let i = 0; i < jobs.length; i++) {
      if (inMemory(i)) results[i] = hashBuffer(jobs[i]!.data!, jobs[i]!.job.algorithm, this.counter);
    }
    const largestFirst = jobs.map((_, i) => i).filter((i) => !inMemory(i)).sort((a, b) => jobs[b]!.size - jobs[a]!.size);
    const lane = (i: number) => laneOf(jobs[i]!.job, this.options.zstdProgram !== undefined);
    const pooled = largestFirst.filter((i) => lane(i) === 'pooled').map((i) => [i]);
    const serial = largestFirst.filter((i) => lane(i) === 'serial').map((i) => [i]);
    const threadBound = largestFirst.filter((i) => lane(i) === 'any');
    const batches = batch(threadBound, (i) => jobs[i]!.size);
    const take = () => batches.shift();
    const takePooled = () => pooled.shift();
    const workers = this.workers.length ? this.workers : this.startWorkers(threadBound.reduce((sum, i) => sum + jobs[i]!.size, 0), batches.length);
    const lanes: Array<Promise<void>> = [];
    // One stream more than cores: while one waits for the main thread, the others keep the pool busy (measured best).
    for (let k = 0; k <= this.options.jobs; k++) lanes.push(this.mainLane(jobs, results, takePooled));
    lanes.push(this.mainLane(jobs, results, () => serial.shift()));
    if (!(this.options.workersOnly && workers.length)) lanes.push(this.mainLane(jobs, results, take));
    for (const worker of workers) lanes.push(this.workerLane(worker, jobs, results, take));
    await Promise.all(lanes);
    if (batches.length) await this.mainLane(jobs, results, take); // no worker could run
    return results;
  }

  /** Starts the workers ahead of `run` (given the sizes of the blobs it will hash), so their start-up overlaps the document checks. */
  prestart(sizes: number[]): void {
    const order = sizes.map((_, i) => i).sort((a, b) => sizes[b]! - sizes[a]!);
    if (!this.workers.length) this.startWorkers(sizes.reduce((sum, n) => sum + n, 0), batch(order, (i) => sizes[i]!).length);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private async mainLane(jobs: PoolJob[], results: JobResult[], take: () => number[] | undefined): Promise<void> {
    let b = take();
    if (!b) return;
    const deps = await mainDeps(this.counter, jobs.some((j) => j.job.kind === 'deep'), this.options.zstdProgram);
    const buffers = [Buffer.allocUnsafe(HASH_BUFFER)];
    for (; b; b = take()) {
      for (const i of b) results[i] = await runJob(jobs[i]!.job, deps, buffers);
      // A batch of small blobs never leaves the microtask queue: without this, a worker's answer waits
      // (and the worker idles) until the main thread has hashed every other batch itself.
      if (this.workers.length) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private async workerLane(worker: Worker, jobs: PoolJob[], results: JobResult[], take: () => number[] | undefined): Promise<void> {
    for (let b = take(); b; b = take()) {
      const indexes = b;
      const out = await ask(worker, indexes.map((i) => jobs[i]!.job)).catch(() => undefined);
      if (!out) {
        // A worker that died hands its batch back to the main thread and takes no more.
        await this.mainLane(jobs, results, () => (indexes.length ? indexes.splice(0) : undefined));
        return;
      }
      indexes.forEach((i, k) => (results[i] = out[k]!));
    }
  }

  /** A worker costs about 9 MiB: never more than there are batches for (the main thread takes one too). */
  private startWorkers(bytes: number, batches: number): Worker[] {
    const wanted = Math.min(this.options.workersOnly ? this.options.jobs : this.options.jobs - 1, this.options.workersOnly ? batches : batches - 1);
    if (bytes < (this.options.minWorkerBytes ?? 0) || wanted <= 0) return [];
    const started: Worker[] = [];
    for (let i = 0; i < wanted; i++) {
      try {
        const worker = new Worker(workerSource(), { eval: true, workerData: { progress: this.counter.buffer, fzstd: fzstdPath() } });
        worker.on('error', () => undefined); // reported to the lane waiting on it
        started.push(worker);
      } catch {
        break; // threads unavailable: the main thread does the work
      }
    }
    this.workers.push(...started);
    return started;
  }
}

/**
 * Where a job runs. gzip (and native zstd) layers: on the main thread, inflated on libuv's pool; zstd
 * layers piped through a zstd program likewise, the program doing the work.
 * zstd layers decoded by fzstd: one at a time on the main thread, because fzstd leaves tens of MiB of
 * dead arrays per thread between GCs and two heaps doing it at once pass the 150 MiB budget (measured
 * 144-166 MiB on a 5 GiB layout, 102 MiB with one). Everything else: any thread.
 */
function laneOf(job: BlobJob, zstdProgram: boolean): 'pooled' | 'serial' | 'any' {
  if (job.kind !== 'deep') return 'any';
  if (job.hint === 'gzip' || (job.hint === 'zstd' && (hasNativeZstd() || zstdProgram))) return 'pooled';
  return job.hint === 'zstd' ? 'serial' : 'any';
}

/** What hashBlob would make of a file holding these bytes. */
function hashBuffer(data: Buffer, algorithm: string, counter: BigInt64Array): JobResult {
  const hex = crypto.createHash(algorithm).update(data).digest('hex');
  Atomics.add(counter, 0, BigInt(data.length));
  return { digest: `${algorithm}:${hex}`, bytes: data.length };
}

function ask(worker: Worker, jobs: BlobJob[]): Promise<JobResult[]> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      worker.off('message', onMessage);
      reject(err);
    };
    const onMessage = (msg: JobResult[]) => {
      worker.off('error', onError);
      resolve(msg);
    };
    worker.once('error', onError);
    worker.once('message', onMessage);
    worker.postMessage(jobs);
  });
}

function batch(order: number[], sizeOf: (i: number) => number): number[][] {
  const out: number[][] = [];
  let current: number[] = [];
  let bytes = 0;
  for (const i of order) {
    const size = sizeOf(i);
    if (size >= BATCH_BYTES) {
      out.push([i]);
      continue;
    }
    if (current.length >= BATCH_JOBS || bytes + size > BATCH_BYTES) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(i);
    bytes += size;
  }
  if (current.length) out.push(current);
  return out;
}

let zstdModule: Promise<JobDeps['zstd']> | undefined;
const hasNativeZstd = () => typeof (zlib as { createZstdDecompress?: unknown }).createZstdDecompress === 'function';

async function mainDeps(counter: BigInt64Array, deep: boolean, zstdProgram: string | undefined): Promise<JobDeps> {
  const progress = (n: number) => Atomics.add(counter, 0, BigInt(n));
  const zstd = deep ? await (zstdModule ??= import('fzstd').then((m) => m as unknown as JobDeps['zstd'])) : undefined;
  const deps: JobDeps = { fs, crypto, zlib, zstd, progress };
  if (deep && zstdProgram !== undefined) deps.zstdProgram = { path: zstdProgram, spawn };
  return deps;
}

/** The `zstd` program on PATH, as containerd looks for unpigz: an accelerator, never a requirement. */
export function findZstdProgram(): string | undefined {
  if (hasNativeZstd()) return undefined;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir.startsWith('/')) continue; // a relative PATH entry would run whatever the layout's cwd holds
    const candidate = `${dir}/zstd`;
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function fzstdPath(): string | undefined {
  try {
    return createRequire(import.meta.url).resolve('fzstd');
  } catch {
    return undefined;
  }
}

/** Runs in the worker: deps come from require, jobs from messages, results go back in order. */
export function workerLoop(req: NodeJS.Require): void {
  const { parentPort, workerData } = req('node:worker_threads') as typeof import('node:worker_threads');
  const counter = new BigInt64Array(workerData.progress as SharedArrayBuffer);
  const deps: JobDeps = {
    fs: req('node:fs'),
    crypto: req('node:crypto'),
    zlib: req('node:zlib'),
    zstd: workerData.fzstd ? req(workerData.fzstd as string) : undefined,
    progress: (n: number) => Atomics.add(counter, 0, BigInt(n)),
  };
  const buffers = [Buffer.allocUnsafe(512 * 1024)];
  parentPort!.on('message', async (jobs: BlobJob[]) => {
    const results: JobResult[] = [];
    for (const job of jobs) results.push(await runJob(job, deps, buffers));
    parentPort!.postMessage(results);
  });
}

let source: string | undefined;

/**
 * The worker's program, made from the functions' own source so the bundle needs no second entry file.
 * `__name` is what esbuild's keepNames (used by tsx) wraps functions in.
 */
function workerSource(): string {
  const functions = [
    createTarChecker, runJob, openReader, hashBlob, sniffCompression, deepCheckBlob, describe, createDecoder,
    streamDecoder, programDecoder, fzstdDecoder, workerLoop,
  ];
  source ??= `'use strict';\nvar __name = (f) => f;\n${functions.map((f) => f.toString()).join('\n')}\n${workerLoop.name}(require);\n`;
  return source;
}
