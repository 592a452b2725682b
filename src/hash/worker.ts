/**
 * A hashing thread (pool.ts starts it from its own build entry): runs the jobs each message carries, in
 * order, and answers with their results.
 */
import { parentPort } from 'node:worker_threads';
import { HASH_BUFFER } from './hash-blob.js';
import { counterOf, jobDeps, runJob, type BlobJob, type JobResult } from './jobs.js';

export interface WorkerRequest {
  jobs: BlobJob[];
  /** A shared counter of bytes read, for the caller's progress. */
  progress?: SharedArrayBuffer;
}

const buffer = Buffer.allocUnsafe(HASH_BUFFER);
const port = parentPort;

port?.on('message', async ({ jobs, progress }: WorkerRequest) => {
  const deps = await jobDeps(progress ? counterOf(progress) : () => undefined, jobs.some((job) => job.kind === 'deep'));
  const results: JobResult[] = [];
  for (const job of jobs) results.push(await runJob(job, deps, buffer));
  port.postMessage(results);
});
