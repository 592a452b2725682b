/**
 * The byte-crunching jobs of the hashing threads: hash a blob, or (verify --deep) decompress a layer
 * and hash both streams while checking its tar, reading the file once. A job runs the same on the main
 * thread and in a worker (worker.ts); it is plain data, so it crosses to a worker as a message.
 */
import { spawn } from 'node:child_process';
import * as zlib from 'node:zlib';
import type { TarReport } from '../ops/verify/layer-check.js';
import { hasNativeZstd, type Compression, type DecoderDeps, type ZstdModule } from './decoders.js';
import { deepCheckBlob } from './deep-check.js';
import { HASH_BUFFER, hashBlob } from './hash-blob.js';

/** Where a blob's bytes are: a whole file (layout dir), or a byte range of one (tarball). */
export interface ReadSource {
  file: string;
  offset: number;
  /** Exact byte count for a tar entry; null reads to the end of the file. */
  length: number | null;
  /** Refuse a symlink and anything but a regular file (blobs in a layout dir). */
  noFollow: boolean;
}

/**
 * A file the caller has open, read from its start to its end. A descriptor is the process's, so a
 * worker reads the very file the caller opened (and checked).
 */
export interface OpenFile {
  fd: number;
}

export interface HashJob {
  kind: 'hash';
  source: ReadSource | OpenFile;
  algorithm: string;
}

export interface DeepJob {
  kind: 'deep';
  source: ReadSource;
  algorithm: string;
  maxLayerBytes: number;
  /** Parse the uncompressed stream as a tar (layer media types); other blobs are only hashed. */
  checkTar: boolean;
  /** The compression the media type declares (the content's magic bytes decide; this only schedules). */
  hint?: Compression;
}

export type BlobJob = HashJob | DeepJob;

export interface DeepOutcome {
  compression: Compression;
  /** sha256 of the uncompressed stream; absent when it could not be read to the end. */
  diffId?: string;
  uncompressedBytes: number;
  decompressError?: string;
  tooLarge?: boolean;
  tar?: TarReport;
}

export interface JobResult {
  /** `<algorithm>:<hex>` of the bytes read; absent when the blob could not be read. */
  digest?: string;
  bytes: number;
  error?: string;
  deep?: DeepOutcome;
}

export interface JobDeps extends DecoderDeps {
  /** Counts bytes read, as they are read (progress shared by every thread). */
  progress(bytes: number): void;
}

/** Runs one job; never throws: a failure becomes `error` in the result. A lane passes its own hashing buffer. */
export async function runJob(job: BlobJob, deps: JobDeps, buffer = Buffer.allocUnsafe(HASH_BUFFER)): Promise<JobResult> {
  try {
    return job.kind === 'hash' ? await hashBlob(job, deps.progress, buffer) : await deepCheckBlob(job, deps);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    const text = e.code === 'ELOOP' ? 'is a symlink; refusing to follow it' : e.code === 'ENOENT' ? 'vanished while verifying' : (e.message ?? String(err));
    return { bytes: 0, error: text };
  }
}

let fzstd: Promise<ZstdModule> | undefined;

/**
 * A thread's deps for its jobs. fzstd is loaded only for --deep jobs on a runtime without zstd in zlib.
 * Only the main thread is given the `zstd` program: the program does the decoding, so a worker would
 * add nothing but a heap.
 */
export async function jobDeps(progress: (bytes: number) => void, deep: boolean, zstdProgram?: string): Promise<JobDeps> {
  const deps: JobDeps = { zlib, progress };
  if (deep && !hasNativeZstd()) deps.zstd = await (fzstd ??= import('fzstd').then((m) => m as unknown as ZstdModule));
  if (deep && zstdProgram !== undefined) deps.zstdProgram = { path: zstdProgram, spawn };
  return deps;
}

/** Progress counted into a shared 64-bit cell, which every thread adds to. */
export function counterOf(cell: SharedArrayBuffer): (bytes: number) => void {
  const counter = new BigInt64Array(cell);
  return (bytes) => Atomics.add(counter, 0, BigInt(bytes));
}
