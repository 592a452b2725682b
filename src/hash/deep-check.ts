/**
 * verify --deep's read of a layer: the stored bytes hashed, decompressed as they go, the plain stream
 * hashed for its diff_id and parsed as a tar, all in one pass with memory that stays flat.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { createTarChecker } from '../ops/verify/layer-check.js';
import { createDecoder, sniffCompression, type Compression, type Decoder } from './decoders.js';
import type { DeepJob, DeepOutcome, JobDeps, JobResult, ReadSource } from './jobs.js';

interface ChunkReader {
  read(buffer: Buffer): Promise<number>;
  close(): Promise<void>;
}

async function openReader(source: ReadSource): Promise<ChunkReader> {
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
 * One read of a layer feeds two hashes: the blob digest of the bytes as stored, and the diff_id of the
 * decompressed stream, which also goes through the tar checker.
 */
export async function deepCheckBlob(job: DeepJob, deps: JobDeps): Promise<JobResult> {
  const CHUNK = 1024 * 1024;
  const reader = await openReader(job.source);
  const stored = crypto.createHash(job.algorithm);
  const plain = crypto.createHash('sha256');
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

function describe(err: unknown): string {
  const e = err as { message?: string };
  return (e && e.message ? e.message : String(err)).split('\n')[0]!;
}

