import { OcikitError } from '../errors.js';
import type { Digest } from '../model/digest.js';
import { pointTo, withRefName, type Descriptor } from '../model/descriptor.js';
import { CONTAINERD_IMAGE_NAME } from '../model/keys.js';
import { serializeLike, type Doc } from '../model/document.js';
import type { ImageIndex } from '../model/image-index.js';
import type { BlobRef, Store, StoreKind, StoreWriter } from '../store/store.js';
import { readDocument } from '../graph/read.js';

/** A document replaced by new content: old digest → new blob (and media type, when that changes too). */
export type Replacements = Map<Digest, BlobRef & { mediaType?: string }>;

export interface PropagateOptions {
  /** Re-point `subject` fields at replaced documents too (referrers follow their subject). */
  moveReferrers?: boolean;
  maxDepth?: number;
  /**
   * The index.json position the user named by tag: other entries holding the same document (other
   * tags of the image) keep pointing at the old one, as a registry tag push would leave them.
   */
  onlyEntry?: number;
}

export interface Propagation {
  /** The new index.json bytes; the old bytes when nothing changed. */
  index: Buffer;
  /** Every document replaced, given and derived: old digest → new digest. */
  replaced: Map<Digest, Digest>;
  /** Documents whose `subject` names a replaced document and was left pointing at the old one. */
  danglingReferrers: Array<{ referrer: Digest; subject: Digest }>;
}

/**
 * Writes the parents of replaced documents, bottom-up, each once: nested indexes, then index.json.
 * Parents keep each descriptor's platform, annotations and ref name; documents that did not change
 * are not re-serialized, so their bytes and digests stay the same.
 */
export async function propagate(
  store: Store, writer: StoreWriter, rootIndex: Doc<ImageIndex>, replacements: Replacements, options: PropagateOptions = {},
): Promise<Propagation> {
  const done = new Map<Digest, (BlobRef & { mediaType?: string }) | null>(replacements);
  const inProgress = new Set<Digest>();
  const dangling: Propagation['danglingReferrers'] = [];
  const maxDepth = options.maxDepth ?? 32;

  const rewriteDescriptor = async (d: Descriptor, depth: number, isSubject: boolean): Promise<Descriptor | undefined> => {
    if (isSubject && !options.moveReferrers) return undefined;
    const next = await rewriteDoc(d, depth);
    return next ? pointTo(d, next) : undefined;
  };

  const rewriteDoc = async (d: Descriptor, depth: number): Promise<(BlobRef & { mediaType?: string }) | null> => {
    if (done.has(d.digest)) return done.get(d.digest)!;
    if (inProgress.has(d.digest) || depth > maxDepth) throw new OcikitError(`index nesting loops or is deeper than ${maxDepth} at ${d.digest}`);
    inProgress.add(d.digest);
    const parsed = await readDocument(store, d).catch((err) => {
      if (err instanceof OcikitError && /is missing|not in the archive/.test(err.message)) return undefined;
      throw err;
    });
    let result: (BlobRef & { mediaType?: string }) | null = null;
    if (parsed && parsed.kind !== 'config') {
      const value = parsed.doc.value as unknown as Record<string, unknown>;
      const changed = await rewriteFields(value, depth);
      if (changed) {
        const raw = serializeLike(changed, parsed.doc.raw);
        result = await writer.putBlob(raw);
      } else if (parsed.doc.value.subject && replacements.has(parsed.doc.value.subject.digest)) {
        dangling.push({ referrer: d.digest, subject: parsed.doc.value.subject.digest });
      }
    }
    inProgress.delete(d.digest);
    done.set(d.digest, result);
    return result;
  };

  /** A copy of the document with changed descriptors, or undefined when none changed. */
  const rewriteFields = async (value: Record<string, unknown>, depth: number): Promise<Record<string, unknown> | undefined> => {
    let copy: Record<string, unknown> | undefined;
    const set = (key: string, v: unknown) => {
      copy ??= { ...value };
      copy[key] = v;
    };
    for (const key of ['manifests', 'layers'] as const) {
      const list = value[key] as Descriptor[] | undefined;
      if (!Array.isArray(list)) continue;
      const named = depth === 0 && options.onlyEntry !== undefined ? list[options.onlyEntry] : undefined;
      const stays = (d: Descriptor, i: number) => named !== undefined && i !== options.onlyEntry && d.digest === named.digest;
      // One at a time: `inProgress` must hold only ancestors, or a document reached twice looks like a loop.
      const next: Array<Descriptor | undefined> = [];
      for (const [i, d] of list.entries()) next.push(stays(d, i) ? undefined : await rewriteDescriptor(d, depth + 1, false));
      if (next.some(Boolean)) set(key, list.map((d, i) => next[i] ?? d));
    }
    for (const key of ['config', 'subject'] as const) {
      const d = value[key] as Descriptor | undefined;
      if (!d) continue;
      const next = key === 'config' ? (replacements.get(d.digest) ? pointTo(d, replacements.get(d.digest)!) : undefined) : await rewriteDescriptor(d, depth + 1, true);
      if (next) set(key, next);
    }
    return copy;
  };

  const top = rootIndex.value as unknown as Record<string, unknown>;
  const changedTop = await rewriteFields(top, 0);
  const replaced = new Map<Digest, Digest>();
  for (const [old, next] of done) if (next) replaced.set(old, next.digest);
  return { index: changedTop ? serializeLike(changedTop, rootIndex.raw) : rootIndex.raw, replaced, danglingReferrers: dangling };
}

/** An index.json entry under another tag: a containerd image name names the old tag, so it goes (a full new name sets its own). */
export function retagged(d: Descriptor, tag: string, kind: StoreKind): Descriptor {
  const { [CONTAINERD_IMAGE_NAME]: _old, ...annotations } = d.annotations ?? {};
  return withRefName({ ...d, annotations }, tag, kind);
}
