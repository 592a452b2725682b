import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { read } from 'node:fs';
import { Worker } from 'node:worker_threads';

/** Below this a worker's start (40-50 ms of a core here) costs more than hashing the file on the main thread. */
const WORKER_MIN_BYTES = 16 * 1024 * 1024;
const CHUNK = 1024 * 1024;

interface HashRequest {
  fd: number;
  algorithm: string;
  size: number;
  resolve: (hex: string) => void;
  reject: (err: unknown) => void;
}

/**
 * Hashes open files on every core: the main thread takes one file at a time and each extra core a
 * worker thread. Copies hash the bytes that landed after the kernel copied them, so the hashing is the
 * CPU-bound half of a copy and is what has to spread. A file descriptor is the process's, so a worker
 * reads the very file the caller opened.
 */
export class FileHasher {
  private readonly queue: HashRequest[] = [];
  private readonly idle: Worker[] = [];
  private workers = 0;
  private mainBusy = false;

  constructor(private readonly maxWorkers = Math.max(0, availableParallelism() - 1)) {}

  /** Boots the workers ahead of the first big file, so their start overlaps the caller's other work. */
  prestart(size = WORKER_MIN_BYTES): void {
    while (this.workers < this.maxWorkers) {
      const worker = this.startWorker(size);
      if (!worker) return;
      this.idle.push(worker);
    }
  }

  /** The hex digest of the file's bytes from offset 0 to its end. */
  hash(fd: number, algorithm: string, size: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.queue.push({ fd, algorithm, size, resolve, reject });
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
      const worker = this.idle.pop() ?? this.startWorker(this.queue[0]!.size);
      if (!worker) return;
      this.runOnWorker(worker, this.queue.shift()!);
    }
  }

  private runOnMain(request: HashRequest): void {
    this.mainBusy = true;
    hashOnMain(request.fd, request.algorithm).then(request.resolve, request.reject).finally(() => {
      this.mainBusy = false;
      this.dispatch();
    });
  }

  private runOnWorker(worker: Worker, request: HashRequest): void {
    const settle = (outcome: { hex: string } | { error: unknown }, workerAlive: boolean) => {
      worker.off('message', onMessage);
      worker.off('error', onFailure);
      worker.off('exit', onFailure);
      worker.unref();
      if ('hex' in outcome) request.resolve(outcome.hex);
      else request.reject(outcome.error);
      if (workerAlive) this.idle.push(worker);
      this.dispatch();
    };
    const onMessage = (msg: { hex?: string; error?: string }) =>
      settle(msg.hex !== undefined ? { hex: msg.hex } : { error: Object.assign(new Error(msg.error), { syscall: 'read' }) }, true);
    const onFailure = (err?: unknown) => settle({ error: err instanceof Error ? err : new Error('the hashing thread stopped') }, false);
    worker.on('message', onMessage);
    worker.once('error', onFailure);
    worker.once('exit', onFailure);
    worker.ref();
    worker.postMessage({ fd: request.fd, algorithm: request.algorithm });
  }

  private startWorker(size: number): Worker | undefined {
    if (this.workers >= this.maxWorkers || size < WORKER_MIN_BYTES) return undefined;
    try {
      const worker = new Worker(WORKER_SOURCE, { eval: true });
      this.workers++;
      worker.unref(); // an idle worker must not keep the process alive
      worker.on('error', () => undefined); // a busy one's failure reaches its request; an idle one's goes with it
      worker.once('exit', () => {
        this.workers--;
        const at = this.idle.indexOf(worker);
        if (at !== -1) this.idle.splice(at, 1);
      });
      return worker;
    } catch {
      this.workers = this.maxWorkers; // threads unavailable: the main thread does it all
      return undefined;
    }
  }
}

async function hashOnMain(fd: number, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  const buffer = Buffer.allocUnsafe(CHUNK);
  for (let position = 0; ; ) {
    const n = await new Promise<number>((resolve, reject) =>
      read(fd, buffer, 0, CHUNK, position, (err, bytes) => (err ? reject(err) : resolve(bytes))));
    if (n === 0) return hash.digest('hex');
    hash.update(buffer.subarray(0, n));
    position += n;
  }
}

const WORKER_SOURCE = `'use strict';
const { parentPort } = require('node:worker_threads');
const { readSync } = require('node:fs');
const { createHash } = require('node:crypto');
const buffer = Buffer.allocUnsafe(${CHUNK});
parentPort.on('message', ({ fd, algorithm }) => {
  try {
    const hash = createHash(algorithm);
    for (let position = 0, n; (n = readSync(fd, buffer, 0, buffer.length, position)) > 0; position += n) hash.update(buffer.subarray(0, n));
    parentPort.postMessage({ hex: hash.digest('hex') });
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) });
  }
});
`;

let shared: FileHasher | undefined;

/** One hasher per process, so concurrent copies share the cores rather than each taking all of them. */
export function fileHasher(): FileHasher {
  return (shared ??= new FileHasher());
}
