import { OcikitError } from '../errors.js';
import { isDigest, type Digest } from '../model/digest.js';
import { DEFAULT_MAX_DOCUMENT_BYTES } from '../model/document.js';
import { mediaTypeInfo } from '../model/media-types.js';
import type { Descriptor } from '../model/descriptor.js';
import type { ImageIndex } from '../model/image-index.js';
import { DirStore } from '../store/dir.js';
import type { Store } from '../store/store.js';
import { listReferrers, referrersOf, type Referrer } from './referrers.js';
import { findExtensionDescriptors } from '../graph/children.js';
import { chain, rootNodes, walk, type Role, type WalkNode } from '../graph/walk.js';

export interface ReachOptions {
  /** Follow `subject` descriptors into the documents they name (default true: gc keeps a referrer's subject). */
  followSubjects?: boolean;
  /**
   * Add the referrers index.json lists for anything reached, transitively, in every convention (default
   * false). A list (from `listReferrers`) saves reading index.json's entries again.
   */
  referrers?: boolean | Referrer[];
  /** Read configs too, for extension descriptors inside them (default true; still no layer byte). */
  scanConfigs?: boolean;
  maxDepth?: number;
}

/** A descriptor reached through no document the store lacks: absent targets of these roles are tolerated. */
const OPTIONAL_ROLES = new Set<Role>(['subject', 'extension']);

export interface Reachability {
  /** Every digest reached, with the first descriptor that names it. */
  blobs: Map<Digest, Descriptor>;
  /** Digests reached only through extension descriptors, with where the first such descriptor sits. */
  extensionOnly: Map<Digest, { descriptor: Descriptor; where: string }>;
  /** Referrers of what the roots reach (only with `referrers`), in the order found. */
  referrers: Referrer[];
  /** Subjects and extension targets that are documents the store does not hold: nothing below them is kept. */
  absent: Array<{ descriptor: Descriptor; where: string }>;
  /** Documents read. */
  documents: number;
}

/**
 * Everything reachable from `roots` (default: every index.json entry, plus descriptors index.json holds
 * elsewhere, e.g. inside a platform object). One walk, each document read once, layers never read.
 * A document that cannot be read or parsed makes it throw; nothing is half-known.
 */
export async function reachability(store: Store, roots?: WalkNode[], options: ReachOptions = {}): Promise<Reachability> {
  const start = roots ?? indexRoots((await store.readIndex()).value);
  // A layout directory reads documents synchronously (cheaper than any overlap): nothing to read ahead.
  const reader = store instanceof DirStore ? store : new PrefetchingStore(store, options.scanConfigs ?? true);
  const graph = new Graph(reader, options);
  await graph.add(start);
  const referrers: Referrer[] = [];
  if (options.referrers) {
    const all = Array.isArray(options.referrers) ? options.referrers : await listReferrers(store);
    for (;;) {
      const next = referrersOf(all, graph.reached().keys()).filter((r) => !referrers.includes(r));
      if (next.length === 0) break;
      referrers.push(...next);
      await graph.add(next.flatMap(referrerNodes));
    }
  }
  const blobs = graph.reached();
  const core = graph.reached(false);
  const extensionOnly: Reachability['extensionOnly'] = new Map();
  for (const node of graph.nodes()) {
    const { digest } = node.descriptor;
    if (core.has(digest) || extensionOnly.has(digest) || !blobs.has(digest) || !underExtension(node)) continue;
    extensionOnly.set(digest, { descriptor: blobs.get(digest)!, where: chain(node) });
  }
  return { blobs, extensionOnly, referrers, absent: graph.absent, documents: graph.documents };
}

function underExtension(node: WalkNode): boolean {
  for (let n: WalkNode | undefined = node; n; n = n.parent) if (n.role === 'extension') return true;
  return false;
}

/** index.json's entries, and descriptor-shaped objects anywhere else in it (extension descriptors). */
export function indexRoots(index: ImageIndex): WalkNode[] {
  const roots = rootNodes(index);
  const known = new Set<object>(index.manifests);
  for (const { descriptor, jsonPath } of findExtensionDescriptors(index, known)) roots.push(extensionRoot(descriptor, jsonPath));
  return roots;
}

/** Entries to walk from, each followed by the descriptors nested inside it (say, in `platform.compatibilities`). */
export function entryRoots(entries: Descriptor[]): WalkNode[] {
  return entries.flatMap((descriptor, i) => withNested({ descriptor, role: 'root', parent: undefined, jsonPath: `$.manifests[${i}]`, depth: 0 }));
}

function withNested(root: WalkNode): WalkNode[] {
  const nested = findExtensionDescriptors(root.descriptor, new Set([root.descriptor]), root.jsonPath);
  return [root, ...nested.map(({ descriptor, jsonPath }) => extensionRoot(descriptor, jsonPath))];
}

function extensionRoot(descriptor: Descriptor, jsonPath: string): WalkNode {
  return { descriptor, role: 'extension', parent: undefined, jsonPath, depth: 0 };
}

function referrerNodes(r: Referrer): WalkNode[] {
  const jsonPath = r.child === undefined ? `$.manifests[${r.entry}]` : `$.manifests[${r.entry}] (fallback tag) $.manifests[${r.child}]`;
  return withNested({ descriptor: r.descriptor, role: 'root', parent: undefined, jsonPath, depth: 0 });
}

/** Who names whom: every descriptor occurrence, keyed by the document (or index.json) that holds it. */
class Graph {
  readonly absent: Reachability['absent'] = [];
  documents = 0;
  private readonly children = new Map<Digest | undefined, WalkNode[]>();
  private readonly roots: WalkNode[] = [];
  private readonly descended = new Set<Digest>();
  private readonly followSubjects: boolean;

  constructor(private readonly store: Store, private readonly options: ReachOptions) {
    this.followSubjects = options.followSubjects ?? true;
  }

  /** Walks from more roots; documents already read are not read again. */
  async add(roots: WalkNode[]): Promise<void> {
    this.roots.push(...roots);
    if (this.store instanceof PrefetchingStore) this.store.prefetch(roots.map((n) => n.descriptor));
    const failures: Array<{ node: WalkNode; error: OcikitError }> = [];
    await walk(this.store, roots, (node, parsed) => {
      const from = node.parent?.descriptor.digest;
      const list = this.children.get(from);
      if (list) list.push(node);
      else this.children.set(from, [node]);
      if (parsed) this.documents++;
    }, {
      maxDepth: this.options.maxDepth,
      scanConfigs: this.options.scanConfigs ?? true,
      follow: (node) => this.follow(node),
      onError: (node, error) => failures.push({ node, error }),
    });
    for (const { node, error } of failures) {
      if (!OPTIONAL_ROLES.has(node.role) || (await this.store.statBlob(node.descriptor.digest)) !== undefined) throw error;
      this.absent.push({ descriptor: node.descriptor, where: chain(node) });
    }
  }

  private follow(node: WalkNode): boolean {
    const { digest } = node.descriptor;
    if (this.descended.has(digest) || (!this.followSubjects && node.role === 'subject')) return false;
    this.descended.add(digest);
    return true;
  }

  /** Digests reached from the roots; without extension descriptors when `withExtensions` is false. */
  reached(withExtensions = true): Map<Digest, Descriptor> {
    const out = new Map<Digest, Descriptor>();
    const queue = [...this.roots];
    for (let i = 0; i < queue.length; i++) {
      const node = queue[i]!;
      if (!withExtensions && node.role === 'extension') continue;
      if (!this.followSubjects && node.role === 'subject') continue;
      const digest = node.descriptor.digest;
      if (out.has(digest)) continue;
      out.set(digest, node.descriptor);
      const below = this.children.get(digest);
      if (below) for (const child of below) queue.push(child);
    }
    return out;
  }

  /** Every descriptor occurrence seen, roots first. */
  *nodes(): Generator<WalkNode> {
    yield* this.roots;
    for (const [from, list] of this.children) if (from !== undefined) yield* list;
  }
}

/**
 * The walk reads one document at a time; a layout on disk answers several reads at once. Documents the
 * walk is about to read (index.json entries, an index's children, a manifest's config) are read ahead,
 * a bounded number at a time, and handed over when the walk asks. Still only documents, never a layer.
 */
class PrefetchingStore implements Store {
  private readonly ahead = new Map<Digest, Promise<Buffer>>();
  private readonly requested = new Set<Digest>();
  private readonly queue: Array<{ digest: Digest; container: boolean; resolve: (raw: Buffer) => void; reject: (err: unknown) => void }> = [];
  private inFlight = 0;

  constructor(private readonly store: Store, private readonly configs: boolean, private readonly limit = 32) {}

  get kind() {
    return this.store.kind;
  }

  get path() {
    return this.store.path;
  }

  prefetch(descriptors: Descriptor[]): void {
    for (const d of descriptors) {
      const kind = mediaTypeInfo(d.mediaType)?.kind;
      if (kind !== 'index' && kind !== 'manifest' && !(this.configs && kind === 'config')) continue;
      if (d.size > DEFAULT_MAX_DOCUMENT_BYTES || this.requested.has(d.digest) || !isDigest(d.digest)) continue;
      this.requested.add(d.digest);
      const container = kind !== 'config';
      const early = new Promise<Buffer>((resolve, reject) => this.queue.push({ digest: d.digest, container, resolve, reject }));
      early.catch(() => {}); // a read the walk never asks for must not fail the process; the walk's own read reports it
      this.ahead.set(d.digest, early);
    }
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.limit && this.queue.length > 0) {
      const { digest, container, resolve, reject } = this.queue.shift()!;
      this.inFlight++;
      this.store.readBlob(digest, DEFAULT_MAX_DOCUMENT_BYTES).then((raw) => {
        resolve(raw);
        if (container) this.prefetchChildren(raw);
      }, reject).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /** A glance at a document's children before the walk parses it: the walk is depth-first and would wait on each. */
  private prefetchChildren(raw: Buffer): void {
    let value: { manifests?: unknown; config?: unknown } | null;
    try {
      value = JSON.parse(raw.toString('utf8')) as typeof value;
    } catch {
      return; // the walk reports it
    }
    const children: unknown[] = [...(Array.isArray(value?.manifests) ? value.manifests : []), value?.config];
    // Unvalidated JSON: a non-number size or non-string media type (say, a deeply nested array) would throw when compared.
    this.prefetch(children.filter((d): d is Descriptor => typeof d === 'object' && d !== null && typeof (d as Descriptor).digest === 'string'
      && typeof (d as Descriptor).mediaType === 'string' && typeof (d as Descriptor).size === 'number'));
  }

  readBlob(digest: Digest, maxBytes?: number): Promise<Buffer> {
    const early = this.ahead.get(digest);
    if (!early || maxBytes !== DEFAULT_MAX_DOCUMENT_BYTES) return this.store.readBlob(digest, maxBytes);
    this.ahead.delete(digest);
    return early;
  }

  readIndex() {
    return this.store.readIndex();
  }

  statBlob(digest: Digest) {
    return this.store.statBlob(digest);
  }

  openBlob(digest: Digest) {
    return this.store.openBlob(digest);
  }

  listBlobs() {
    return this.store.listBlobs();
  }

  close() {
    return this.store.close();
  }
}
