import { OcikitError } from '../errors.js';
import { isDigest, type Digest } from '../model/digest.js';
import { refNameOf, type Descriptor } from '../model/descriptor.js';
import { CONTAINERD_SUBJECT } from '../model/keys.js';
// Transitional, for the ops files being rewritten on another branch; deleted when their imports switch.
export { CONTAINERD_SUBJECT } from '../model/keys.js';
import { isIndexType } from '../model/media-types.js';
import type { Store } from '../store/store.js';
import { readSubject } from '../graph/children.js';
import { readDocument } from '../graph/read.js';


/**
 * How a layout says that a manifest refers to another:
 * - `subject`: an index.json entry (usually untagged) whose document has a `subject` field;
 * - `fallback-tag`: an index tagged `<alg>-<hex>` listing the referrers of that digest (OCI distribution);
 * - `containerd-annotation`: an index.json entry annotated `io.containerd.manifest.subject`;
 * - `cosign-tag`: an entry tagged `sha256-<hex>.sig` / `.att` / `.sbom` (cosign's tag scheme).
 */
export type ReferrerConvention = 'subject' | 'fallback-tag' | 'containerd-annotation' | 'cosign-tag';

export interface Referrer {
  /** The referrer's descriptor as listed: the index.json entry, or the entry inside a fallback-tag index. */
  descriptor: Descriptor;
  /** The digest it refers to. */
  subject: Digest;
  convention: ReferrerConvention;
  /** Position in index.json of the entry that lists it (the fallback-tag index for that convention). */
  entry: number;
  /** Position inside the fallback-tag index. */
  child?: number;
  /** The referrer document's own `subject` digest, when it has one. */
  subjectField?: Digest;
}

const REFERRER_TAG = /^(sha256-[a-f0-9]{64}|sha512-[a-f0-9]{128})(\.[a-z]+)?$/;

/** What a tag says about referrers: `sha256-<hex>` (OCI fallback tag) or `sha256-<hex>.sig` (cosign). */
export interface ReferrerTag {
  subject: Digest;
  convention: 'fallback-tag' | 'cosign-tag';
  /** `.sig`, `.att`, `.sbom`: kept when the tag is renamed for a new subject. */
  suffix: string;
}

export function parseReferrerTag(tag: string | undefined): ReferrerTag | undefined {
  const m = REFERRER_TAG.exec(tag ?? '');
  if (!m) return undefined;
  return { subject: m[1]!.replace('-', ':'), convention: m[2] ? 'cosign-tag' : 'fallback-tag', suffix: m[2] ?? '' };
}

/** The tag that names the same referrers for a new subject digest. */
export function referrerTagFor(subject: Digest, tag: ReferrerTag): string {
  return `${subject.replace(':', '-')}${tag.suffix}`;
}

/** Whether an index.json entry only carries referrers (a fallback-tag index), rather than being one. */
export function isFallbackTagEntry(d: Descriptor): boolean {
  return isIndexType(d.mediaType) && parseReferrerTag(refNameOf(d))?.convention === 'fallback-tag';
}

/**
 * Every referrer index.json lists, in any of the four conventions. Reads each index.json entry's
 * document (and each child of a fallback-tag index) once; never a layer.
 */
export async function listReferrers(store: Store, options: ListReferrersOptions = {}): Promise<Referrer[]> {
  const entries = (await store.readIndex()).value.manifests;
  const listed = await mapBounded(entries, 16, async (d, entry) => {
    try {
      return await referrersListedBy(store, d, entry);
    } catch (err) {
      if (!(err instanceof OcikitError) || !options.onError) throw err;
      options.onError(entry, err);
      return [];
    }
  });
  return listed.flat();
}

/** `Promise.all(items.map(fn))` with at most `limit` calls running: documents are read a few at a time. */
async function mapBounded<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export interface ListReferrersOptions {
  /** When given, an entry whose document cannot be read is reported here and skipped, instead of failing. */
  onError?: (entry: number, error: OcikitError) => void;
}

/** Referrers of `subjects` as index.json lists them; with `transitive` (default) referrers of referrers too. */
export async function findReferrers(store: Store, subjects: Iterable<Digest>, options: { transitive?: boolean } = {}): Promise<Referrer[]> {
  return referrersOf(await listReferrers(store), subjects, options.transitive ?? true);
}

/** The referrers in `all` whose subject is one of `subjects` (growing with each referrer found when transitive). */
export function referrersOf(all: Referrer[], subjects: Iterable<Digest>, transitive = true): Referrer[] {
  const wanted = new Set(subjects);
  const taken = new Set<Referrer>();
  const out: Referrer[] = [];
  for (let grew = true; grew;) {
    grew = false;
    for (const r of all) {
      if (taken.has(r) || !matchesSubject(r.subject, wanted)) continue;
      taken.add(r);
      out.push(r);
      if (transitive && !wanted.has(r.descriptor.digest)) {
        wanted.add(r.descriptor.digest);
        grew = true;
      }
    }
  }
  return out;
}

/** A fallback tag carries at most 64 hex characters of a longer digest: those match by prefix. */
function matchesSubject(subject: Digest, wanted: Set<Digest>): boolean {
  if (wanted.has(subject)) return true;
  if (isDigest(subject)) return false;
  for (const digest of wanted) if (digest.startsWith(subject)) return true;
  return false;
}

async function referrersListedBy(store: Store, d: Descriptor, entry: number): Promise<Referrer[]> {
  const tag = parseReferrerTag(refNameOf(d));
  if (tag?.convention === 'fallback-tag' && isIndexType(d.mediaType)) return fallbackTagReferrers(store, d, entry, tag.subject);
  if (tag?.convention === 'cosign-tag') return [{ descriptor: d, subject: tag.subject, convention: 'cosign-tag', entry }];
  const subjectField = await subjectFieldOf(store, d);
  const annotated = d.annotations?.[CONTAINERD_SUBJECT];
  if (annotated !== undefined && isDigest(annotated)) {
    return [{ descriptor: d, subject: annotated, convention: 'containerd-annotation', entry, ...(subjectField ? { subjectField } : {}) }];
  }
  return subjectField ? [{ descriptor: d, subject: subjectField, convention: 'subject', entry, subjectField }] : [];
}

async function fallbackTagReferrers(store: Store, d: Descriptor, entry: number, tagged: string): Promise<Referrer[]> {
  const parsed = await readDocument(store, d);
  if (parsed?.kind !== 'index') return [];
  const out: Referrer[] = [];
  for (const [child, m] of parsed.doc.value.manifests.entries()) {
    const subjectField = await subjectFieldOf(store, m);
    out.push({ descriptor: m, subject: subjectField ?? tagged, convention: 'fallback-tag', entry, child, ...(subjectField ? { subjectField } : {}) });
  }
  return out;
}

async function subjectFieldOf(store: Store, d: Descriptor): Promise<Digest | undefined> {
  return (await readSubject(store, d))?.digest;
}

/** One index.json entry (or a referrer) with the referrers that point at it or at anything inside it. */
export interface ReferrerTreeNode {
  descriptor: Descriptor;
  /** How this node refers to its parent (undefined at the top). */
  convention?: ReferrerConvention;
  /** The digest it refers to, when that is not its parent itself (a platform manifest inside an index). */
  subject?: Digest;
  referrers: ReferrerTreeNode[];
}

/**
 * index.json as a tree: each entry that is not a referrer, with its referrers (and theirs) below it.
 * Referrers whose subject is not in the layout come last, at the top. `contains(entry)` gives every digest an
 * entry reaches, so that a signature on one platform manifest shows under its index.
 */
export async function referrerTree(
  store: Store, contains: (entry: Descriptor) => Promise<Set<Digest>>,
): Promise<ReferrerTreeNode[]> {
  const entries = (await store.readIndex()).value.manifests;
  const all = await listReferrers(store);
  const referrerEntries = new Set(all.map((r) => r.entry));
  const placed = new Set<Referrer>();
  const grow = (node: ReferrerTreeNode, digests: Set<Digest>): void => {
    for (const r of all) {
      if (placed.has(r) || !matchesSubject(r.subject, digests)) continue;
      placed.add(r);
      const child: ReferrerTreeNode = { descriptor: r.descriptor, convention: r.convention, referrers: [] };
      if (r.subject !== node.descriptor.digest) child.subject = r.subject;
      node.referrers.push(child);
    }
    for (const child of node.referrers) grow(child, new Set([child.descriptor.digest]));
  };
  const top: ReferrerTreeNode[] = [];
  for (const [i, d] of entries.entries()) {
    if (referrerEntries.has(i)) continue;
    const node: ReferrerTreeNode = { descriptor: d, referrers: [] };
    grow(node, await contains(d));
    top.push(node);
  }
  for (const r of all) {
    if (placed.has(r)) continue;
    const node: ReferrerTreeNode = { descriptor: r.descriptor, convention: r.convention, subject: r.subject, referrers: [] };
    placed.add(r);
    grow(node, new Set([r.descriptor.digest]));
    top.push(node);
  }
  return top;
}
