import { OcikitError } from '../../errors.js';
import { ImageAnnotation, parseImageName, qualifyImageName, formatImageName, type Derivation } from '../../model/annotations.js';
import { shortDigest, type Digest } from '../../model/digest.js';
import { CONTAINERD_IMAGE_NAME, platformString, refNameOf, type Descriptor, type Platform } from '../../model/descriptor.js';
import { isIndexType, isManifestType } from '../../model/media-types.js';
import type { Selector } from '../../store/reference.js';
import type { Store } from '../../store/store.js';
import { checkBasePrefix, loadImage, type Image } from '../image.js';
import { isSynthesized, SYNTHESIZED } from '../old-base.js';
import { imagesOf, resolveTarget, type Target } from '../resolve.js';
import { rootNodes, walk } from '../../graph/walk.js';

/** `--base REF`: a base image on disk, and how to name it. */
export interface BaseSource {
  store: Store;
  selector?: Selector;
  /** The reference as the user typed it, for messages. */
  text: string;
  /** `--base-name`: the base's name where its own ref name does not give a full one. */
  name?: string;
  /** `--base-digest`: the platform manifest's digest (default) or the base index's. */
  digest?: 'manifest' | 'index';
}

/** The platform an image is for: its index descriptor's, else its config's. */
export function platformOf(image: Image): Platform {
  if (image.descriptor.platform) return image.descriptor.platform;
  const c = image.config.value;
  return { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) };
}

/**
 * Proves the base is the bottom of the image (its layers a prefix of the image's, per platform) and
 * names it: base.name from `--base-name` or the base's ref name, base.digest its platform manifest
 * (or index) digest. Refuses, naming the first differing layer, when it is not the base.
 */
export async function deriveFromBase(image: Image, base: BaseSource): Promise<Derivation> {
  const target = await resolveTarget(base.store, base.selector);
  const platform = platformOf(image);
  const baseImage = await loadImage(base.store, await manifestFor(base.store, target, platform, base.text));
  refuseOtherPlatform(baseImage, platform, base.text);
  const check = checkBasePrefix(image, baseImage);
  if (!check.ok) {
    throw new OcikitError(`--base ${base.text} is not the base of the ${platformString(platform)} image ${shortDigest(image.descriptor.digest)}: ${check.reason}`, { exitCode: 1 });
  }
  const name = baseName(target.descriptor, base);
  const nameValue = { key: ImageAnnotation.baseName, value: name.value, source: name.source };
  if (isSynthesized(base.store, baseImage.descriptor.digest)) {
    return { derived: [nameValue], notes: [`${ImageAnnotation.baseDigest} not set: --base ${base.text} ${SYNTHESIZED}`] };
  }
  const digest = baseDigest(target, baseImage.descriptor, base);
  const proof = `its ${check.baseLayers} layer(s) are the image's first ${check.baseLayers} (compared by ${check.by})`;
  return {
    derived: [
      nameValue,
      { key: ImageAnnotation.baseDigest, value: digest, source: `--base ${base.text}: the ${base.digest === 'index' ? 'base index' : `${platformString(platform)} base manifest`}; ${proof}` },
    ],
    notes: [],
  };
}

/** A single-manifest base is taken as it is: it must be for the image's platform. */
function refuseOtherPlatform(base: Image, platform: Platform, text: string): void {
  const own = platformOf(base);
  const variants = own.variant === undefined || platform.variant === undefined || own.variant === platform.variant;
  if (own.os === platform.os && own.architecture === platform.architecture && variants) return;
  throw new OcikitError(`--base ${text} is a ${platformString(own)} image, not ${platformString(platform)} like the image`, { exitCode: 1 });
}

/** The base's manifest for a platform: the target itself, or the matching one in its index. */
export async function manifestFor(store: Store, target: Target, platform: Platform, text: string): Promise<Descriptor> {
  if (isManifestType(target.descriptor.mediaType)) return target.descriptor;
  const wanted = { os: platform.os, architecture: platform.architecture, ...(platform.variant ? { variant: platform.variant } : {}) };
  const images = await imagesOf(store, target, wanted).catch((err: unknown) => {
    if (err instanceof OcikitError) throw new OcikitError(`${text}: has no ${platformString(platform)} image`, { exitCode: 1 });
    throw err;
  });
  const exact = images.find((i) => (i.descriptor.platform?.variant ?? undefined) === platform.variant) ?? images[0]!;
  return exact.descriptor;
}

function baseDigest(target: Target, manifest: Descriptor, base: BaseSource): Digest {
  if (base.digest !== 'index') return manifest.digest;
  if (!isIndexType(target.descriptor.mediaType)) throw new OcikitError(`--base-digest index: --base ${base.text} is a single image manifest, not an index`);
  return target.descriptor.digest;
}

/** The base's fully qualified name: `--base-name` (given a tag from the ref name when it has none), else the entry's own name. */
function baseName(entry: Descriptor, base: BaseSource): { value: string; source: string } {
  const own = entryName(entry);
  const tag = plainTag(refNameOf(entry));
  if (base.name) {
    const parsed = parseImageName(base.name);
    if (!parsed) throw new OcikitError(`--base-name ${JSON.stringify(base.name)} is not an image reference`);
    if (parsed.tag === undefined && parsed.digest === undefined && tag) {
      return { value: qualifyImageName(formatImageName({ ...parsed, tag })), source: `--base-name, with the tag ${tag} of --base ${base.text}` };
    }
    return { value: qualifyImageName(base.name), source: '--base-name' };
  }
  if (own) return { value: qualifyImageName(own.name), source: `the ${own.from} of --base ${base.text}` };
  const which = tag ? `only by the tag ${JSON.stringify(tag)}` : 'by no name at all';
  throw new OcikitError(`--base ${base.text} names itself ${which}; pass --base-name REPOSITORY (e.g. registry.example.com/base) to say where it comes from`);
}

/** A full image name stored on an index.json entry (containerd's, or a ref name that is one). */
export function entryName(entry: Descriptor): { name: string; from: string } | undefined {
  const containerd = entry.annotations?.[CONTAINERD_IMAGE_NAME];
  if (containerd && parseImageName(containerd)) return { name: containerd, from: `${CONTAINERD_IMAGE_NAME} annotation` };
  const ref = refNameOf(entry);
  if (ref && ref.includes('/') && parseImageName(ref)) return { name: ref, from: 'ref name' };
  return undefined;
}

/** A ref name that is a tag alone (`1.0`), not a full name. */
export function plainTag(ref: string | undefined): string | undefined {
  return ref && /^[\w][\w.-]{0,127}$/.test(ref) ? ref : undefined;
}

/** A base candidate looked up in the `--base-layout` stores: by digest first, else by its full name. */
export async function findInStores(stores: Store[], name: string, digest: Digest | undefined): Promise<{ store: Store; target: Target } | undefined> {
  for (const store of stores) {
    const index = (await store.readIndex()).value;
    if (digest) {
      const found = await findByDigest(store, index.manifests, digest);
      if (found) return { store, target: found };
    }
    const wanted = stripDigest(qualifyImageName(name));
    const position = index.manifests.findIndex((d) => {
      const own = entryName(d);
      return own !== undefined && stripDigest(qualifyImageName(own.name)) === wanted;
    });
    if (position >= 0) return { store, target: { descriptor: index.manifests[position]!, position } };
  }
  return undefined;
}

async function findByDigest(store: Store, roots: Descriptor[], digest: Digest): Promise<Target | undefined> {
  const position = roots.findIndex((d) => d.digest === digest);
  if (position >= 0) return { descriptor: roots[position]!, position };
  let found: Descriptor | undefined;
  await walk(store, rootNodes({ schemaVersion: 2, manifests: roots }), (node) => {
    if (!found && node.descriptor.digest === digest && (isIndexType(node.descriptor.mediaType) || isManifestType(node.descriptor.mediaType))) found = node.descriptor;
  }, { onError: () => {} });
  return found ? { descriptor: found, position: undefined } : undefined;
}

function stripDigest(name: string): string {
  const at = name.indexOf('@');
  return at >= 0 ? name.slice(0, at) : name;
}
