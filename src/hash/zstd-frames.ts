/**
 * zstd frame headers read as the bytes go past, so a layer asking for a window no decoder should
 * allocate is refused before any decoder sees it.
 */

/** The zstd library's default decoding limit, which the zstd program and zlib's zstd also keep. */
export const MAX_ZSTD_WINDOW = 2 ** 27;

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
