import { OcikitError } from '../errors.js';
import type { Digest } from '../model/digest.js';
import { pointTo, refNameOf, sameIndexEntry, withRefName, type Descriptor } from '../model/descriptor.js';
import { serializeLike } from '../model/document.js';
import type { ImageIndex } from '../model/image-index.js';
import { mediaTypeInfo, toOciMediaType } from '../model/media-types.js';
import type { Selector } from '../store/reference.js';
import type { BlobRef, Store, StoreWriter } from '../store/store.js';
import { reachability, type Reachability } from './reachability.js';
import { CONTAINERD_SUBJECT, isFallbackTagEntry, listReferrers, referrersOf, type Referrer } from './referrers.js';
import { platformMatches, resolveTarget, type PlatformSpec } from './resolve.js';
import { readDocument, type WalkNode } from './walk.js';

export interface CopyOptions {
  /** What to copy; everything index.json names when absent. */
  selector?: Selector;
  /** Keep only this platform's manifests of an index (default: all platforms). */
  platform?: PlatformSpec;
  /** Copy the referrers (signatures, SBOMs, attestations) of what is copied, transitively (default true). */
  referrers?: boolean;
  /** Tag for the copied image in the destination (default: its tag in the source). */
  tag?: string;
  /** Rewrite Docker media types to OCI ones; digests of rewritten documents change. */
  ociMediaTypes?: boolean;
  /** Progress callback: called after each blob copied. */
  onBlob?: (blob: BlobRef) => void;
}

export interface CopiedReferrer {
  digest: Digest;
  subject: Digest;
  artifactType?: string;
  /** How the source stored it; the destination stores it as an untagged index.json entry. */
  from: Referrer['convention'];
}

export interface CopyResult {
  entries: Descriptor[];
  /** Blobs written to the destination. */
  blobs: number;
  bytes: number;
  /** Blobs the destination already held: not copied again. */
  existing: number;
  referrers: CopiedReferrer[];
  /** Referrers left out because the destination format has no place for them (docker-archive). */
  referrersSkipped: number;
  /** Referrers whose subject --oci-media-types rewrote: they still name the old digest. */
  danglingReferrers: Array<{ referrer: Digest; subject: Digest }>;
  /** Blobs named only by extension descriptors and absent from the source: nothing to copy. */
  absentExtensionBlobs: Digest[];
  /** Source index.json entries that could not be read to see whether they are referrers (not copied). */
  uncheckedEntries: string[];
  /** Documents rewritten by --oci-media-types: old digest → new digest. */
  converted: Map<Digest, Digest>;
}

/**
 * Copies images with every blob they reach (extension descriptors too) and, by default, their referrers,
 * verifying each blob while it streams. Nothing is committed until every blob is in: a failure leaves
 * the destination's index.json as it was.
 */
export async function copy(source: Store, writer: StoreWriter, destIndex: ImageIndex | undefined, options: CopyOptions = {}): Promise<CopyResult> {
  const wanted = options.referrers ?? true;
  const storable = wanted && writer.kind !== 'docker-archive';
  const unchecked: string[] = [];
  const all = await listReferrers(source, { onError: (entry, err) => unchecked.push(`index.json $.manifests[${entry}]: ${err.message}`) });
  let images = await selectImages(source, options.selector, all);
  if (options.platform) images = await Promise.all(images.map((d) => narrowToPlatform(source, d, options.platform!)));
  if (options.tag && images.length > 1) throw new OcikitError(`${source.path}: holds ${images.length} images; name one to tag it ${options.tag}`);
  // From a whole layout every referrer comes along, also one whose subject is not there.
  const extra = !options.selector && !options.platform && storable ? all : [];
  const roots = [...images, ...extra.map((r) => r.descriptor)];
  const reach = await reachability(source, roots.map(rootNode), { followSubjects: false, referrers: storable ? all : false });
  const result: CopyResult = {
    entries: [], blobs: 0, bytes: 0, existing: 0, referrers: [], referrersSkipped: 0, danglingReferrers: [], absentExtensionBlobs: [], uncheckedEntries: unchecked, converted: new Map(),
  };
  await copyBlobs(source, writer, reach, options, result);
  if (options.ociMediaTypes) images = await Promise.all(images.map((d) => toOci(source, writer, d, result.converted)));
  const referrers = [...new Set([...extra, ...reach.referrers])].filter((r) => !images.some((d) => d.digest === r.descriptor.digest));
  result.referrers = referrers.map(copiedReferrer);
  result.danglingReferrers = referrers.filter((r) => result.converted.has(r.subject)).map((r) => ({ referrer: r.descriptor.digest, subject: r.subject }));
  if (wanted && !storable) result.referrersSkipped = referrersOf(all, reach.blobs.keys()).length;
  const entries = dedupe([...images.map((d) => (options.tag ? withRefName(d, options.tag) : d)), ...referrers.map(referrerEntry)]);
  await writer.commit(destinationIndex(destIndex, entries));
  return { ...result, entries };
}

/** The destination's index.json: its entries, but those the copy replaces, then the copied ones. */
function destinationIndex(destIndex: ImageIndex | undefined, entries: Descriptor[]): Buffer {
  const kept = (destIndex?.manifests ?? []).filter((d) => !entries.some((e) => sameIndexEntry(d, e)));
  return serializeLike({ ...(destIndex ?? { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json' }), manifests: [...kept, ...entries] });
}

/** The selected image or index; from a whole layout every index.json entry that is not a referrer. */
async function selectImages(source: Store, selector: Selector | undefined, referrers: Referrer[]): Promise<Descriptor[]> {
  if (selector) return [(await resolveTarget(source, selector)).descriptor];
  const entries = (await source.readIndex()).value.manifests;
  const listed = new Set(referrers.map((r) => r.entry));
  return entries.filter((d, i) => !listed.has(i) && !isFallbackTagEntry(d));
}

function rootNode(descriptor: Descriptor, i: number): WalkNode {
  return { descriptor, role: 'root', parent: undefined, jsonPath: `$.manifests[${i}]`, depth: 0 };
}

/**
 * A referrer as an untagged index.json entry (the layout convention). A referrer whose document does
 * not name its subject (a fallback-tag entry without `subject`) keeps the link as containerd's annotation.
 */
function referrerEntry(r: Referrer): Descriptor {
  if (r.convention !== 'fallback-tag') return r.descriptor;
  if (r.subjectField === r.subject) return r.descriptor;
  return { ...r.descriptor, annotations: { ...r.descriptor.annotations, [CONTAINERD_SUBJECT]: r.subject } };
}

function copiedReferrer(r: Referrer): CopiedReferrer {
  const artifactType = r.descriptor.artifactType;
  return { digest: r.descriptor.digest, subject: r.subject, ...(artifactType ? { artifactType } : {}), from: r.convention };
}

function dedupe(entries: Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return entries.filter((d) => {
    const key = `${d.digest} ${refNameOf(d) ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

async function copyBlobs(source: Store, writer: StoreWriter, reach: Reachability, options: CopyOptions, result: CopyResult): Promise<void> {
  for (const { digest, size, mediaType, urls } of reach.blobs.values()) {
    const blob = { digest, size };
    if (await writer.hasBlob(digest)) {
      result.existing++;
      continue;
    }
    if ((await source.statBlob(digest)) === undefined) {
      // Non-distributable and foreign layers are often absent on purpose: their descriptors carry on alone.
      if (mediaTypeInfo(mediaType)?.nondistributable || urls?.length) continue;
      if (reach.extensionOnly.has(digest)) {
        result.absentExtensionBlobs.push(digest);
        continue;
      }
      throw new OcikitError(`${source.path}: blob ${digest} is missing; nothing was written`);
    }
    await writer.copyBlob(source, blob);
    result.blobs++;
    result.bytes += blob.size;
    options.onBlob?.(blob);
  }
}

/** An index narrowed to one platform is a new index document (the source keeps its own). */
async function narrowToPlatform(source: Store, d: Descriptor, platform: PlatformSpec): Promise<Descriptor> {
  if (mediaTypeInfo(d.mediaType)?.kind !== 'index') return d;
  const parsed = await readDocument(source, d);
  if (parsed?.kind !== 'index') return d;
  const match = parsed.doc.value.manifests.find((m) => platformMatches(m.platform, platform));
  if (!match) throw new OcikitError(`${source.path}: no ${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''} image in ${d.digest}`);
  const annotations = d.annotations;
  return annotations ? { ...match, annotations: { ...match.annotations, ...annotations } } : match;
}

/** Rewrites Docker schema2 documents to OCI media types, bottom-up; returns the new descriptor. */
async function toOci(source: Store, writer: StoreWriter, d: Descriptor, converted: Map<Digest, Digest>): Promise<Descriptor> {
  const parsed = await readDocument(source, d);
  if (!parsed || parsed.kind === 'config') return d;
  const value = { ...(parsed.doc.value as unknown as Record<string, unknown>) };
  let changed = false;
  const convert = (x: Descriptor): Descriptor => {
    const mediaType = toOciMediaType(x.mediaType);
    if (mediaType !== x.mediaType) changed = true;
    return { ...x, mediaType };
  };
  if (parsed.kind === 'index') {
    value.manifests = await Promise.all(parsed.doc.value.manifests.map(async (m) => {
      const next = await toOci(source, writer, m, converted);
      if (next !== m) changed = true;
      return next;
    }));
  } else {
    value.config = convert(parsed.doc.value.config);
    value.layers = parsed.doc.value.layers.map(convert);
  }
  const ownType = toOciMediaType(d.mediaType);
  if (value.mediaType !== undefined) value.mediaType = toOciMediaType(value.mediaType as string);
  if (!changed && ownType === d.mediaType) return d;
  const blob = await writer.putBlob(serializeLike(value, parsed.doc.raw));
  converted.set(d.digest, blob.digest);
  return pointTo(d, { ...blob, mediaType: ownType });
}

