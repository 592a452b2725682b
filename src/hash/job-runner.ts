import * as crypto from 'node:crypto';
import { hasNativeZstd } from './decoders.js';
import { HASH_BUFFER } from './hash-blob.js';
import { counterOf, jobDeps, runJob, type BlobJob, type JobDeps, type JobResult } from './jobs.js';
import { hashPool, type HashPool } from './pool.js';

/** Small blobs travel to a worker in batches so message passing does not dominate. */
const BATCH_BYTES = 8 * 1024 * 1024;
const BATCH_JOBS = 256;

export interface RunnerOptions {
  /** Threads hashing at once, the main thread included. */
  jobs: number;
  /** Below this many bytes of thread-bound work no worker is used (starting one would cost more than it saves). */
  minWorkerBytes?: number;
  /** Leave all thread-bound jobs to workers (tests use it to prove the worker program runs). */
  workersOnly?: boolean;
  /** A `zstd` program for zstd layers where the runtime's zlib has none; fzstd otherwise. */
  zstdProgram?: string;
}

export interface RunnerJob {
  job: BlobJob;
  size: number;
  /** A hash job's content, already in memory: hashed at once on the main thread, never sent to a worker. */
  data?: Buffer;
}

/**
 * Runs a list of blob jobs across the cores, on the main thread and the process's hashing threads.
 * Three kinds of work:
 * - gzip layers (--deep): inflation runs on libuv's thread pool whichever thread drives it, so the
 *   main thread drives `jobs + 1` of them at once. One JS heap then holds all the short-lived output
 *   buffers, which keeps peak memory low (each heap lets tens of MiB of them wait for a GC).
 * - zstd layers decoded by fzstd (pure JS): one at a time on the main thread (see laneOf).
 * - everything else (hashing, uncompressed layers) is CPU on the calling thread: the main thread and
 *   `jobs - 1` workers each take the next batch, largest first.
 */
export class JobRunner {
  private readonly cell = new SharedArrayBuffer(8);
  private readonly counter = new BigInt64Array(this.cell);
  private lanes = 0;

  constructor(
    private readonly options: RunnerOptions,
    private readonly threads: HashPool = hashPool(),
  ) {}

  /** Bytes read so far by every lane. */
  progress(): number {
    return Number(Atomics.load(this.counter, 0));
  }

  /** Worker lanes of the last run. */
  get workers(): number {
    return this.lanes;
  }

  async run(jobs: RunnerJob[]): Promise<JobResult[]> {
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
    this.lanes = this.workerCount(threadBound.reduce((sum, i) => sum + jobs[i]!.size, 0), batches.length);
    const deps = jobDeps(counterOf(this.cell), jobs.some((j) => j.job.kind === 'deep'), this.options.zstdProgram);
    const lanes: Array<Promise<void>> = [];
    // One stream more than cores: while one waits for the main thread, the others keep the pool busy (measured best).
    for (let k = 0; k <= this.options.jobs; k++) lanes.push(this.mainLane(jobs, results, deps, takePooled));
    lanes.push(this.mainLane(jobs, results, deps, () => serial.shift()));
    if (!(this.options.workersOnly && this.lanes)) lanes.push(this.mainLane(jobs, results, deps, take));
    for (let k = 0; k < this.lanes; k++) lanes.push(this.workerLane(jobs, results, deps, take));
    await Promise.all(lanes);
    if (batches.length) await this.mainLane(jobs, results, deps, take); // no worker could run
    return results;
  }

  /** Starts the workers ahead of `run` (given the sizes of the blobs it will hash), so their start-up overlaps the document checks. */
  prestart(sizes: number[]): void {
    const order = sizes.map((_, i) => i).sort((a, b) => sizes[b]! - sizes[a]!);
    this.threads.prestart(this.workerCount(sizes.reduce((sum, n) => sum + n, 0), batch(order, (i) => sizes[i]!).length));
  }

  /** Lets the idle hashing threads go, so a long-lived caller gets their memory back when the run is done. */
  async close(): Promise<void> {
    await this.threads.trim();
  }

  /** A worker costs about 9 MiB: never more than there are batches for (the main thread takes one too). */
  private workerCount(bytes: number, batches: number): number {
    const { jobs, workersOnly, minWorkerBytes = 0 } = this.options;
    if (bytes < minWorkerBytes) return 0;
    return Math.max(0, workersOnly ? Math.min(jobs, batches) : Math.min(jobs - 1, batches - 1));
  }

  private async mainLane(jobs: RunnerJob[], results: JobResult[], deps: Promise<JobDeps>, take: () => number[] | undefined): Promise<void> {
    let b = take();
    if (!b) return;
    const ready = await deps;
    const buffer = Buffer.allocUnsafe(HASH_BUFFER);
    for (; b; b = take()) {
      for (const i of b) results[i] = await runJob(jobs[i]!.job, ready, buffer);
      // A batch of small blobs never leaves the microtask queue: without this, a worker's answer waits
      // (and the worker idles) until the main thread has hashed every other batch itself.
      if (this.lanes) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private async workerLane(jobs: RunnerJob[], results: JobResult[], deps: Promise<JobDeps>, take: () => number[] | undefined): Promise<void> {
    for (let b = take(); b; b = take()) {
      const indexes = b;
      const out = await this.threads.run(indexes.map((i) => jobs[i]!.job), this.lanes, this.cell)?.catch(() => undefined);
      if (!out) {
        // No worker to be had, or it died: the main thread takes this batch, and this lane no more.
        await this.mainLane(jobs, results, deps, () => (indexes.length ? indexes.splice(0) : undefined));
        return;
      }
      indexes.forEach((i, k) => (results[i] = out[k]!));
    }
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
