import { OcikitError } from '../errors.js';
import { shortDigest, type Digest } from '../model/digest.js';
import { CONTAINERD_IMAGE_NAME, platformString, refNameOf, type Descriptor, type Platform } from '../model/descriptor.js';
import type { ImageIndex } from '../model/image-index.js';
import { isManifestType, mediaTypeInfo } from '../model/media-types.js';
import type { Selector } from '../store/reference.js';
import type { Store } from '../store/store.js';
import { readSubject } from '../graph/children.js';
import { rootNodes, walk, type WalkNode } from '../graph/walk.js';

/** An image or index found in a store, with where it sits in index.json. */
export interface Target {
  descriptor: Descriptor;
  /** Position in index.json's manifests, when the target is a top-level entry. */
  position: number | undefined;
}

/** Finds what a tag or digest names; with no selector, the store's only image. */
export async function resolveTarget(store: Store, selector: Selector | undefined): Promise<Target> {
  const index = (await store.readIndex()).value;
  if (!selector) return onlyImage(store, index);
  if ('tag' in selector) return byTag(store, index, selector.tag);
  return byDigest(store, index, selector.digest);
}

function byTag(store: Store, index: ImageIndex, tag: string): Target {
  let matches = entriesNamed(index, tag);
  // skopeo reads `docker-archive:FILE:NAME` as NAME:latest.
  if (matches.length === 0 && store.kind === 'docker-archive' && !hasTagPart(tag)) matches = entriesNamed(index, `${tag}:latest`);
  const digests = new Set(matches.map((m) => m.descriptor.digest));
  if (digests.size > 1) throw new OcikitError(`${store.path}: tag ${tag} is ambiguous: it names ${[...digests].map(shortDigest).join(', ')}`);
  if (matches.length === 0) throw new OcikitError(`${store.path}: no image tagged ${tag}${tagList(index)}`);
  return matches[0]!;
}

async function byDigest(store: Store, index: ImageIndex, digest: Digest): Promise<Target> {
  const position = index.manifests.findIndex((d) => d.digest === digest);
  if (position >= 0) return { descriptor: index.manifests[position]!, position };
  let found: Descriptor | undefined;
  await walk(store, rootNodes(index), (node) => {
    if (!found && node.descriptor.digest === digest && isDocumentType(node.descriptor.mediaType)) found = node.descriptor;
  });
  if (!found) throw new OcikitError(`${store.path}: no image or index with digest ${digest}`);
  return { descriptor: found, position: undefined };
}

async function onlyImage(store: Store, index: ImageIndex): Promise<Target> {
  let candidates: Target[] = index.manifests.map((descriptor, position) => ({ descriptor, position }));
  if (distinct(candidates) > 1) candidates = await withoutReferrers(store, candidates);
  if (distinct(candidates) === 1) return candidates[0]!;
  if (candidates.length === 0) throw new OcikitError(`${store.path}: holds no image`);
  throw new OcikitError(`${store.path}: holds ${distinct(candidates)} images; name one: ${candidates.map(describeEntry).join(', ')}`);
}

/** Referrers (signatures, SBOMs) stored beside an image are not candidates for "the image". */
async function withoutReferrers(store: Store, candidates: Target[]): Promise<Target[]> {
  const kept: Target[] = [];
  for (const c of candidates) {
    const d = c.descriptor;
    if (d.annotations?.['io.containerd.manifest.subject'] || /^sha256-[a-f0-9]{64}/.test(refNameOf(d) ?? '')) continue;
    if (await readSubject(store, d).catch(() => undefined)) continue;
    kept.push(c);
  }
  return kept;
}

function isDocumentType(mediaType: string): boolean {
  const kind = mediaTypeInfo(mediaType)?.kind;
  return kind === 'index' || kind === 'manifest' || kind === 'artifact';
}

function distinct(targets: Target[]): number {
  return new Set(targets.map((t) => t.descriptor.digest)).size;
}

function entriesNamed(index: ImageIndex, tag: string): Target[] {
  return index.manifests.flatMap((d, position) => (namesOf(d).some((n) => sameName(n, tag)) ? [{ descriptor: d, position }] : []));
}

function hasTagPart(name: string): boolean {
  return name.lastIndexOf(':') > name.lastIndexOf('/');
}

function namesOf(d: Descriptor): string[] {
  return [refNameOf(d), d.annotations?.[CONTAINERD_IMAGE_NAME]].filter((n): n is string => !!n);
}

/** `busybox:latest` names `docker.io/library/busybox:latest` too. */
export function sameName(stored: string, wanted: string): boolean {
  return stored === wanted || familiar(stored) === familiar(wanted);
}

function familiar(name: string): string {
  return name.replace(/^docker\.io\//, '').replace(/^library\//, '');
}

function describeEntry(t: Target): string {
  const name = refNameOf(t.descriptor);
  return name ? `${name} (${shortDigest(t.descriptor.digest)})` : `@${t.descriptor.digest}`;
}

function tagList(index: ImageIndex): string {
  const tags = [...new Set(index.manifests.map(refNameOf).filter(Boolean))];
  return tags.length ? `; tags here: ${tags.join(', ')}` : '';
}

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

export function parsePlatform(text: string): PlatformSpec {
  const [os, architecture, variant, extra] = text.split('/');
  if (!os || !architecture || extra !== undefined) throw new OcikitError(`invalid platform ${JSON.stringify(text)}: expected os/arch[/variant]`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function platformMatches(platform: Platform | undefined, wanted: PlatformSpec): boolean {
  if (!platform) return false;
  return platform.os === wanted.os && platform.architecture === wanted.architecture
    && (wanted.variant === undefined || platform.variant === wanted.variant);
}

/** A platform manifest inside an index (nested indexes too), with the chain of descriptors that leads to it. */
export interface PlatformImage {
  descriptor: Descriptor;
  /** From the target down to this manifest: target first. */
  path: WalkNode[];
}

/**
 * The image manifests a target stands for: itself when it is a manifest, else every platform manifest
 * under it (attestations with platform unknown/unknown are not images), filtered by platform when given.
 */
export async function imagesOf(store: Store, target: Target, platform?: PlatformSpec): Promise<PlatformImage[]> {
  const root: WalkNode = { descriptor: target.descriptor, role: 'root', parent: undefined, jsonPath: `$.manifests[${target.position ?? '?'}]`, depth: 0 };
  if (isManifestType(target.descriptor.mediaType)) return [{ descriptor: target.descriptor, path: [root] }];
  const images: PlatformImage[] = [];
  await walk(store, [root], (node) => {
    if (node.role !== 'child' || !isManifestType(node.descriptor.mediaType)) return;
    const p = node.descriptor.platform;
    if (p?.os === 'unknown' && p.architecture === 'unknown') return;
    if (platform && !platformMatches(p, platform)) return;
    const path: WalkNode[] = [];
    for (let n: WalkNode | undefined = node; n; n = n.parent) path.unshift(n);
    images.push({ descriptor: node.descriptor, path });
  });
  if (platform && images.length === 0) throw new OcikitError(`${store.path}: no ${platformString(platform as Platform)} image in ${shortDigest(target.descriptor.digest)}`);
  return images;
}

