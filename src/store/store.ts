import type { Readable } from 'node:stream';
import type { Digest } from '../model/digest.js';
import type { Doc } from '../model/document.js';
import type { ImageIndex } from '../model/image-index.js';

export type StoreKind = 'oci' | 'oci-archive' | 'docker-archive';

export interface BlobRef {
  digest: Digest;
  size: number;
}

/** Read access to one image layout, whatever holds it: a directory or a tarball. */
export interface Store {
  readonly kind: StoreKind;
  /** The file or directory as the user named it. */
  readonly path: string;
  /** The top-level index (index.json; for a legacy docker-save tarball, synthesized from manifest.json). */
  readIndex(): Promise<Doc<ImageIndex>>;
  /** The stored size of a blob, from the directory or tar header; never reads content. */
  statBlob(digest: Digest): Promise<number | undefined>;
  /** A whole blob; refuses before reading when it is larger than maxBytes. */
  readBlob(digest: Digest, maxBytes?: number): Promise<Buffer>;
  openBlob(digest: Digest): Promise<Readable>;
  /** Every blob present, by name; content is not read. */
  listBlobs(): Promise<BlobRef[]>;
  /** A document ocikit made up (a legacy docker-save manifest): its digest names nothing anywhere else. */
  isSynthesized?(digest: Digest): boolean;
  close(): Promise<void>;
}

/** A pending change to a store: blobs are added, then the new index is committed atomically. */
export interface StoreWriter {
  readonly kind: StoreKind;
  readonly path: string;
  hasBlob(digest: Digest): Promise<boolean>;
  /** Adds a small blob (a manifest, config or index); returns its sha256 digest. */
  putBlob(data: Buffer): Promise<BlobRef>;
  /** Copies a blob from another store, checking size and digest while it streams. */
  copyBlob(from: Store, blob: BlobRef): Promise<void>;
  /** Commits the new top-level index; nothing is visible to readers before this. */
  commit(index: Buffer): Promise<void>;
  /** Drops everything this writer added; the target is left as it was. */
  abort(): Promise<void>;
}
