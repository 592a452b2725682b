import { OcikitError } from '../errors.js';
import { isDigest, shortDigest, type Digest } from '../model/digest.js';
import { qualifyImageName } from '../model/annotations.js';
import { CONTAINERD_IMAGE_NAME, platformString, refNameOf, type Descriptor, type Platform } from '../model/descriptor.js';
import { isManifestType } from '../model/media-types.js';
import type { Selector } from '../store/reference.js';
import type { Store } from '../store/store.js';
import { checkBasePrefix, loadImage, type Image } from './image.js';
import { parseReferrerTag } from './referrers.js';
import { imagesOf, resolveTarget, type PlatformImage, type PlatformSpec, type Target } from './resolve.js';

export const BASE_NAME = 'org.opencontainers.image.base.name';
export const BASE_DIGEST = 'org.opencontainers.image.base.digest';
export const BUILDPACKS_METADATA = 'io.buildpacks.lifecycle.metadata';

/** A base image as the user names it: a store and what in it. */
export interface BaseSource {
  store: Store;
  selector?: Selector;
  /** The name to record in base.name (a tag or a full reference). */
  name?: string;
}

/** A base source with its target resolved once, so each platform is only a lookup. */
export interface ResolvedBase {
  source: BaseSource;
  target: Target;
  images: PlatformImage[];
}

/** One platform of a base: the image, the store that holds it, its index.json entry (or nested target). */
export interface BaseImage extends Image {
  store: Store;
  /** The name given for it (BaseSource.name), if any. */
  name: string | undefined;
  entry: Descriptor;
  /** Its manifest is one ocikit made up (a legacy docker-save tarball): the digest exists nowhere else. */
  synthesized: boolean;
}

export async function resolveBase(source: BaseSource): Promise<ResolvedBase> {
  const target = await resolveTarget(source.store, source.selector);
  return { source, target, images: await imagesOf(source.store, target) };
}

/**
 * The base's image for a platform: a single-manifest base is taken as it is (callers compare its
 * config's platform); an index must hold the platform, with the exact variant preferred.
 */
export async function basePlatformImage(base: ResolvedBase, platform: PlatformSpec, role: string): Promise<BaseImage> {
  const { store } = base.source;
  const chosen = isManifestType(base.target.descriptor.mediaType) ? base.target.descriptor : platformManifest(base, platform, role);
  const image = await loadImage(store, chosen);
  return { ...image, store, name: base.source.name, entry: base.target.descriptor, synthesized: isSynthesized(store, chosen.digest) };
}

function platformManifest(base: ResolvedBase, platform: PlatformSpec, role: string): Descriptor {
  const sameArch = base.images.filter((i) => i.descriptor.platform?.os === platform.os && i.descriptor.platform.architecture === platform.architecture);
  const chosen = sameArch.find((i) => (i.descriptor.platform?.variant ?? '') === (platform.variant ?? '')) ?? (sameArch.length === 1 ? sameArch[0] : undefined);
  if (chosen) return chosen.descriptor;
  const held = base.images.map((i) => platformString(i.descriptor.platform)).join(', ') || 'none';
  throw new OcikitError(`${base.source.store.path}: ${role} ${describeTarget(base.target)} has no ${platformString({ ...platform })} image (it has: ${held})`);
}

export function platformOfConfig(image: Image): Platform {
  const { os, architecture, variant } = image.config.value;
  return variant ? { os, architecture, variant } : { os, architecture };
}

export type BoundaryMethod = 'old-base' | 'top-layer' | 'base-layers' | 'annotation' | 'buildpacks';

/** Where the old base ends in an image: its bottom `layers` layers are the old base's. */
export interface Boundary {
  method: BoundaryMethod;
  layers: number;
  /** The old base itself, when it was found (--old-base, or base.digest in a --base-layout). */
  oldBase?: BaseImage;
  /** How the old base's layers were matched against the image's. */
  by?: 'digest' | 'diff_id';
  /** The diff_id the boundary was found by (--top-layer, buildpacks metadata). */
  topLayer?: string;
}

export interface BoundaryOptions {
  oldBase?: ResolvedBase;
  topLayer?: string;
  baseLayers?: number;
  baseLayouts?: Store[];
}

/**
 * Finds the old base's boundary in the order the user can rely on: --old-base, --top-layer,
 * --base-layers, the image's base.digest annotation looked up in --base-layout dirs, buildpacks
 * metadata. What the user named explicitly must work; the automatic ways fall through to the next.
 */
export async function findBoundary(image: Image, where: string, options: BoundaryOptions): Promise<Boundary> {
  if (options.oldBase) {
    const oldBase = await basePlatformImage(options.oldBase, platformOfConfig(image), 'old base');
    return prefixBoundary(image, oldBase, 'old-base', where);
  }
  if (options.topLayer !== undefined) {
    const layers = topLayerBoundary(image, options.topLayer);
    if (layers === undefined) throw new OcikitError(`${where}: --top-layer ${options.topLayer} is not the diff_id of any layer of the image`);
    return { method: 'top-layer', layers, topLayer: options.topLayer };
  }
  if (options.baseLayers !== undefined) {
    const count = image.manifest.value.layers.length;
    if (!Number.isSafeInteger(options.baseLayers) || options.baseLayers < 0 || options.baseLayers > count) {
      throw new OcikitError(`${where}: --base-layers ${options.baseLayers} is not between 0 and the image's ${count} layers`);
    }
    return { method: 'base-layers', layers: options.baseLayers };
  }
  const tried: string[] = [];
  const annotated = await annotationBoundary(image, where, options.baseLayouts ?? [], tried);
  if (annotated) return annotated;
  const buildpacks = buildpacksBoundary(image, tried);
  if (buildpacks) return buildpacks;
  throw new OcikitError(`${where}: cannot tell where the old base ends: ${tried.join('; ')}; pass --old-base REF, --top-layer DIFFID or --base-layers N`);
}

function prefixBoundary(image: Image, oldBase: BaseImage, method: BoundaryMethod, where: string): Boundary {
  const check = checkBasePrefix(image, oldBase);
  if (!check.ok) {
    throw new OcikitError(`${where}: old base ${oldBase.store.path}@${shortDigest(oldBase.descriptor.digest)} is not the bottom of the image: ${check.reason}`, { exitCode: 1 });
  }
  return { method, layers: check.baseLayers, oldBase, by: check.by };
}

/** Layers up to and including the one whose diff_id is `diffId`, as the buildpacks rebaser counts them. */
function topLayerBoundary(image: Image, diffId: string): number | undefined {
  const index = image.config.value.rootfs.diff_ids.indexOf(diffId);
  return index < 0 ? undefined : index + 1;
}

async function annotationBoundary(image: Image, where: string, layouts: Store[], tried: string[]): Promise<Boundary | undefined> {
  const digest = image.manifest.value.annotations?.[BASE_DIGEST];
  if (digest === undefined) {
    tried.push(`the manifest has no ${BASE_DIGEST} annotation`);
    return undefined;
  }
  if (!isDigest(digest)) {
    tried.push(`its ${BASE_DIGEST} annotation ${JSON.stringify(digest)} is not a digest`);
    return undefined;
  }
  if (layouts.length === 0) {
    tried.push(`${BASE_DIGEST} ${shortDigest(digest)} could not be looked up: no --base-layout given`);
    return undefined;
  }
  const found = await findInLayouts(layouts, { digest });
  if (!found) {
    tried.push(`${BASE_DIGEST} ${shortDigest(digest)} is in none of ${layouts.map((s) => s.path).join(', ')}`);
    return undefined;
  }
  const oldBase = await basePlatformImage(found, platformOfConfig(image), 'old base');
  return prefixBoundary(image, oldBase, 'annotation', where);
}

function buildpacksBoundary(image: Image, tried: string[]): Boundary | undefined {
  const text = image.config.value.config?.Labels?.[BUILDPACKS_METADATA];
  if (text === undefined) {
    tried.push(`the config has no ${BUILDPACKS_METADATA} label`);
    return undefined;
  }
  const topLayer = buildpacksRunImage(text)?.topLayer;
  if (typeof topLayer !== 'string') {
    tried.push(`the ${BUILDPACKS_METADATA} label has no runImage.topLayer`);
    return undefined;
  }
  const layers = topLayerBoundary(image, topLayer);
  if (layers === undefined) {
    tried.push(`buildpacks runImage.topLayer ${shortDigest(topLayer)} is not the diff_id of any layer`);
    return undefined;
  }
  return { method: 'buildpacks', layers, topLayer };
}

/** The parsed buildpacks metadata's runImage object, or undefined when the label has none. */
export function buildpacksRunImage(text: string): Record<string, unknown> | undefined {
  try {
    const runImage = (JSON.parse(text) as { runImage?: unknown }).runImage;
    return runImage !== null && typeof runImage === 'object' && !Array.isArray(runImage) ? runImage as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}

/** The first --base-layout that holds what the selector names. */
export async function findInLayouts(layouts: Store[], selector: Selector): Promise<ResolvedBase | undefined> {
  for (const store of layouts) {
    const target = await resolveTarget(store, selector).catch((err) => {
      if (err instanceof OcikitError && /no image (tagged|or index with digest)/.test(err.message)) return undefined;
      throw err;
    });
    if (target) return { source: { store, selector }, target, images: await imagesOf(store, target) };
  }
  return undefined;
}

/**
 * A base.name such as `example.com/base:1.0` in the --base-layout dirs: by the full name (a
 * containerd image name or ref name), else by its tag alone, which is how most layouts tag.
 */
export async function findNameInLayouts(layouts: Store[], name: string): Promise<ResolvedBase | undefined> {
  const full = await findInLayouts(layouts, { tag: name });
  if (full) return { ...full, source: { ...full.source, name } };
  const tag = tagOf(name);
  if (tag === undefined || tag === name) return undefined;
  const byTag = await findInLayouts(layouts, { tag });
  return byTag && { ...byTag, source: { ...byTag.source, name } };
}

/**
 * Tags in the --base-layout dirs that may be other versions of `name`'s repository: entries with a
 * full name of that repository, and bare tags (which the base.name lookup takes for its tags too).
 */
export async function otherTags(layouts: Store[], name: string, except: Set<Digest>): Promise<string[]> {
  const repository = repositoryOf(qualifyImageName(name));
  const found: string[] = [];
  for (const store of layouts) {
    for (const d of (await store.readIndex()).value.manifests) {
      const tag = refNameOf(d);
      if (!tag || except.has(d.digest) || parseReferrerTag(tag)) continue;
      const full = d.annotations?.[CONTAINERD_IMAGE_NAME] ?? (tag.includes('/') ? tag : undefined);
      if (!full || repositoryOf(qualifyImageName(full)) === repository) found.push(`${store.path}:${tag}`);
    }
  }
  return found;
}

/** The tag of `repo:tag` (not the port of `host:5000/repo`); undefined for digest references. */
export function tagOf(name: string): string | undefined {
  if (name.includes('@')) return undefined;
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(colon + 1) : undefined;
}

/** The repository part of `repo:tag` or `repo@digest`. */
export function repositoryOf(name: string): string {
  const at = name.indexOf('@');
  const bare = at >= 0 ? name.slice(0, at) : name;
  const tag = tagOf(bare);
  return tag === undefined ? bare : bare.slice(0, bare.length - tag.length - 1);
}

function nameOf(d: Descriptor): string | undefined {
  return d.annotations?.[CONTAINERD_IMAGE_NAME] ?? refNameOf(d);
}

function describeTarget(target: Target): string {
  const name = nameOf(target.descriptor);
  return name ? `${name} (${shortDigest(target.descriptor.digest)})` : shortDigest(target.descriptor.digest);
}

/** Why a base.digest is left out: the digest of a manifest ocikit made up names nothing anywhere. */
export const SYNTHESIZED = 'is a legacy docker-save tarball: ocikit made its manifest up from manifest.json, so that digest exists in no registry';

/** A legacy docker-save tarball's manifest, made up from manifest.json: it is no stored blob. */
export function isSynthesized(store: Store, digest: Digest): boolean {
  return store.isSynthesized?.(digest) ?? false;
}
