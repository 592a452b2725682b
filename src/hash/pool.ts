import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { BlobJob, JobResult } from './jobs.js';
import type { WorkerRequest } from './worker.js';

/**
 * The process's hashing threads: workers running blob jobs (jobs.ts), started when a caller needs one
 * or ahead of time, and shared by every caller so concurrent work shares the cores rather than each
 * taking all of them. An idle worker does not keep the process alive. One that fails or exits while
 * idle is dropped quietly; one that fails or exits while it has a request rejects that request.
 */
export class HashPool {
  private readonly idle: Worker[] = [];
  private alive = 0;
  private available: boolean;

  constructor(private readonly file: URL | undefined = workerFile()) {
    this.available = file !== undefined;
  }

  /** Workers alive, idle or busy. */
  get size(): number {
    return this.alive;
  }

  /** Starts workers until `count` are alive, so their start-up overlaps the caller's other work. */
  prestart(count: number): void {
    while (this.alive < count) {
      const worker = this.start();
      if (!worker) return;
      this.idle.push(worker);
    }
  }

  /**
   * Runs jobs on an idle worker, or on a new one while fewer than `limit` are alive. Undefined when
   * there is neither: the caller runs them itself.
   */
  run(jobs: BlobJob[], limit: number, progress?: SharedArrayBuffer): Promise<JobResult[]> | undefined {
    const worker = this.idle.pop() ?? (this.alive < limit ? this.start() : undefined);
    if (!worker) return undefined;
    return new Promise((resolve, reject) => {
      const settle = (outcome: { results: JobResult[] } | { error: unknown }) => {
        worker.off('message', onMessage);
        worker.off('error', onFailure);
        worker.off('exit', onFailure);
        worker.unref();
        if ('results' in outcome) {
          this.idle.push(worker);
          resolve(outcome.results);
        } else {
          reject(outcome.error);
        }
      };
      const onMessage = (results: JobResult[]) => settle({ results });
      const onFailure = (err?: unknown) => settle({ error: err instanceof Error ? err : new Error('the hashing thread stopped') });
      worker.on('message', onMessage);
      worker.once('error', onFailure);
      worker.once('exit', onFailure);
      worker.ref();
      const request: WorkerRequest = { jobs, progress };
      worker.postMessage(request);
    });
  }

  /** Ends the idle workers: after --deep work each holds tens of MiB of heap until it exits. */
  async trim(): Promise<void> {
    await Promise.all(this.idle.splice(0).map((worker) => worker.terminate()));
  }

  private start(): Worker | undefined {
    if (!this.available) return undefined;
    try {
      const worker = new Worker(this.file!);
      this.alive++;
      worker.unref();
      worker.on('error', () => undefined); // a busy one's failure reaches its request; an idle one's goes with it
      worker.once('exit', () => {
        this.alive--;
        const at = this.idle.indexOf(worker);
        if (at !== -1) this.idle.splice(at, 1);
      });
      return worker;
    } catch {
      this.available = false; // threads unavailable: the callers' own threads do it all
      return undefined;
    }
  }
}

/**
 * The worker's program: the build's own entry beside the running bundle (dist/hash-worker.cjs, for the
 * CLI and the library alike), or, when this module runs from its TypeScript source, that source.
 * Without either, callers hash on their own threads.
 */
function workerFile(): URL | undefined {
  const here = import.meta.url;
  const file = new URL(here.endsWith('.ts') ? './worker-from-source.mjs' : './hash-worker.cjs', here);
  return existsSync(file) ? file : undefined;
}

let shared: HashPool | undefined;

/** The one pool of the process. */
export function hashPool(): HashPool {
  return (shared ??= new HashPool());
}
