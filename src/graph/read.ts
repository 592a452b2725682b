import { createHash } from 'node:crypto';
import { OcikitError } from '../errors.js';
import { shortDigest } from '../model/digest.js';
import type { Descriptor } from '../model/descriptor.js';
import { DEFAULT_MAX_DOCUMENT_BYTES, parseDocument, parseJson, type Doc } from '../model/document.js';
import { dockerImageConfigSchema, dockerManifestListSchema, dockerManifestSchema } from '../model/docker-schema2.js';
import { imageConfigSchema } from '../model/image-config.js';
import { imageIndexSchema, type ImageIndex } from '../model/image-index.js';
import { imageManifestSchema, type ImageManifest } from '../model/image-manifest.js';
import { mediaTypeInfo } from '../model/media-types.js';
import type { Store } from '../store/store.js';

export type ParsedDoc =
  | { kind: 'index'; doc: Doc<ImageIndex> }
  | { kind: 'manifest'; doc: Doc<ImageManifest> }
  | { kind: 'config'; doc: Doc<unknown> };

/** image-spec 1.1.0-rc artifact manifest; its fields are read by shape, never trusted. */
export interface ArtifactManifest {
  mediaType?: unknown;
  artifactType?: unknown;
  blobs?: unknown;
  subject?: unknown;
  annotations?: unknown;
  [field: string]: unknown;
}

/**
 * What the walk reads: indexes and manifests (schema-checked), configs as plain JSON (a config that is not
 * a full image config is still copied and kept), artifact manifests, and JSON documents of unknown types.
 */
export type WalkedDoc =
  | ParsedDoc
  | { kind: 'artifact'; doc: Doc<ArtifactManifest> }
  | { kind: 'other'; doc: Doc<unknown> };

/** A blob read as plain JSON after its size and digest are checked against the descriptor. */
export async function readJson(
  store: Store, descriptor: Descriptor, maxBytes = DEFAULT_MAX_DOCUMENT_BYTES, where = shortDigest(descriptor.digest),
): Promise<Doc<unknown>> {
  const raw = await store.readBlob(descriptor.digest, Math.max(maxBytes, 0));
  checkContent(raw, descriptor, where);
  return { raw, value: parseJson(raw, where) };
}

/** Reads and parses an index, manifest or config blob, checking size and digest against its descriptor. */
export async function readDocument(
  store: Store, descriptor: Descriptor, maxBytes = DEFAULT_MAX_DOCUMENT_BYTES, where = shortDigest(descriptor.digest),
): Promise<ParsedDoc | undefined> {
  const info = mediaTypeInfo(descriptor.mediaType);
  const kind = info?.kind;
  if (kind !== 'index' && kind !== 'manifest' && kind !== 'config') return undefined;
  const raw = await store.readBlob(descriptor.digest, Math.max(maxBytes, 0));
  checkContent(raw, descriptor, where);
  const docker = info?.family === 'docker';
  if (kind === 'index') return { kind, doc: parseDocument(docker ? dockerManifestListSchema : imageIndexSchema, raw, where) };
  if (kind === 'manifest') return { kind, doc: parseDocument(docker ? dockerManifestSchema : imageManifestSchema, raw, where) };
  return { kind, doc: parseDocument(docker ? dockerImageConfigSchema : imageConfigSchema, raw, where) };
}

function checkContent(raw: Buffer, descriptor: Descriptor, where: string): void {
  if (raw.length !== descriptor.size) {
    throw new OcikitError(`${where}: blob ${descriptor.digest} has ${raw.length} bytes, descriptor says ${descriptor.size}`, { exitCode: 1 });
  }
  const [algorithm] = descriptor.digest.split(':');
  if (algorithm !== 'sha256' && algorithm !== 'sha512') return;
  // Documents are small: hashing them here keeps every later decision on verified bytes.
  const actual = `${algorithm}:${createHashHex(algorithm, raw)}`;
  if (actual !== descriptor.digest) {
    throw new OcikitError(`${where}: blob ${descriptor.digest} has content digest ${actual}`, { exitCode: 1 });
  }
}

function createHashHex(algorithm: string, data: Buffer): string {
  return createHash(algorithm).update(data).digest('hex');
}
