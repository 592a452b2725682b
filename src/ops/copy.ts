import { OcikitError } from '../errors.js';
import { shortDigest, type Digest } from '../model/digest.js';
import { CONTAINERD_IMAGE_NAME, pointTo, refNameOf, sameIndexEntry, withRefName, type Descriptor } from '../model/descriptor.js';
import { serializeLike } from '../model/document.js';
import type { ImageIndex } from '../model/image-index.js';
import { isIndexType, MediaType, mediaTypeInfo, toOciMediaType } from '../model/media-types.js';
import type { Selector } from '../store/reference.js';
import type { BlobRef, Store, StoreWriter } from '../store/store.js';
import { entryRoots, indexRoots, reachability, type Reachability } from './reachability.js';
import { CONTAINERD_SUBJECT, isFallbackTagEntry, listReferrers, referrersOf, type Referrer } from './referrers.js';
import { imagesOf, resolveTarget, type PlatformSpec } from './resolve.js';
import { readDocument } from '../graph/read.js';

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
  /** What the destination cannot hold as asked (several platforms under one docker-archive RepoTag). */
  warnings: string[];
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
  // A new destination gets the source's index.json fields (annotations, unknown ones): their blobs come too.
  const carried = destIndex ? undefined : (await source.readIndex()).value;
  const roots = [...entryRoots([...images, ...extra.map((r) => r.descriptor)]), ...(carried ? indexRoots({ ...carried, manifests: [] }) : [])];
  const reach = await reachability(source, roots, { followSubjects: false, referrers: storable ? all : false });
  const result: CopyResult = {
    entries: [], blobs: 0, bytes: 0, existing: 0, referrers: [], referrersSkipped: 0, danglingReferrers: [], absentExtensionBlobs: [], uncheckedEntries: unchecked, converted: new Map(),
    warnings: writer.kind === 'docker-archive' ? await sharedRepoTags(source, images) : [],
  };
  await copyBlobs(source, writer, reach, options, result);
  if (options.ociMediaTypes) images = await Promise.all(images.map((d) => toOci(source, writer, d, result.converted)));
  const referrers = [...new Set([...extra, ...reach.referrers])].filter((r) => !images.some((d) => d.digest === r.descriptor.digest));
  result.referrers = referrers.map(copiedReferrer);
  result.danglingReferrers = referrers.filter((r) => result.converted.has(r.subject)).map((r) => ({ referrer: r.descriptor.digest, subject: r.subject }));
  if (wanted && !storable) result.referrersSkipped = referrersOf(all, reach.blobs.keys()).length;
  const tag = options.tag && writer.kind === 'docker-archive' ? withLatest(options.tag) : options.tag;
  const entries = dedupe([...images.map((d) => (tag ? withRefName(d, tag, writer.kind) : d)), ...referrers.map(referrerEntry)]);
  await writer.commit(destinationIndex(destIndex ?? carried, destIndex?.manifests ?? [], entries));
  return { ...result, entries };
}

/** The destination's index.json: its fields (or the source's, for a new one), its entries but those the copy replaces, then the copied ones. */
function destinationIndex(fields: ImageIndex | undefined, existing: Descriptor[], entries: Descriptor[]): Buffer {
  const kept = existing.filter((d) => !entries.some((e) => sameIndexEntry(e, d)));
  return serializeLike({ schemaVersion: 2, mediaType: MediaType.ociIndex, ...fields, manifests: [...kept, ...entries] });
}

/** skopeo's `docker-archive:FILE:NAME` is NAME:latest; a RepoTag needs the tag. */
function withLatest(name: string): string {
  return name.lastIndexOf(':') > name.lastIndexOf('/') ? name : `${name}:latest`;
}

/** docker save holds one image per RepoTag: an index of several platforms gives manifest.json entries that share one. */
async function sharedRepoTags(source: Store, images: Descriptor[]): Promise<string[]> {
  const warnings: string[] = [];
  for (const d of images) {
    if (!isIndexType(d.mediaType)) continue;
    const platforms = (await imagesOf(source, { descriptor: d, position: undefined })).length;
    const name = d.annotations?.[CONTAINERD_IMAGE_NAME] ?? refNameOf(d) ?? shortDigest(d.digest);
    if (platforms > 1) warnings.push(`${name}: ${platforms} platform images go into manifest.json under one RepoTag (docker load keeps one); pick one with --platform`);
  }
  return warnings;
}

/** The selected image or index; from a whole layout every index.json entry that is not a referrer. */
async function selectImages(source: Store, selector: Selector | undefined, referrers: Referrer[]): Promise<Descriptor[]> {
  if (selector) return [(await resolveTarget(source, selector)).descriptor];
  const entries = (await source.readIndex()).value.manifests;
  const listed = new Set(referrers.map((r) => r.entry));
  return entries.filter((d, i) => !listed.has(i) && !isFallbackTagEntry(d));
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
      if (mediaTypeInfo(mediaType)?.nondistributable || (Array.isArray(urls) && urls.length > 0)) continue;
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

/** The platform's manifest (nested indexes too), carrying the index entry's tag. */
async function narrowToPlatform(source: Store, d: Descriptor, platform: PlatformSpec): Promise<Descriptor> {
  if (!isIndexType(d.mediaType)) return d;
  const [match] = await imagesOf(source, { descriptor: d, position: undefined }, platform);
  const annotations = d.annotations;
  return annotations ? { ...match!.descriptor, annotations: { ...match!.descriptor.annotations, ...annotations } } : match!.descriptor;
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

