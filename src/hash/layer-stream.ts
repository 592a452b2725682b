/**
 * A layer as a stream of its uncompressed tar bytes, checked while it flows: the blob's size and digest,
 * its diff_id, a cap on the uncompressed size, and the tar structure Go's archive/tar would read, to the
 * last byte (past the end-of-archive marker, so truncated or padded layers cannot slip by).
 */
import { spawn } from 'node:child_process';
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { OcikitError } from '../errors.js';
import type { Digest } from '../model/digest.js';
import type { Store } from '../store/store.js';
import { verifiedBlob } from '../store/verified-blob.js';
import { createTarChecker, type TarReport } from '../ops/verify/layer-check.js';
import { createDecoder, findZstdProgram, hasNativeZstd, sniffCompression, type Decoder, type DecoderDeps, type ZstdModule } from './decoders.js';

export interface LayerStreamOptions {
  /** The config's rootfs.diff_ids entry for this layer. */
  diffId: Digest;
  maxBytes?: number;
  where: string;
}

export interface LayerStream {
  /** The uncompressed tar bytes; errors (digest, diff_id, size cap) surface on this stream. */
  tar: Readable;
  /** The tar structure as a strict reader saw it, once `tar` has ended. */
  report(): TarReport;
}

export async function openLayerStream(store: Store, layer: { digest: Digest; size: number }, options: LayerStreamOptions): Promise<LayerStream> {
  const deps = await decoderDeps();
  const checker = createTarChecker();
  const raw = await store.openBlob(layer.digest);
  const decoded = new Decompressing(deps, options);
  // pipeline destroys every stage on any stage's error, which then surfaces on the last one, read by the caller.
  const tar = pipeline(raw, verifiedBlob(layer, options.where), decoded, verifiedBlob({ digest: options.diffId }, `${options.where} (diff_id)`), () => undefined);
  tar.on('data', (chunk: Buffer) => checker.push(chunk));
  let report: TarReport | undefined;
  tar.once('end', () => (report = checker.end()));
  return { tar, report: () => report ?? checker.end() };
}

let fzstd: Promise<ZstdModule> | undefined;

async function decoderDeps(): Promise<DecoderDeps> {
  const deps: DecoderDeps = { zlib };
  if (hasNativeZstd()) return deps;
  const program = findZstdProgram();
  if (program) deps.zstdProgram = { path: program, spawn };
  else deps.zstd = await (fzstd ??= import('fzstd').then((m) => m as unknown as ZstdModule));
  return deps;
}

/** Picks the decoder from the first bytes (as containerd does), whatever the media type claims. */
class Decompressing extends Transform {
  private decoder: Decoder | undefined;
  private out = 0;
  private failure: OcikitError | undefined;

  constructor(private readonly deps: DecoderDeps, private readonly options: LayerStreamOptions) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.decoder ??= createDecoder(sniffCompression(chunk), (c) => this.output(c), this.deps);
    const input = this.decoder.keepsInput ? Buffer.from(chunk) : chunk;
    this.decoder.write(input).then(() => done(this.failure), (err: unknown) => done(this.failure ?? this.undecodable(err)));
  }

  override _flush(done: TransformCallback): void {
    if (!this.decoder) {
      done();
      return;
    }
    this.decoder.end().then(() => done(this.failure), (err: unknown) => done(this.failure ?? this.undecodable(err)));
  }

  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    this.decoder?.destroy();
    done(err);
  }

  /** A stream that does not decompress is a check that failed, not an internal error. */
  private undecodable(err: unknown): OcikitError {
    return new OcikitError(`${this.options.where}: does not decompress (${(err as Error).message.split('\n')[0]})`, { exitCode: 1 });
  }

  private output(chunk: Uint8Array): void {
    if (this.failure) return;
    this.out += chunk.length;
    const max = this.options.maxBytes;
    if (max !== undefined && this.out > max) {
      this.failure = new OcikitError(`${this.options.where}: uncompressed layer exceeds --max-layer-bytes ${max}`, { exitCode: 1 });
      this.decoder?.destroy(); // at once: one compressed chunk of a bomb inflates to gigabytes
      return;
    }
    this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
  }
}
