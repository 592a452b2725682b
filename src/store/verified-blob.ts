import { Transform, type TransformCallback } from 'node:stream';
import type { Hash } from 'node:crypto';
import { OcikitError } from '../errors.js';
import { newHasher, type Digest } from '../model/digest.js';

/**
 * Passes a blob through while checking its size and digest: more bytes than declared fail at once,
 * fewer or a different digest fail at the end, before the consumer can commit what it wrote.
 */
export class VerifiedBlob extends Transform {
  private readonly hasher: Hash | undefined;
  private seen = 0;

  /** Without a size (a diff_id of decompressed bytes), only the digest is checked. */
  constructor(private readonly expected: { digest: Digest; size?: number }, private readonly where: string) {
    super();
    this.hasher = newHasher(expected.digest);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.expected.size !== undefined && this.seen > this.expected.size) {
      done(this.mismatch(`is larger than its declared size ${this.expected.size}`));
      return;
    }
    this.hasher?.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.expected.size !== undefined && this.seen !== this.expected.size) {
      done(this.mismatch(`has ${this.seen} bytes, declared size is ${this.expected.size}`));
      return;
    }
    const actual = this.hasher && `${this.expected.digest.split(':')[0]}:${this.hasher.digest('hex')}`;
    if (actual && actual !== this.expected.digest) {
      done(this.mismatch(`content digest is ${actual}`));
      return;
    }
    done();
  }

  private mismatch(what: string): OcikitError {
    return blobMismatch(this.expected, this.where, what);
  }
}

/** A blob whose bytes are not what its descriptor says: a check failed (exit 1), not unreadable input. */
export function blobMismatch(expected: { digest: Digest }, where: string, what: string): OcikitError {
  return new OcikitError(`${where}: blob ${expected.digest} ${what}`, { exitCode: 1 });
}

export function verifiedBlob(expected: { digest: Digest; size?: number }, where: string): VerifiedBlob {
  return new VerifiedBlob(expected, where);
}
