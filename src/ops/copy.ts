import { OcikitError } from '../errors.js';
import type { Digest } from '../model/digest.js';
import { CONTAINERD_IMAGE_NAME, REF_NAME, pointTo, refNameOf, type Descriptor } from '../model/descriptor.js';
import { serializeLike } from '../model/document.js';
import type { ImageIndex } from '../model/image-index.js';
import { mediaTypeInfo, toOciMediaType } from '../model/media-types.js';
import type { Selector } from '../store/reference.js';
import type { BlobRef, Store, StoreWriter } from '../store/store.js';
import { platformMatches, resolveTarget, type PlatformSpec } from './resolve.js';
import { readDocument, walk, type WalkNode } from './walk.js';

export interface CopyOptions {
  /** What to copy; everything index.json names when absent. */
  selector?: Selector;
  /** Keep only this platform's manifests of an index. */
  platform?: PlatformSpec;
  /** Tag for the copied image in the destination (default: its tag in the source). */
  tag?: string;
  /** Rewrite Docker media types to OCI ones; digests of rewritten documents change. */
  ociMediaTypes?: boolean;
  /** Progress callback: bytes copied so far. */
  onBlob?: (blob: BlobRef) => void;
}

export interface CopyResult {
  entries: Descriptor[];
  blobs: number;
  bytes: number;
  /** Documents rewritten by --oci-media-types: old digest → new digest. */
  converted: Map<Digest, Digest>;
}

/** Copies images with every blob they reach (extension descriptors too), verifying each while it streams. */
export async function copy(source: Store, writer: StoreWriter, destIndex: ImageIndex | undefined, options: CopyOptions = {}): Promise<CopyResult> {
  const sourceIndex = (await source.readIndex()).value;
  let roots = options.selector ? [(await resolveTarget(source, options.selector)).descriptor] : sourceIndex.manifests;
  let result: CopyResult = { entries: [], blobs: 0, bytes: 0, converted: new Map() };
  if (options.platform) roots = await Promise.all(roots.map((d) => narrowToPlatform(source, writer, d, options.platform!)));
  result = await copyBlobs(source, writer, roots, options, result);
  if (options.ociMediaTypes) roots = await Promise.all(roots.map((d) => toOci(source, writer, d, result.converted)));
  const entries = roots.map((d) => withTag(d, options.tag));
  const kept = (destIndex?.manifests ?? []).filter((d) => !entries.some((e) => sameEntry(d, e)));
  const index = { ...(destIndex ?? { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json' }), manifests: [...kept, ...entries] };
  await writer.commit(serializeLike(index));
  return { ...result, entries };
}

/** A full name (`example/app:v2`) is kept as containerd's image name beside the tag, as Docker 25+ does. */
function withTag(d: Descriptor, tag: string | undefined): Descriptor {
  if (!tag) return d;
  const colon = tag.lastIndexOf(':');
  if (!/[/:]/.test(tag) || colon < tag.lastIndexOf('/')) return { ...d, annotations: { ...d.annotations, [REF_NAME]: tag } };
  return { ...d, annotations: { ...d.annotations, [CONTAINERD_IMAGE_NAME]: tag, [REF_NAME]: tag.slice(colon + 1) } };
}

/** An entry is replaced when it carries the same tag, or is the same untagged content. */
function sameEntry(a: Descriptor, b: Descriptor): boolean {
  const ta = refNameOf(a);
  const tb = refNameOf(b);
  return ta !== undefined ? ta === tb : tb === undefined && a.digest === b.digest;
}

async function copyBlobs(source: Store, writer: StoreWriter, roots: Descriptor[], options: CopyOptions, result: CopyResult): Promise<CopyResult> {
  const seen = new Set<Digest>();
  const nodes: WalkNode[] = roots.map((descriptor, i) => ({ descriptor, role: 'root', parent: undefined, jsonPath: `$.manifests[${i}]`, depth: 0 }));
  const blobs: Descriptor[] = [];
  await walk(source, nodes, (node) => {
    if (seen.has(node.descriptor.digest) || node.role === 'subject') return;
    seen.add(node.descriptor.digest);
    blobs.push(node.descriptor);
  }, { scanConfigs: true });
  for (const { digest, size, mediaType, urls } of blobs) {
    const blob = { digest, size };
    if (await writer.hasBlob(digest)) continue;
    if ((await source.statBlob(digest)) === undefined) {
      // Non-distributable and foreign layers are often absent on purpose: their descriptors carry on alone.
      if (mediaTypeInfo(mediaType)?.nondistributable || urls?.length) continue;
      throw new OcikitError(`${source.path}: blob ${digest} is missing; nothing was written`);
    }
    await writer.copyBlob(source, blob);
    result.blobs++;
    result.bytes += blob.size;
    options.onBlob?.(blob);
  }
  return result;
}

/** An index narrowed to one platform is a new index document (the source keeps its own). */
async function narrowToPlatform(source: Store, writer: StoreWriter, d: Descriptor, platform: PlatformSpec): Promise<Descriptor> {
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

