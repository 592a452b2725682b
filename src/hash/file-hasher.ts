import { availableParallelism } from 'node:os';
import { HASH_BUFFER, hashBlob } from './hash-blob.js';
import type { HashJob } from './jobs.js';
import { hashPool, type HashPool } from './pool.js';

/** Below this a worker's start (40-50 ms of a core here) costs more than hashing the file on the main thread. */
const WORKER_MIN_BYTES = 16 * 1024 * 1024;

interface HashRequest {
  job: HashJob;
  size: number;
  resolve: (hex: string) => void;
  reject: (err: unknown) => void;
}

/**
 * Hashes open files on every core: the main thread takes one file at a time and each extra core a
 * hashing thread. Copies hash the bytes that landed after the kernel copied them, so the hashing is the
 * CPU-bound half of a copy and is what has to spread.
 */
export class FileHasher {
  private readonly queue: HashRequest[] = [];
  private readonly buffer = Buffer.allocUnsafe(HASH_BUFFER);
  private onWorkers = 0;
  private mainBusy = false;

  constructor(
    private readonly maxWorkers = Math.max(0, availableParallelism() - 1),
    private readonly threads: HashPool = hashPool(),
  ) {}

  /** Boots the workers ahead of the first big file, so their start overlaps the caller's other work. */
  prestart(size = WORKER_MIN_BYTES): void {
    if (size >= WORKER_MIN_BYTES) this.threads.prestart(this.maxWorkers);
  }

  /** The hex digest of the file's bytes from offset 0 to its end. */
  hash(fd: number, algorithm: string, size: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { kind: 'hash', source: { fd }, algorithm }, size, resolve, reject });
      this.queue.sort((a, b) => b.size - a.size);
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length) {
      if (!this.mainBusy) {
        // The smallest waiting file: the main thread also serves the event loop.
        this.runOnMain(this.queue.pop()!);
        continue;
      }
      if (this.onWorkers >= this.maxWorkers) return;
      // An idle worker takes any file; a new one is started only for a big one.
      const request = this.queue[0]!;
      const running = this.threads.run([request.job], request.size >= WORKER_MIN_BYTES ? this.maxWorkers : 0);
      if (!running) return;
      this.queue.shift();
      this.onWorkers++;
      running
        .then(([result]) => {
          if (result?.digest !== undefined) request.resolve(result.digest.slice(result.digest.indexOf(':') + 1));
          else request.reject(Object.assign(new Error(result?.error ?? 'the hashing thread gave no answer'), { syscall: 'read' }));
        }, request.reject)
        .finally(() => {
          this.onWorkers--;
          this.dispatch();
        });
    }
  }

  private runOnMain(request: HashRequest): void {
    this.mainBusy = true;
    hashBlob(request.job, () => undefined, this.buffer)
      .then((result) => request.resolve(result.digest!.slice(result.digest!.indexOf(':') + 1)), request.reject)
      .finally(() => {
        this.mainBusy = false;
        this.dispatch();
      });
  }
}

let shared: FileHasher | undefined;

/** One hasher per process, so concurrent copies share the cores rather than each taking all of them. */
export function fileHasher(): FileHasher {
  return (shared ??= new FileHasher());
}
