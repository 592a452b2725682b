/**
 * The decompressors a --deep layer check feeds: zlib's gzip (and zstd where the runtime has it), the
 * `zstd` program, or fzstd. Each takes chunks with backpressure and hands its output to a sink.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as Zlib from 'node:zlib';
import { ZstdFrameReader } from './zstd-frames.js';

export type Compression = 'gzip' | 'zstd' | 'none';

export interface ZstdModule {
  Decompress: new (ondata: (chunk: Uint8Array, final?: boolean) => unknown) => { push(chunk: Uint8Array, final?: boolean): unknown };
}

/** What the decoders are made from (tests pass counting stand-ins). */
export interface DecoderDeps {
  zlib: typeof Zlib;
  /** The fzstd module, for runtimes whose zlib has no zstd. */
  zstd?: ZstdModule;
  /** A `zstd` program to pipe zstd layers through (main thread only), several times faster than fzstd. */
  zstdProgram?: { path: string; spawn: typeof spawn };
}

export function sniffCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

export interface Decoder {
  /** Resolves once the chunk is consumed, so its buffer may be reused unless `keepsInput`. */
  write(chunk: Buffer): Promise<void>;
  keepsInput: boolean;
  end(): Promise<void>;
  destroy(): void;
}

export function createDecoder(compression: Compression, sink: (chunk: Uint8Array) => void, deps: DecoderDeps): Decoder {
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

function zstdDecoder(deps: DecoderDeps, sink: (chunk: Uint8Array) => void, options: Zlib.ZlibOptions): Decoder {
  const zlib = deps.zlib as typeof Zlib & { createZstdDecompress?: (o?: object) => Zlib.Gunzip };
  if (typeof zlib.createZstdDecompress === 'function') return streamDecoder(zlib.createZstdDecompress(options), sink);
  if (deps.zstdProgram) return programDecoder(deps.zstdProgram, sink);
  return fzstdDecoder(deps, sink);
}

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

/** A zlib transform driven with backpressure: inflation runs on the libuv pool while this thread hashes. */
function streamDecoder(stream: Zlib.Gunzip, sink: (chunk: Uint8Array) => void): Decoder {
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
function programDecoder(program: NonNullable<DecoderDeps['zstdProgram']>, sink: (chunk: Uint8Array) => void): Decoder {
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
function fzstdDecoder(deps: DecoderDeps, sink: (chunk: Uint8Array) => void): Decoder {
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

/** Node 22.15+ and 23.8+ decode zstd in zlib, on libuv's pool like gzip. */
export const hasNativeZstd = () => typeof (Zlib as { createZstdDecompress?: unknown }).createZstdDecompress === 'function';

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
