import { createHash } from 'node:crypto';
import { OcikitError } from '../errors.js';
import { isDigest, shortDigest, type Digest } from '../model/digest.js';
import type { Descriptor } from '../model/descriptor.js';
import { DEFAULT_MAX_DOCUMENT_BYTES, MAX_JSON_DEPTH, parseDocument, parseJson, type Doc } from '../model/document.js';
import { dockerImageConfigSchema, dockerManifestListSchema, dockerManifestSchema } from '../model/docker-schema2.js';
import { imageConfigSchema } from '../model/image-config.js';
import { imageIndexSchema, type ImageIndex } from '../model/image-index.js';
import { imageManifestSchema, type ImageManifest } from '../model/image-manifest.js';
import { isJsonType, mediaTypeInfo } from '../model/media-types.js';
import type { Store } from '../store/store.js';

/** How a descriptor is reached: what its parent document says it is. */
export type Role = 'root' | 'child' | 'config' | 'layer' | 'subject' | 'extension';

export interface WalkNode {
  descriptor: Descriptor;
  role: Role;
  /** The node whose document holds this descriptor; undefined for index.json entries. */
  parent: WalkNode | undefined;
  /** Where the descriptor sits inside its parent document (or index.json). */
  jsonPath: string;
  depth: number;
}

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

export interface WalkOptions {
  /** Nested indexes deeper than this are refused (a loop guard backs it up). */
  maxDepth?: number;
  maxDocumentBytes?: number;
  /** Scan configs for extension descriptors too (reads every config; still no layer bytes). */
  scanConfigs?: boolean;
  /** When given, a document that cannot be read or parsed is reported here and not descended into. */
  onError?: (node: WalkNode, error: OcikitError) => void;
  /** Whether to read and descend into this descriptor's document (default: every one). */
  follow?: (node: WalkNode) => boolean;
}

export type Visitor = (node: WalkNode, parsed: WalkedDoc | undefined) => void | Promise<void>;

/**
 * Visits every descriptor reachable from the roots, in document order. Each descriptor occurrence is
 * visited; each document is read and descended into once. Cost is per document, never per layer byte.
 */
export async function walk(store: Store, roots: WalkNode[], visit: Visitor, options: WalkOptions = {}): Promise<void> {
  const maxDepth = options.maxDepth ?? 32;
  const descended = new Set<Digest>();
  const stack = [...roots].reverse();
  while (stack.length > 0) {
    const node = stack.pop()!;
    const parsed = await readIfDocument(store, node, descended, maxDepth, options);
    await visit(node, parsed);
    if (parsed) stack.push(...childrenOf(node, parsed).reverse());
  }
}

/** How the walk reads a descriptor's blob: schema-checked, as JSON, or scanned when it parses (never an error). */
type Reading = 'document' | 'json' | 'scan';

/** Unknown JSON types are read where a document is expected, never as layers or configs. */
const SCANNED_ROLES = new Set<Role>(['root', 'child', 'subject']);

function readingOf(node: WalkNode, options: WalkOptions): Reading | undefined {
  const { mediaType, size } = node.descriptor;
  const kind = mediaTypeInfo(mediaType)?.kind;
  if (kind === 'index' || kind === 'manifest') return 'document';
  if (kind === 'artifact' || (kind === 'config' && options.scanConfigs)) return 'json';
  const small = size <= (options.maxDocumentBytes ?? DEFAULT_MAX_DOCUMENT_BYTES);
  return kind === undefined && small && SCANNED_ROLES.has(node.role) && isJsonType(mediaType) ? 'scan' : undefined;
}

async function readIfDocument(
  store: Store, node: WalkNode, descended: Set<Digest>, maxDepth: number, options: WalkOptions,
): Promise<WalkedDoc | undefined> {
  const reading = readingOf(node, options);
  const { digest } = node.descriptor;
  if (!reading || descended.has(digest) || (options.follow && !options.follow(node))) return undefined;
  descended.add(digest);
  const where = chain(node);
  if (reading === 'scan') {
    if (node.depth > maxDepth) return undefined;
    return readWalked(store, node.descriptor, reading, options.maxDocumentBytes, where).catch(() => undefined);
  }
  try {
    if (node.depth > maxDepth) throw new OcikitError(`${where}: nesting deeper than ${maxDepth} levels`);
    return await readWalked(store, node.descriptor, reading, options.maxDocumentBytes, where);
  } catch (err) {
    if (!(err instanceof OcikitError) || !options.onError) throw err;
    options.onError(node, err);
    return undefined;
  }
}

async function readWalked(store: Store, d: Descriptor, reading: Reading, maxBytes: number | undefined, where: string): Promise<WalkedDoc> {
  if (reading === 'document') return (await readDocument(store, d, maxBytes, where))!;
  const doc = await readJson(store, d, maxBytes, where);
  const kind = mediaTypeInfo(d.mediaType)?.kind;
  if (kind === 'config') return { kind, doc };
  if (kind === 'artifact') return { kind, doc: doc as Doc<ArtifactManifest> };
  return { kind: 'other', doc };
}

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

function childrenOf(node: WalkNode, parsed: WalkedDoc): WalkNode[] {
  const known = new Set<object>();
  const out: WalkNode[] = [];
  const schemaChecked = parsed.kind === 'index' || parsed.kind === 'manifest';
  const add = (d: unknown, role: Role, jsonPath: string) => {
    if (!isObject(d) || (!schemaChecked && !looksLikeDescriptor(d))) return;
    known.add(d);
    out.push({ descriptor: d as Descriptor, role, parent: node, jsonPath, depth: node.depth + 1 });
  };
  if (parsed.kind === 'index') {
    parsed.doc.value.manifests.forEach((d, i) => add(d, 'child', `$.manifests[${i}]`));
    add(parsed.doc.value.subject, 'subject', '$.subject');
  } else if (parsed.kind === 'manifest') {
    add(parsed.doc.value.config, 'config', '$.config');
    parsed.doc.value.layers.forEach((d, i) => add(d, 'layer', `$.layers[${i}]`));
    add(parsed.doc.value.subject, 'subject', '$.subject');
  } else if (parsed.kind === 'artifact' && isObject(parsed.doc.value)) {
    const { blobs, subject } = parsed.doc.value;
    if (Array.isArray(blobs)) blobs.forEach((d, i) => add(d, 'layer', `$.blobs[${i}]`));
    add(subject, 'subject', '$.subject');
  }
  for (const found of findExtensionDescriptors(parsed.doc.value, known)) {
    out.push({ descriptor: found.descriptor, role: 'extension', parent: node, jsonPath: found.jsonPath, depth: node.depth + 1 });
  }
  return out;
}

/**
 * The `subject` a document names (indexes, manifests, artifact manifests, JSON of unknown types), read
 * from the store. Unreadable indexes, manifests and artifacts are errors; other blobs are then opaque.
 */
export async function readSubject(store: Store, d: Descriptor): Promise<Descriptor | undefined> {
  const kind = mediaTypeInfo(d.mediaType)?.kind;
  if (kind === 'index' || kind === 'manifest') return subjectIn((await readDocument(store, d))?.doc.value);
  if (kind === 'artifact') return subjectIn((await readJson(store, d)).value);
  if (kind !== undefined || !isJsonType(d.mediaType) || d.size > DEFAULT_MAX_DOCUMENT_BYTES) return undefined;
  return subjectIn((await readJson(store, d).catch(() => undefined))?.value);
}

function subjectIn(value: unknown): Descriptor | undefined {
  const subject = isObject(value) ? value.subject : undefined;
  return isObject(subject) && looksLikeDescriptor(subject) ? (subject as Descriptor) : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects shaped like a descriptor outside the places the spec defines: kept by gc and copy all the same. */
export function findExtensionDescriptors(value: unknown, known: Set<object>, path = '$'): Array<{ descriptor: Descriptor; jsonPath: string }> {
  const found: Array<{ descriptor: Descriptor; jsonPath: string }> = [];
  // Keys are kept on a stack and joined into a path only for a find: most objects scanned are not descriptors.
  const keys: Array<string | number> = [];
  const visit = (v: unknown, depth: number): void => {
    if (depth > MAX_JSON_DEPTH) return; // deeper than parseJson accepts; callers that JSON.parse themselves must not overflow here
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        keys.push(i);
        visit(v[i], depth + 1);
        keys.pop();
      }
      return;
    }
    if (!known.has(v) && looksLikeDescriptor(v)) found.push({ descriptor: v as Descriptor, jsonPath: pathOf(path, keys) });
    for (const key in v) {
      keys.push(key);
      visit((v as Record<string, unknown>)[key], depth + 1);
      keys.pop();
    }
  };
  visit(value, 0);
  return found;
}

function pathOf(start: string, keys: Array<string | number>): string {
  let p = start;
  for (const key of keys) p += typeof key === 'number' ? `[${key}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
  return p;
}

/** The rule, nothing more: odd annotations, platform or urls do not make a blob unreachable. */
function looksLikeDescriptor(v: object): boolean {
  const o = v as Record<string, unknown>;
  return typeof o.mediaType === 'string' && isDigest(o.digest) && Number.isSafeInteger(o.size) && (o.size as number) >= 0;
}

/** The roots of a store: every index.json entry. */
export function rootNodes(index: ImageIndex): WalkNode[] {
  return index.manifests.map((descriptor, i) => ({ descriptor, role: 'root', parent: undefined, jsonPath: `$.manifests[${i}]`, depth: 0 }));
}

/** `index.json $.manifests[0] → sha256:abc… $.layers[2]`: where a descriptor sits, for messages. */
export function chain(node: WalkNode): string {
  const parts: string[] = [];
  for (let n: WalkNode | undefined = node; n; n = n.parent) {
    parts.unshift(n.parent ? `${shortDigest(n.parent.descriptor.digest)} ${n.jsonPath}` : `index.json ${n.jsonPath}`);
  }
  // A chain 33 indexes deep would make a message of several lines: the ends say where.
  const shown = parts.length > 6 ? [...parts.slice(0, 2), `… ${parts.length - 4} more …`, ...parts.slice(-2)] : parts;
  return shown.join(' → ');
}
