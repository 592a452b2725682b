import { OcikitError } from '../errors.js';
import { shortDigest, type Digest } from '../model/digest.js';
import type { Descriptor } from '../model/descriptor.js';
import { DEFAULT_MAX_DOCUMENT_BYTES, type Doc } from '../model/document.js';
import type { ImageIndex } from '../model/image-index.js';
import { isJsonType, mediaTypeInfo } from '../model/media-types.js';
import type { Store } from '../store/store.js';
import { childrenOf } from './children.js';
import { readDocument, readJson, type ArtifactManifest, type WalkedDoc } from './read.js';

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
