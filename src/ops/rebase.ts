import { Readable } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import { OcikitError } from '../errors.js';
import { digestOf, isDigest, shortDigest, type Digest } from '../model/digest.js';
import { checkAnnotation, formatImageName, parseImageName } from '../model/annotations.js';
import { platformString, pointTo, refNameOf, sameIndexEntry, type Annotations, type Descriptor } from '../model/descriptor.js';
import { parseJson, serializeLike, type Doc } from '../model/document.js';
import type { History } from '../model/image-config.js';
import type { ImageIndex } from '../model/image-index.js';
import { MediaType, isManifestType, mediaTypeInfo, toOciMediaType, type Family } from '../model/media-types.js';
import { fileHasher } from '../hash/file-hasher.js';
import type { Selector } from '../store/reference.js';
import type { BlobRef, Store, StoreWriter } from '../store/store.js';
import type { Image } from './image.js';
import { loadImage } from './image.js';
import {
  BASE_DIGEST, BASE_NAME, BUILDPACKS_METADATA, SYNTHESIZED, basePlatformImage, buildpacksRunImage, findBoundary, findNameInLayouts,
  otherTags, platformOfConfig, repositoryOf, resolveBase, type BaseImage, type BaseSource, type Boundary, type BoundaryMethod, type ResolvedBase,
} from './old-base.js';
import { entryName, plainTag } from './derive/base.js';
import { findReferrers } from './referrers.js';
import { imagesOf, resolveTarget, type PlatformSpec, type Target } from './resolve.js';
import { propagate, retagged, type Propagation, type Replacements } from './rewrite.js';
import { rootNodes, walk, type WalkNode } from '../graph/walk.js';

export interface RebaseOptions {
  /** The image or index to rebase in `store`; its only image when absent. */
  selector?: Selector;
  /** Default: the image's base.name annotation looked up in `baseLayouts`. */
  newBase?: BaseSource;
  /** `--base-name`: base.name for the new base (given the new base's tag when it names none). */
  baseName?: string;
  /** The old base boundary, tried in this order; then base.digest in `baseLayouts`, then buildpacks metadata. */
  oldBase?: BaseSource;
  topLayer?: string;
  baseLayers?: number;
  baseLayouts?: Store[];
  /** Rebase only this platform of an index; the others are kept as they are. */
  platform?: PlatformSpec;
  /** Rebase even when the new base's os/architecture/variant/os.version differ from the image's. */
  force?: boolean;
  /** Write the result as an entry of another index (`-o DEST`); absent: rewrite `store` in place. */
  output?: RebaseOutput;
  onBlob?: (blob: BlobRef) => void;
}

export interface RebaseOutput {
  /** The destination's current index.json, whose other entries are kept. */
  index?: Doc<ImageIndex>;
  /** Tag of the result in the destination; default: the image's own tag. */
  tag?: string;
}

export interface LayerReport {
  digest: Digest;
  size: number;
  mediaType: string;
  diffId: string | undefined;
  from: 'old base' | 'new base' | 'image';
}

export interface PlatformReport {
  platform: string;
  manifest: Digest;
  rebased: Digest;
  config: Digest;
  rebasedConfig: Digest;
  boundary: { method: BoundaryMethod; layers: number; oldBase?: Digest; by?: 'digest' | 'diff_id'; topLayer?: string };
  newBase: { store: string; name: string | undefined; digest: Digest };
  oldLayers: LayerReport[];
  newLayers: LayerReport[];
}

/** One platform image, rebased in memory: the new documents and where their layers come from. */
export interface PlannedImage {
  descriptor: Descriptor;
  manifest: Buffer;
  config: Buffer;
  newBase: BaseImage;
  report: PlatformReport;
}

/** Everything a rebase will write, computed from documents only (what --dry-run prints). */
export interface RebasePlan {
  store: Store;
  target: Target;
  images: PlannedImage[];
  platforms: PlatformReport[];
  warnings: string[];
  /** What was left out and why (base.digest of a made-up docker-save manifest). */
  notes: string[];
}

export interface StaleReferrer {
  referrer: Digest;
  subject: Digest;
  /** How it names its subject: a `subject` field, Docker's attestation annotation, a tag or containerd annotation. */
  via: string;
}

export interface RebaseResult {
  before: Descriptor;
  after: Descriptor;
  platforms: PlatformReport[];
  /** Referrers and attestations naming a replaced document: they describe the old image, not the new one. */
  staleReferrers: StaleReferrer[];
  copied: { blobs: number; bytes: number };
  warnings: string[];
  notes: string[];
}

const PLATFORM_FIELDS = ['architecture', 'os', 'variant', 'os.version'] as const;
const DOCKER_ATTESTATION_SUBJECT = 'vnd.docker.reference.digest';

/** Rebases an image or every platform image of an index, then commits the writer. */
export async function rebase(store: Store, writer: StoreWriter, options: RebaseOptions = {}): Promise<RebaseResult> {
  if (writer.kind === 'oci') fileHasher().prestart(); // the new base's layers are about to be copied and hashed
  return applyRebase(await planRebase(store, options), writer, options);
}

/** Finds the old and new bases and builds the new documents, reading no layer byte and writing nothing. */
export async function planRebase(store: Store, options: RebaseOptions = {}): Promise<RebasePlan> {
  const target = await resolveTarget(store, options.selector);
  const images = uniqueByDigest(await imagesOf(store, target, options.platform));
  if (images.length === 0) throw new OcikitError(`${store.path}: ${shortDigest(target.descriptor.digest)} holds no platform image to rebase`);
  const oldBase = options.oldBase && (await resolveBase(options.oldBase));
  const newBases = newBaseFinder(options);
  const warnings: string[] = [];
  const notes: string[] = [];
  const planned: PlannedImage[] = [];
  for (const { descriptor } of images) {
    const image = await loadImage(store, descriptor);
    const where = `${store.path} ${platformString(platformOfConfig(image))} ${shortDigest(descriptor.digest)}`;
    checkLayerCount(image, where, 'the image');
    const newBase = await basePlatformImage(await newBases(image, where), platformOfConfig(image), 'new base');
    checkLayerCount(newBase, `${newBase.store.path} ${shortDigest(newBase.descriptor.digest)}`, 'the new base');
    await checkLayersPresent(newBase);
    const boundary = await findBoundary(image, where, { ...options, oldBase });
    if (!options.newBase) await refuseOwnBase(image, newBase, boundary, where, options.baseLayouts ?? []);
    const name = newBaseName(newBase, options.baseName, image.manifest.value.annotations?.[BASE_NAME], where, warnings);
    if (newBase.synthesized) notes.push(`${where}: ${BASE_DIGEST} not set: the new base ${newBase.store.path} ${SYNTHESIZED}`);
    planned.push(planImage(image, { ...newBase, name }, boundary, where, options.force ?? false, warnings));
  }
  return { store, target, images: planned, platforms: planned.map((p) => p.report), warnings, notes };
}

/** Found by base.name without --new-base, the image's own base would make the rebase a no-op. */
async function refuseOwnBase(image: Image, newBase: BaseImage, boundary: Boundary, where: string, layouts: Store[]): Promise<void> {
  const own = boundary.oldBase?.descriptor.digest === newBase.descriptor.digest
    || isDeepStrictEqual(newBase.config.value.rootfs.diff_ids, image.config.value.rootfs.diff_ids.slice(0, boundary.layers));
  if (!own) return;
  const name = image.manifest.value.annotations?.[BASE_NAME] ?? '';
  const others = await otherTags(layouts, name, new Set([newBase.descriptor.digest, newBase.entry.digest]));
  const hint = others.length ? `other tags there: ${others.join(', ')}` : `no other tag of ${repositoryOf(name)} is there`;
  throw new OcikitError(`${where}: ${BASE_NAME} ${name} names the image's own base (${shortDigest(newBase.descriptor.digest)} in ${newBase.store.path}), so the rebase would change nothing; pass --new-base REF (${hint})`);
}

/**
 * base.name for the new base: --base-name (given the new base's tag when it names none), the name the
 * base was found by, its entry's full name, or its bare tag under the old base.name's repository. A name
 * that is not fully qualified is recorded with a warning; none at all leaves base.name out.
 */
function newBaseName(base: BaseImage, given: string | undefined, oldName: string | undefined, where: string, warnings: string[]): string | undefined {
  const tag = plainTag(refNameOf(base.entry));
  const name = given !== undefined ? withTag(given, tag) : base.name ?? entryName(base.entry)?.name ?? underRepositoryOf(tag, oldName);
  if (name === undefined) {
    warnings.push(`${where}: ${BASE_NAME} left out: the new base ${base.store.path} names itself ${tag ? `only by the tag ${JSON.stringify(tag)}` : 'by no name'}; pass --base-name REPOSITORY`);
    return undefined;
  }
  for (const problem of checkAnnotation(BASE_NAME, name)) warnings.push(`${where}: ${problem.message}`);
  return name;
}

function withTag(given: string, tag: string | undefined): string {
  const parsed = parseImageName(given);
  if (!parsed) throw new OcikitError(`--base-name ${JSON.stringify(given)} is not an image reference`);
  return parsed.tag === undefined && parsed.digest === undefined && tag ? formatImageName({ ...parsed, tag }) : given;
}

/** A bare tag (`2.0`) is taken for a tag of the old base.name's repository (`example.com/base:2.0`). */
function underRepositoryOf(tag: string | undefined, oldName: string | undefined): string | undefined {
  return tag && oldName && parseImageName(oldName) ? `${repositoryOf(oldName)}:${tag}` : undefined;
}

/** --new-base, or the image's base.name in the --base-layout dirs (a newer tag of the same name). */
function newBaseFinder(options: RebaseOptions): (image: Image, where: string) => Promise<ResolvedBase> {
  const cache = new Map<string, Promise<ResolvedBase>>();
  return async (image, where) => {
    const key = options.newBase ? '' : image.manifest.value.annotations?.[BASE_NAME];
    if (key === undefined) throw new OcikitError(`${where}: no --new-base given, and the manifest has no ${BASE_NAME} annotation to look up in --base-layout dirs`);
    if (!cache.has(key)) cache.set(key, options.newBase ? resolveBase(options.newBase) : byName(key, options.baseLayouts ?? [], where));
    return cache.get(key)!;
  };
}

async function byName(name: string, layouts: Store[], where: string): Promise<ResolvedBase> {
  if (layouts.length === 0) throw new OcikitError(`${where}: no --new-base given; pass it, or --base-layout DIR to look up ${BASE_NAME} ${name}`);
  const found = await findNameInLayouts(layouts, name);
  if (!found) throw new OcikitError(`${where}: ${BASE_NAME} ${name} is in none of ${layouts.map((s) => s.path).join(', ')}; pass --new-base REF`);
  return found;
}

function planImage(image: Image, newBase: BaseImage, boundary: Boundary, where: string, force: boolean, warnings: string[]): PlannedImage {
  checkPlatform(image, newBase, where, force, warnings);
  const k = boundary.layers;
  const family = mediaTypeInfo(image.manifest.value.mediaType ?? image.descriptor.mediaType)?.family ?? 'oci';
  const baseLayers = newBase.manifest.value.layers.map((l, i) => inFamily(l, family, `${where}: new base layer ${i}`));
  const name = newBase.name;
  const config = rebasedConfig(image, newBase, boundary, where, warnings);
  const configRef = { digest: digestOf(config), size: config.length };
  const manifest = rebasedManifest(image, baseLayers, k, configRef, { name, digest: newBase.synthesized ? undefined : newBase.descriptor.digest }, family);
  const diffIds = image.config.value.rootfs.diff_ids;
  const baseDiffIds = newBase.config.value.rootfs.diff_ids;
  const layer = (d: Descriptor, diffId: string | undefined, from: LayerReport['from']): LayerReport => ({ digest: d.digest, size: d.size, mediaType: d.mediaType, diffId, from });
  const report: PlatformReport = {
    platform: platformString(platformOfConfig(image)),
    manifest: image.descriptor.digest,
    rebased: digestOf(manifest),
    config: image.manifest.value.config.digest,
    rebasedConfig: configRef.digest,
    boundary: {
      method: boundary.method, layers: k,
      ...(boundary.oldBase ? { oldBase: boundary.oldBase.descriptor.digest } : {}),
      ...(boundary.by ? { by: boundary.by } : {}),
      ...(boundary.topLayer ? { topLayer: boundary.topLayer } : {}),
    },
    newBase: { store: newBase.store.path, name, digest: newBase.descriptor.digest },
    oldLayers: image.manifest.value.layers.map((l, i) => layer(l, diffIds[i], i < k ? 'old base' : 'image')),
    newLayers: [
      ...baseLayers.map((l, i) => layer(l, baseDiffIds[i], 'new base')),
      ...image.manifest.value.layers.slice(k).map((l, i) => layer(l, diffIds[k + i], 'image')),
    ],
  };
  return { descriptor: image.descriptor, manifest, config, newBase, report };
}

function checkLayerCount(image: Image, where: string, what: string): void {
  const layers = image.manifest.value.layers.length;
  const diffIds = image.config.value.rootfs.diff_ids.length;
  if (layers !== diffIds) throw new OcikitError(`${where}: ${what} has ${layers} layers but ${diffIds} diff_ids in its config`, { exitCode: 1 });
}

/** Fails before anything is written when a new base layer cannot be copied. */
async function checkLayersPresent(base: BaseImage): Promise<void> {
  for (const l of base.manifest.value.layers) {
    if (absentOnPurpose(l) || (await base.store.statBlob(l.digest)) !== undefined) continue;
    throw new OcikitError(`${base.store.path}: new base layer ${l.digest} is missing`);
  }
}

/** Non-distributable and foreign layers are often absent on purpose: their descriptors carry on alone. */
function absentOnPurpose(d: Descriptor): boolean {
  return mediaTypeInfo(d.mediaType)?.nondistributable === true || (d.urls?.length ?? 0) > 0;
}

function checkPlatform(image: Image, newBase: BaseImage, where: string, force: boolean, warnings: string[]): void {
  const differ = PLATFORM_FIELDS.filter((f) => (image.config.value[f] ?? undefined) !== (newBase.config.value[f] ?? undefined));
  if (differ.length === 0) return;
  const message = `${where}: the new base is ${describePlatform(newBase)}, the image ${describePlatform(image)} (${differ.join(', ')} differ)`;
  if (!force) throw new OcikitError(`${message}; pass --force to rebase anyway`, { exitCode: 1 });
  warnings.push(`${message}; the result takes the new base's`);
}

function describePlatform(image: Image): string {
  const version = image.config.value['os.version'];
  return `${platformString(platformOfConfig(image))}${version ? ` (os.version ${version})` : ''}`;
}

const DOCKER_LAYER_TYPES: Record<string, string> = {
  [MediaType.ociLayer]: MediaType.dockerLayer,
  [MediaType.ociLayerGzip]: MediaType.dockerLayerGzip,
  [MediaType.ociNondistLayerGzip]: MediaType.dockerForeignLayerGzip,
};

/** A new base layer named in the image manifest's family: same bytes, the family's media type. */
function inFamily(layer: Descriptor, family: Family, where: string): Descriptor {
  const info = mediaTypeInfo(layer.mediaType);
  if (info?.kind !== 'layer' || info.family === family) return layer;
  if (family === 'oci') return { ...layer, mediaType: toOciMediaType(layer.mediaType) };
  const docker = DOCKER_LAYER_TYPES[layer.mediaType];
  if (!docker) throw new OcikitError(`${where}: ${layer.mediaType} has no Docker schema2 equivalent, and the image has a Docker manifest`);
  return { ...layer, mediaType: docker };
}

/** The image's own config (key order, unknown fields kept) on the new base's rootfs, history and platform. */
function rebasedConfig(image: Image, newBase: BaseImage, boundary: Boundary, where: string, warnings: string[]): Buffer {
  const original = image.config.value;
  const value = structuredClone(original) as Record<string, unknown>;
  const k = boundary.layers;
  const diffIds = [...newBase.config.value.rootfs.diff_ids, ...original.rootfs.diff_ids.slice(k)];
  value.rootfs = { ...(value.rootfs as object), diff_ids: diffIds };
  if (Array.isArray(original.history)) {
    const history = rebasedHistory(original.history, k, boundary.oldBase, newBase);
    const nonEmpty = history.filter((h) => !h.empty_layer).length;
    if (nonEmpty !== diffIds.length) warnings.push(`${where}: the rebased history has ${nonEmpty} layer entries for ${diffIds.length} layers`);
    value.history = history;
  }
  for (const field of PLATFORM_FIELDS) {
    const next = newBase.config.value[field];
    if (next === undefined || next === null) delete value[field];
    else value[field] = next;
  }
  updateBuildpacksLabel(value, newBase, where, warnings);
  return serializeLike(value, image.config.raw);
}

/**
 * New base history, then the image's entries after the old base's. The old base's own history marks
 * the cut when it is the image's first entries; else the cut is after the k-th entry that made a layer,
 * and the empty entries right after it that the old base (or, absent, the new base) ends with too are
 * the base's, not the image's.
 */
function rebasedHistory(history: History[], k: number, oldBase: Image | undefined, newBase: Image): History[] {
  const baseHistory = newBase.config.value.history ?? [];
  const known = oldBase?.config.value.history ?? undefined;
  if (known && isHistoryOf(known, history, k)) return [...baseHistory, ...history.slice(known.length)];
  const rest = history.slice(layerCut(history, k));
  return [...baseHistory, ...rest.slice(baseTailLength(rest, known ?? baseHistory))];
}

function isHistoryOf(baseHistory: History[], history: History[], k: number): boolean {
  return baseHistory.length <= history.length && baseHistory.filter((h) => !h.empty_layer).length === k
    && baseHistory.every((h, i) => isDeepStrictEqual(h, history[i]));
}

function layerCut(history: History[], k: number): number {
  if (k === 0) return 0;
  let layers = 0;
  for (let i = 0; i < history.length; i++) if (!history[i]!.empty_layer && ++layers === k) return i + 1;
  return history.length;
}

/**
 * How many of `rest`'s first entries are the base's trailing empty entries (CMD, ENV), matched by
 * instruction and comment: a rebuilt or re-configured base (umoci config) has new `created` times.
 */
function baseTailLength(rest: History[], baseHistory: History[]): number {
  let start = baseHistory.length;
  while (start > 0 && baseHistory[start - 1]!.empty_layer) start--;
  const tail = baseHistory.slice(start);
  let same = 0;
  while (same < tail.length && same < rest.length && rest[same]!.empty_layer && sameStep(rest[same]!, tail[same]!)) same++;
  return same;
}

function sameStep(a: History, b: History): boolean {
  return a.created_by === b.created_by && a.comment === b.comment;
}

/** Buildpacks' rebaser finds the base by runImage.topLayer next time: keep it and the reference current. */
function updateBuildpacksLabel(config: Record<string, unknown>, newBase: BaseImage, where: string, warnings: string[]): void {
  const labels = (config.config as { Labels?: Record<string, string> | null } | null | undefined)?.Labels;
  const text = labels?.[BUILDPACKS_METADATA];
  if (!labels || typeof text !== 'string') return;
  const metadata = (() => {
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  })();
  const runImage = buildpacksRunImage(text);
  if (!metadata || !runImage) {
    warnings.push(`${where}: the ${BUILDPACKS_METADATA} label has no runImage to update`);
    return;
  }
  const top = newBase.config.value.rootfs.diff_ids.at(-1);
  if (top) runImage.topLayer = top;
  if (newBase.synthesized) delete runImage.reference;
  else runImage.reference = referenceWithDigest(runImage.reference, newBase.name, newBase.descriptor.digest);
  metadata.runImage = runImage;
  labels[BUILDPACKS_METADATA] = JSON.stringify(metadata);
}

function referenceWithDigest(old: unknown, name: string | undefined, digest: Digest): string {
  const from = typeof old === 'string' && old && !isDigest(old) ? old : name && /[/:]/.test(name) ? name : undefined;
  return from ? `${repositoryOf(from)}@${digest}` : digest;
}

function rebasedManifest(
  image: Image, baseLayers: Descriptor[], k: number, config: BlobRef, base: { name: string | undefined; digest: Digest | undefined }, family: Family,
): Buffer {
  const value = structuredClone(image.manifest.value) as Record<string, unknown>;
  value.config = pointTo(image.manifest.value.config, config);
  value.layers = [...baseLayers, ...image.manifest.value.layers.slice(k)];
  // Docker schema2 manifests have no annotations; OCI ones record their base.
  if (family === 'oci' || value.annotations) {
    const annotations: Annotations = { ...(value.annotations as Annotations | undefined) };
    if (base.name) annotations[BASE_NAME] = base.name;
    else delete annotations[BASE_NAME];
    if (base.digest) annotations[BASE_DIGEST] = base.digest;
    else delete annotations[BASE_DIGEST];
    value.annotations = annotations;
  }
  return serializeLike(value, image.manifest.raw);
}

/** Writes the planned documents and rewrites their parents once; copies what the destination lacks; commits. */
export async function applyRebase(plan: RebasePlan, writer: StoreWriter, options: Pick<RebaseOptions, 'output' | 'onBlob'> = {}): Promise<RebaseResult> {
  const docs = new Map<Digest, Buffer>();
  const recording = recordingWriter(writer, docs);
  const replacements: Replacements = new Map();
  for (const p of plan.images) {
    await recording.putBlob(p.config);
    replacements.set(p.descriptor.digest, await recording.putBlob(p.manifest));
  }
  // The target alone as the root: only documents under it are rewritten; index.json is handled below.
  const inTarget = await propagate(plan.store, recording, syntheticRoot(plan.target.descriptor), replacements);
  const after = withPlatformOf(firstEntry(inTarget.index), plan);
  const index = await resultIndex(plan, recording, after, options.output);
  const replaced = new Map([...inTarget.replaced, ...index.replaced]);
  const dangling = [...inTarget.danglingReferrers, ...index.danglingReferrers];
  const staleReferrers = await findStaleReferrers(plan, replaced, dangling, !options.output);
  const copied = await copyReachable(plan, writer, docs, after, options.onBlob);
  await writer.commit(index.index);
  return { before: plan.target.descriptor, after, platforms: plan.platforms, staleReferrers, copied, warnings: plan.warnings, notes: plan.notes };
}

/** A writer that remembers the documents it was given, so the result can be walked before commit. */
function recordingWriter(writer: StoreWriter, docs: Map<Digest, Buffer>): StoreWriter {
  return {
    kind: writer.kind,
    path: writer.path,
    hasBlob: (digest) => writer.hasBlob(digest),
    putBlob: async (data) => {
      const blob = await writer.putBlob(data);
      docs.set(blob.digest, data);
      return blob;
    },
    copyBlob: (from, blob) => writer.copyBlob(from, blob),
    commit: (index) => writer.commit(index),
    abort: () => writer.abort(),
  };
}

function syntheticRoot(target: Descriptor): Doc<ImageIndex> {
  const value: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [target] };
  return { raw: serializeLike(value), value };
}

function firstEntry(indexBytes: Buffer): Descriptor {
  return (parseJson(indexBytes, 'rebased index') as ImageIndex).manifests[0]!;
}

/** A single image's index entry carries its platform: it follows the config when --force changed it. */
function withPlatformOf(entry: Descriptor, plan: RebasePlan): Descriptor {
  const only = plan.images[0];
  if (!entry.platform || !only || !isManifestType(entry.mediaType)) return entry;
  const config = only.newBase.config.value;
  const platform = { ...entry.platform };
  for (const field of PLATFORM_FIELDS) {
    const next = config[field];
    if (next === undefined || next === null) delete platform[field];
    else platform[field] = next;
  }
  return isDeepStrictEqual(platform, entry.platform) ? entry : { ...entry, platform };
}

/** The new index.json: the target's entry (or, nested, its parents) rewritten, or the result added to -o's index. */
async function resultIndex(
  plan: RebasePlan, writer: StoreWriter, after: Descriptor, output: RebaseOutput | undefined,
): Promise<Pick<Propagation, 'index' | 'replaced' | 'danglingReferrers'>> {
  const unchanged = { replaced: new Map<Digest, Digest>(), danglingReferrers: [] };
  if (output) {
    const entry = output.tag ? retagged(after, output.tag, writer.kind) : after;
    const existing = output.index?.value;
    const kept = (existing?.manifests ?? []).filter((d) => !sameIndexEntry(d, entry));
    const index = serializeLike({ ...(existing ?? { schemaVersion: 2, mediaType: MediaType.ociIndex }), manifests: [...kept, entry] }, output.index?.raw);
    return { index, ...unchanged };
  }
  const index = await plan.store.readIndex();
  const position = plan.target.position;
  if (position !== undefined) {
    // Only the entry the user named moves; other tags of the same image keep pointing at it.
    const manifests = index.value.manifests.map((d, i) => (i === position ? after : d));
    return { index: serializeLike({ ...index.value, manifests }, index.raw), ...unchanged };
  }
  const nested: Replacements = new Map([[plan.target.descriptor.digest, { digest: after.digest, size: after.size }]]);
  return propagate(plan.store, writer, index, nested);
}

/**
 * Referrers keep naming the old documents: `subject` fields and Docker attestation annotations inside
 * the target, and (in place) index.json entries that are referrers by any convention.
 */
async function findStaleReferrers(
  plan: RebasePlan, replaced: Map<Digest, Digest>, dangling: Array<{ referrer: Digest; subject: Digest }>, inPlace: boolean,
): Promise<StaleReferrer[]> {
  const stale: StaleReferrer[] = dangling.map((d) => ({ ...d, via: 'subject' }));
  // In place, an attestation may sit in an index above a target named by digest.
  const roots = inPlace ? rootNodes((await plan.store.readIndex()).value) : [rootNode(plan.target.descriptor)];
  await walk(plan.store, roots, (node) => {
    const subject = node.descriptor.annotations?.[DOCKER_ATTESTATION_SUBJECT];
    const known = stale.some((x) => x.referrer === node.descriptor.digest && x.subject === subject);
    if (subject && replaced.has(subject) && !known) stale.push({ referrer: node.descriptor.digest, subject, via: DOCKER_ATTESTATION_SUBJECT });
  });
  if (!inPlace) return stale;
  for (const r of await findReferrers(plan.store, replaced.keys(), { transitive: false })) {
    if (!stale.some((s) => s.referrer === r.descriptor.digest)) stale.push({ referrer: r.descriptor.digest, subject: r.subject, via: r.convention });
  }
  return stale;
}

function rootNode(descriptor: Descriptor): WalkNode {
  return { descriptor, role: 'root', parent: undefined, jsonPath: '$', depth: 0 };
}

/**
 * Every blob the result reaches that the destination lacks: the new base's layers, and (with -o) the
 * image's own blobs. Each is copied from the store that holds it, verified while it streams.
 */
async function copyReachable(
  plan: RebasePlan, writer: StoreWriter, docs: Map<Digest, Buffer>, root: Descriptor, onBlob?: (blob: BlobRef) => void,
): Promise<{ blobs: number; bytes: number }> {
  const sources = new Map<Digest, Store>();
  for (const p of plan.images) for (const l of p.newBase.manifest.value.layers) if (!sources.has(l.digest)) sources.set(l.digest, p.newBase.store);
  const wanted = new Map<Digest, Descriptor>();
  await walk(withDocuments(plan.store, docs), [rootNode(root)], (node) => {
    if (node.role !== 'subject' && !wanted.has(node.descriptor.digest)) wanted.set(node.descriptor.digest, node.descriptor);
  }, { scanConfigs: true });
  const missing: Descriptor[] = [];
  for (const d of wanted.values()) if (!docs.has(d.digest) && !(await writer.hasBlob(d.digest))) missing.push(d);
  const copied = { blobs: 0, bytes: 0 };
  await eachSettled(missing, 4, async (d) => {
    const from = sources.get(d.digest) ?? plan.store;
    if ((await from.statBlob(d.digest)) === undefined) {
      if (absentOnPurpose(d)) return;
      throw new OcikitError(`${from.path}: blob ${d.digest} is missing; nothing was written`);
    }
    const blob = { digest: d.digest, size: d.size };
    await writer.copyBlob(from, blob);
    copied.blobs++;
    copied.bytes += d.size;
    onBlob?.(blob);
  });
  return copied;
}

/** The source store seen with the new documents in it, for walking the result before it is committed. */
function withDocuments(store: Store, docs: Map<Digest, Buffer>): Store {
  return {
    kind: store.kind,
    path: store.path,
    readIndex: () => store.readIndex(),
    statBlob: async (digest) => docs.get(digest)?.length ?? store.statBlob(digest),
    readBlob: async (digest, maxBytes) => {
      const doc = docs.get(digest);
      if (!doc) return store.readBlob(digest, maxBytes);
      if (maxBytes !== undefined && doc.length > maxBytes) throw new OcikitError(`new document ${digest}: ${doc.length} bytes is over the ${maxBytes}-byte limit`);
      return doc;
    },
    openBlob: async (digest) => {
      const doc = docs.get(digest);
      return doc ? Readable.from([doc]) : store.openBlob(digest);
    },
    listBlobs: () => store.listBlobs(),
    close: async () => {},
  };
}

/**
 * Runs `fn` over the items, `limit` at a time. After a failure no new item starts, and the error is
 * thrown only once the running ones settle, so an abort never races a copy still being written.
 */
async function eachSettled<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

function uniqueByDigest<T extends { descriptor: Descriptor }>(items: T[]): T[] {
  const seen = new Set<Digest>();
  return items.filter((i) => !seen.has(i.descriptor.digest) && seen.add(i.descriptor.digest));
}
