/**
 * The byte-crunching half of verify: hash a blob, or (--deep) decompress a layer and hash both streams
 * while checking its tar, reading the file once. These functions run in worker threads from their
 * source text (pool.ts), and on the main thread as they are: each must reference only its parameters,
 * globals, and the other functions listed in JOB_FUNCTIONS.
 */
import type * as ChildProcess from 'node:child_process';
import type * as Crypto from 'node:crypto';
import type * as Fs from 'node:fs';
import type * as Zlib from 'node:zlib';
import { createTarChecker, type TarReport } from './layer-check.js';

/** Where a blob's bytes are: a whole file (layout dir), or a byte range of one (tarball). */
export interface ReadSource {
  file: string;
  offset: number;
  /** Exact byte count for a tar entry; null reads to the end of the file. */
  length: number | null;
  /** Refuse a symlink and anything but a regular file (blobs in a layout dir). */
  noFollow: boolean;
}

export interface HashJob {
  kind: 'hash';
  source: ReadSource;
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

export type Compression = 'gzip' | 'zstd' | 'none';

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

interface ZstdModule {
  Decompress: new (ondata: (chunk: Uint8Array, final?: boolean) => unknown) => { push(chunk: Uint8Array, final?: boolean): unknown };
}

export interface JobDeps {
  fs: typeof Fs;
  crypto: typeof Crypto;
  zlib: typeof Zlib;
  /** The fzstd module, for runtimes whose zlib has no zstd. */
  zstd?: ZstdModule;
  /** A `zstd` program to pipe zstd layers through (main thread only), several times faster than fzstd. */
  zstdProgram?: { path: string; spawn: typeof ChildProcess.spawn };
  progress(bytes: number): void;
}

export interface ChunkReader {
  read(buffer: Buffer): Promise<number>;
  close(): Promise<void>;
}

interface Decoder {
  /** Resolves once the chunk is consumed, so its buffer may be reused unless `keepsInput`. */
  write(chunk: Buffer): Promise<void>;
  keepsInput: boolean;
  end(): Promise<void>;
  destroy(): void;
}

/** Runs one job; never throws: a failure becomes `error` in the result. */
export async function runJob(job: BlobJob, deps: JobDeps, buffers: Buffer[]): Promise<JobResult> {
  try {
    return job.kind === 'hash' ? await hashBlob(job, deps, buffers) : await deepCheckBlob(job, deps);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    const text = e.code === 'ELOOP' ? 'is a symlink; refusing to follow it' : e.code === 'ENOENT' ? 'vanished while verifying' : (e.message ?? String(err));
    return { bytes: 0, error: text };
  }
}

export async function openReader(source: ReadSource, fs: typeof Fs): Promise<ChunkReader> {
  const flags = source.noFollow ? fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW : fs.constants.O_RDONLY;
  const fh = await fs.promises.open(source.file, flags);
  if (source.noFollow && !(await fh.stat()).isFile()) {
    await fh.close();
    throw new Error('is not a regular file');
  }
  let position = source.offset;
  let left = source.length ?? Number.MAX_SAFE_INTEGER;
  return {
    async read(buffer: Buffer): Promise<number> {
      const want = Math.min(buffer.length, left);
      if (want === 0) return 0;
      const { bytesRead } = await fh.read(buffer, 0, want, position);
      if (bytesRead === 0 && source.length !== null) throw new Error(`file ends ${left} bytes before the end of the entry`);
      position += bytesRead;
      left -= bytesRead;
      return bytesRead;
    },
    close: () => fh.close(),
  };
}

/**
 * Reads with readSync on the lane's own thread, then hashes. Measured on warm caches, async reads cost
 * 15-25% more CPU than they overlap (a read is a memcpy, and every lane already keeps a core busy);
 * on cold caches the kernel's readahead keeps the disk ahead of a sequential reader. The lane yields
 * every few MiB so the main thread still answers its workers.
 */
export async function hashBlob(job: HashJob, deps: JobDeps, buffers: Buffer[]): Promise<JobResult> {
  const { fs } = deps;
  const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  // Non-blocking too: a FIFO put where a blob was listed is refused by the fstat below, not waited on.
  const fd = fs.openSync(job.source.file, job.source.noFollow ? O_RDONLY | O_NOFOLLOW | O_NONBLOCK : O_RDONLY);
  try {
    // A whole file's size, as it is now: a short read that reaches it is the end, without a read of 0 bytes to prove it.
    let size = -1;
    if (job.source.noFollow) {
      const info = fs.fstatSync(fd);
      if (!info.isFile()) throw new Error('is not a regular file');
      if (job.source.length === null) size = info.size;
    }
    const buffer = buffers[0]!;
    const hash = deps.crypto.createHash(job.algorithm);
    let position = job.source.offset;
    let left = job.source.length ?? Number.MAX_SAFE_INTEGER;
    let bytes = 0;
    for (let chunks = 1; left > 0; chunks++) {
      const want = Math.min(buffer.length, left);
      const n = fs.readSync(fd, buffer, 0, want, position);
      if (n === 0) {
        if (job.source.length !== null) throw new Error(`file ends ${left} bytes before the end of the entry`);
        break;
      }
      hash.update(buffer.subarray(0, n));
      position += n;
      left -= n;
      bytes += n;
      deps.progress(n);
      if (n < want && position >= size && size >= 0) break;
      if (chunks % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    return { digest: `${job.algorithm}:${hash.digest('hex')}`, bytes };
  } finally {
    fs.closeSync(fd);
  }
}

export function sniffCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/**
 * One read of a layer feeds two hashes: the blob digest of the bytes as stored, and the diff_id of the
 * decompressed stream, which also goes through the tar checker.
 */
export async function deepCheckBlob(job: DeepJob, deps: JobDeps): Promise<JobResult> {
  const CHUNK = 1024 * 1024;
  const reader = await openReader(job.source, deps.fs);
  const stored = deps.crypto.createHash(job.algorithm);
  const plain = deps.crypto.createHash('sha256');
  const tar = job.checkTar ? createTarChecker() : undefined;
  let compression: Compression = 'none';
  let uncompressed = 0;
  let tooLarge = false;
  let decodeError: string | undefined;
  let decoder: Decoder | undefined;
  let bytes = 0;
  const sink = (chunk: Uint8Array) => {
    if (tooLarge) return;
    uncompressed += chunk.length;
    if (uncompressed > job.maxLayerBytes) {
      tooLarge = true;
      decoder?.destroy(); // at once: one compressed chunk of a bomb inflates to gigabytes
      return;
    }
    if (compression !== 'none' || job.algorithm !== 'sha256') plain.update(chunk);
    tar?.push(chunk);
  };
  // A decoder stopped for tooLarge fails its pending write or end: that is not a decompress error.
  const settle = (step: Promise<void>) => step.then(() => undefined, (err: unknown) => (tooLarge ? undefined : describe(err)));
  try {
    // Buffers come back once the decoder is done with them (fzstd keeps its input, so not for zstd there).
    const spare: Buffer[] = [];
    let chunkSize = CHUNK;
    const readNext = () => {
      const buffer = spare.pop() ?? Buffer.allocUnsafe(chunkSize);
      return reader.read(buffer).then((n) => buffer.subarray(0, n));
    };
    let next = readNext();
    for (;;) {
      const chunk = await next;
      if (chunk.length === 0) break;
      next = readNext();
      next.catch(() => undefined);
      if (!decoder) {
        compression = sniffCompression(chunk);
        decoder = createDecoder(compression, sink, deps);
        if (decoder.keepsInput) chunkSize = 256 * 1024; // never reused: smaller reads leave less garbage
      }
      stored.update(chunk);
      bytes += chunk.length;
      deps.progress(chunk.length);
      if (decodeError === undefined && !tooLarge) decodeError = await settle(decoder.write(chunk));
      if (!decoder.keepsInput) spare.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.buffer.byteLength));
    }
    decoder ??= createDecoder('none', sink, deps);
    if (decodeError === undefined && !tooLarge) decodeError = await settle(decoder.end());
    else decoder.destroy();
  } finally {
    await reader.close();
  }
  const digest = `${job.algorithm}:${stored.digest('hex')}`;
  const complete = decodeError === undefined && !tooLarge;
  const diffId = !complete ? undefined : compression === 'none' && job.algorithm === 'sha256' ? digest : `sha256:${plain.digest('hex')}`;
  const deep: DeepOutcome = { compression, uncompressedBytes: uncompressed };
  if (diffId) deep.diffId = diffId;
  if (decodeError !== undefined) deep.decompressError = decodeError;
  if (tooLarge) deep.tooLarge = true;
  if (tar && complete) deep.tar = tar.end();
  return { digest, bytes, deep };
}

export function describe(err: unknown): string {
  const e = err as { message?: string };
  return (e && e.message ? e.message : String(err)).split('\n')[0]!;
}

export function createDecoder(compression: Compression, sink: (chunk: Uint8Array) => void, deps: JobDeps): Decoder {
  const zlib = deps.zlib;
  // Output waits in a 4 MiB buffer instead of the default 16 KiB, so zlib inflates the next chunk on the
  // libuv pool while this thread hashes the last one (measured: about a quarter less wall time). Each
  // round trip to the pool costs the main thread in zlib's callback, so it inflates 2 MiB a trip: three
  // streams at once took 12% less wall time than at 256 KiB, for about 13 MiB more peak RSS.
  const options = { chunkSize: 2 * 1024 * 1024, readableHighWaterMark: 4 * 1024 * 1024 };
  if (compression === 'gzip') return streamDecoder(zlib.createGunzip(options), sink);
  if (compression === 'zstd') return windowChecked(zstdDecoder(deps, sink, options));
  return {
    write: async (chunk) => sink(chunk),
    keepsInput: false,
    end: async () => undefined,
    destroy: () => undefined,
  };
}

function zstdDecoder(deps: JobDeps, sink: (chunk: Uint8Array) => void, options: Zlib.ZlibOptions): Decoder {
  const zlib = deps.zlib as typeof Zlib & { createZstdDecompress?: (o?: object) => Zlib.Gunzip };
  if (typeof zlib.createZstdDecompress === 'function') return streamDecoder(zlib.createZstdDecompress(options), sink);
  if (deps.zstdProgram) return programDecoder(deps.zstdProgram, sink);
  return fzstdDecoder(deps, sink);
}

/** The zstd library's default decoding limit, which the zstd program and zlib's zstd also keep. */
export const MAX_ZSTD_WINDOW = 2 ** 27;

/**
 * fzstd has no window limit and allocates whatever a frame asks for (a 37 KB `--long=31` layer took
 * 1.1 GB), so every zstd layer's frames are checked before they are decoded; all decoders then fail
 * alike and say why, where zstd would say only "Frame requires too much memory".
 */
function windowChecked(decoder: Decoder): Decoder {
  const frames = new ZstdFrameReader();
  return {
    ...decoder,
    write: async (chunk) => {
      frames.push(chunk);
      return decoder.write(chunk);
    },
  };
}

const ZSTD_MAGIC = 0xfd2fb528;
const isSkippableMagic = (magic: number) => magic >>> 4 === 0x184d2a5;

/**
 * Follows frame and block headers as the bytes go past (no decoding: blocks are skipped by their
 * sizes) and throws on a frame whose window is over the limit. Stops looking at bytes that are not
 * zstd; the decoder reports those.
 */
export class ZstdFrameReader {
  private header = Buffer.alloc(0);
  private skip = 0;
  private state: 'frame' | 'block' | 'off' = 'frame';
  private checksum = false;

  push(chunk: Uint8Array): void {
    for (let pos = 0; pos < chunk.length && this.state !== 'off'; ) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - pos);
        this.skip -= n;
        pos += n;
        continue;
      }
      const take = Math.min(this.needed() - this.header.length, chunk.length - pos);
      this.header = Buffer.concat([this.header, chunk.subarray(pos, pos + take)]);
      pos += take;
      if (this.header.length === this.needed()) this.consume();
    }
  }

  /** Header bytes needed to act, from what is known so far. */
  private needed(): number {
    const h = this.header;
    if (this.state === 'block') return 3;
    if (h.length < 4) return 4;
    if (isSkippableMagic(h.readUInt32LE(0))) return 8;
    if (h.length < 5) return 5;
    const single = (h[4]! >> 5) & 1;
    return 5 + (single ? 0 : 1) + [0, 1, 2, 4][h[4]! & 3]! + [single, 2, 4, 8][h[4]! >> 6]!;
  }

  private consume(): void {
    const h = this.header;
    this.header = Buffer.alloc(0);
    if (this.state === 'block') return this.block(h.readUIntLE(0, 3));
    const magic = h.readUInt32LE(0);
    if (isSkippableMagic(magic)) {
      this.skip = h.readUInt32LE(4);
      return;
    }
    if (magic !== ZSTD_MAGIC) {
      this.state = 'off';
      return;
    }
    const window = frameWindow(h);
    if (window > MAX_ZSTD_WINDOW) throw new Error(`zstd window of ${window} bytes is over the ${MAX_ZSTD_WINDOW / 2 ** 20} MiB limit`);
    this.checksum = ((h[4]! >> 2) & 1) === 1;
    this.state = 'block';
  }

  private block(header: number): void {
    const type = (header >> 1) & 3;
    const size = header >>> 3;
    if (type === 3) {
      this.state = 'off';
      return;
    }
    this.skip = type === 1 ? 1 : size; // an RLE block stores its one byte
    if (header & 1) {
      this.skip += this.checksum ? 4 : 0;
      this.state = 'frame';
    }
  }
}

/** The window a frame header asks for: its Window_Descriptor, or for a single-segment frame its content size. */
function frameWindow(h: Buffer): number {
  const descriptor = h[4]!;
  if (((descriptor >> 5) & 1) === 0) {
    const exponent = h[5]! >> 3;
    const base = 2 ** (10 + exponent);
    return base + (base / 8) * (h[5]! & 7);
  }
  const at = 5 + [0, 1, 2, 4][descriptor & 3]!;
  switch (descriptor >> 6) {
    case 0:
      return h[at]!;
    case 1:
      return h.readUInt16LE(at) + 256;
    case 2:
      return h.readUInt32LE(at);
    default:
      return Number(h.readBigUInt64LE(at));
  }
}

/** A zlib transform driven with backpressure: inflation runs on the libuv pool while this thread hashes. */
export function streamDecoder(stream: Zlib.Gunzip, sink: (chunk: Uint8Array) => void): Decoder {
  let failure: unknown;
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve)); // a destroyed stream may never call back
  stream.on('data', sink);
  const done = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', (err) => {
      failure = err;
      reject(err);
    });
  });
  done.catch(() => undefined);
  return {
    async write(chunk) {
      if (failure) throw failure;
      // The write callback runs once zlib has consumed the chunk; its output went to `sink` meanwhile.
      await Promise.race([new Promise<void>((resolve, reject) => stream.write(chunk, (err) => (err ? reject(err) : resolve()))), done, stopped]);
      if (failure) throw failure;
    },
    keepsInput: false,
    async end() {
      stream.end();
      await Promise.race([done, stopped]);
    },
    destroy: () => {
      stop();
      stream.destroy();
    },
  };
}

/**
 * `zstd -dc` as a child process, fed through a pipe with backpressure. Its memory is bounded by zstd's
 * own window limit (a frame asking for more is refused, which reports as a decompress failure).
 */
export function programDecoder(program: NonNullable<JobDeps['zstdProgram']>, sink: (chunk: Uint8Array) => void): Decoder {
  const child = program.spawn(program.path, ['-d', '-c', '-q', '--no-progress'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let failure: Error | undefined;
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  child.stdout!.on('data', sink);
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4096)));
  child.stdin!.on('error', () => undefined); // EPIPE when zstd quits early: its exit status says why
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (err) => reject((failure = err)));
    child.on('close', (code) => {
      const message = stderr.replace(/^(zstd: )?(\/\*stdin\*\\ ?: ?)?/, '').split('\n')[0]!.trim();
      if (code === 0) resolve();
      else reject((failure = new Error(message || `zstd exited with status ${code}`)));
    });
  });
  done.catch(() => undefined);
  return {
    async write(chunk) {
      if (failure) throw failure;
      await Promise.race([new Promise<void>((resolve) => child.stdin!.write(chunk, () => resolve())), done, stopped]);
      if (failure) throw failure;
    },
    keepsInput: false,
    async end() {
      child.stdin!.end();
      await Promise.race([done, stopped]);
    },
    destroy: () => {
      stop();
      child.stdout!.destroy();
      child.kill();
    },
  };
}

/** fzstd keeps references to its input, so the buffers it was given are never reused. */
export function fzstdDecoder(deps: JobDeps, sink: (chunk: Uint8Array) => void): Decoder {
  if (!deps.zstd) throw new Error('no zstd decoder available');
  let stopped = false;
  const decompress = new deps.zstd.Decompress((chunk) => {
    sink(chunk);
    // fzstd decodes a whole pushed chunk in one call (a bomb's is gigabytes): throwing is the only way out.
    if (stopped) throw new Error('stopped');
  });
  const push = (chunk: Uint8Array, final: boolean) => {
    if (stopped) return;
    try {
      decompress.push(chunk, final);
    } catch (err) {
      if (!stopped) throw err;
    }
  };
  return {
    write: async (chunk) => push(chunk, false),
    keepsInput: true,
    end: async () => push(new Uint8Array(0), true),
    destroy: () => {
      stopped = true;
    },
  };
}
