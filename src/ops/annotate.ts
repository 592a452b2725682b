import { resolve as resolvePath } from 'node:path';
import { OcikitError } from '../errors.js';
import { checkAnnotation, ImageAnnotation, type AnnotationProblem, type Derivation, type DerivedAnnotation } from '../model/annotations.js';
import { digestOf, shortDigest, type Digest } from '../model/digest.js';
import { CONTAINERD_IMAGE_NAME, platformString, pointTo, REF_NAME, refNameOf, sameIndexEntry, type Annotations, type Descriptor } from '../model/descriptor.js';
import { DEFAULT_MAX_DOCUMENT_BYTES, parseJson, serializeLike, type Doc } from '../model/document.js';
import type { ImageIndex } from '../model/image-index.js';
import { isIndexType, MediaType, mediaTypeInfo, toOciMediaType } from '../model/media-types.js';
import type { Selector } from '../store/reference.js';
import type { BlobRef, Store, StoreKind, StoreWriter } from '../store/store.js';
import { deriveFromBase, platformOf, type BaseSource } from './derive/base.js';
import { deriveFromBuildinfo } from './derive/buildinfo.js';
import { deriveFromBuildpacks } from './derive/buildpacks.js';
import { deriveFromLabels, deriveLabelSchema } from './derive/labels.js';
import { loadImage, type Image } from './image.js';
import { imagesOf, platformMatches, resolveTarget, type PlatformImage, type PlatformSpec, type Target } from './resolve.js';
import { CONTAINERD_SUBJECT, listReferrers, parseReferrerTag, referrersOf, referrerTagFor, type Referrer, type ReferrerConvention } from './referrers.js';
import { propagate, retagged, type Replacements } from './rewrite.js';
import { jsonDiff } from './text-diff.js';
import { readDocument } from '../graph/read.js';
import { rootNodes, walk } from '../graph/walk.js';

export type AnnotateOn = 'manifest' | 'index' | 'descriptor' | 'all';

export interface AnnotateOptions {
  /** The image or index to annotate; the store's only image when absent. */
  selector?: Selector;
  /** manifest (default): the image manifest, or every platform manifest of an index; index: the index
   * document; descriptor: REF's entry in index.json or its parent index; all: each of these. */
  on?: AnnotateOn;
  /** Only these platforms' manifests (and, with `on: descriptor`, their descriptors in the index). */
  platform?: PlatformSpec | PlatformSpec[];
  /** Explicit values; they win over derived ones. */
  set?: Record<string, string>;
  /** Where each explicit value came from, for the report (default `--set`). */
  setSources?: Record<string, string>;
  unset?: string[];
  /** Copy config labels: true for all, or those starting with one of the prefixes. */
  fromLabels?: boolean | string[];
  labelSchema?: boolean;
  base?: BaseSource;
  /** Picks among several buildinfo sources, and names a `--base` known only by a tag. */
  baseName?: string;
  baseLayouts?: Store[];
  fromBuildinfo?: boolean;
  fromBuildpacks?: boolean;
  /** `now` (SOURCE_DATE_EPOCH when set), `config` (the config's created), or an RFC 3339 date-time. */
  created?: string;
  /** The time `now` stands for (default: SOURCE_DATE_EPOCH, else the clock). */
  now?: Date;
  /** Convert Docker media types to OCI ones in the same run (Docker manifests cannot carry annotations). */
  ociMediaTypes?: boolean;
  /** Re-point referrers at the new digests (their signatures over the old digest no longer verify). */
  moveReferrers?: boolean;
  /** Set values that fail their key's format check. */
  force?: boolean;
  /** Work everything out, write nothing, and return a diff of each changed document. */
  dryRun?: boolean;
  /** Writing with -o: to another tag of the same layout, or to another layout or tarball. */
  output?: AnnotateOutput;
}

export interface AnnotateOutput {
  /** The result's tag; default: the target's own tag. */
  tag?: string;
  /** An existing destination layout's index: its other entries are kept. */
  index?: Doc<ImageIndex>;
}

export interface AnnotationChange {
  key: string;
  /** Absent when the key is new. */
  from?: string;
  /** Absent when the key is removed. */
  to?: string;
  source?: string;
}

export interface DocumentChange {
  role: 'manifest' | 'index' | 'descriptor';
  /** The document (for a descriptor: the document it points to) before the change. */
  digest: Digest;
  /** The document after the change (descriptors: after their holder's rewrite, if any). */
  newDigest: Digest;
  mediaType: string;
  newMediaType: string;
  platform?: string;
  /** For a descriptor: where it is (`index.json $.manifests[0]`, or `sha256:… $.manifests[1]`). */
  holder?: string;
  annotations: AnnotationChange[];
}

/** referrers.ts's conventions, plus BuildKit's attestation entries beside their image in an index. */
export type ReferrerLinkConvention = ReferrerConvention | 'attestation';

export interface ReferrerLink {
  referrer: Digest;
  subject: Digest;
  newSubject: Digest;
  convention: ReferrerLinkConvention;
  moved: boolean;
}

export interface AnnotateResult {
  target: Digest;
  newTarget: Digest;
  /** False when every value was already in place: nothing was written. */
  changed: boolean;
  /** The target's tag was moved in its own layout (the old documents are left unreferenced there). */
  inPlace: boolean;
  dryRun: boolean;
  changes: DocumentChange[];
  /** Every document rewritten, the annotated ones and their parents: old digest → new digest. */
  rewritten: Array<{ from: Digest; to: Digest }>;
  /** Referrers of a rewritten document, moved or not. */
  referrers: ReferrerLink[];
  /** Referrers left pointing at a digest that nothing references any more. */
  danglingReferrers: ReferrerLink[];
  /** What derivations skipped or doubted. */
  notes: string[];
  warnings: string[];
  /** Dry run: a unified diff of each changed document (pretty-printed JSON). */
  diffs: Array<{ name: string; diff: string }>;
  /** Writing to another destination: blobs carried over. */
  copied: { blobs: number; bytes: number };
}

/** One document's (or descriptor's) pending annotation change. */
interface Edit {
  set: Map<string, { value: string; source: string }>;
  unset: Set<string>;
}

interface Plan {
  target: Target;
  images: PlatformImage[];
  manifestEdits: Map<Digest, Edit>;
  indexEdits: Map<Digest, Edit>;
  /** holder index digest → child digest → edit. */
  descriptorEdits: Map<Digest, Map<Digest, Edit>>;
  /** index.json position → edit. */
  rootEdits: Map<number, Edit>;
  /** Documents to rewrite from (the target, and the indexes holding a nested target's descriptor). */
  editRoots: Descriptor[];
  /** Digests on the way from the edit roots to the edited documents. */
  onPath: Set<Digest>;
  platforms: Map<Digest, string>;
  notes: string[];
}

/**
 * Sets, removes and derives annotations on an image, index or descriptor, then rewrites every parent
 * once (bottom-up, index.json last). Reads documents only, never layer bytes. Documents that do not
 * change keep their bytes; changed ones keep key order and unknown fields.
 */
export async function annotate(source: Store, writer: StoreWriter | undefined, options: AnnotateOptions): Promise<AnnotateResult> {
  if (!writer && !options.dryRun) throw new OcikitError('annotate needs a writer unless it is a dry run');
  checkUnsetVersusSet(options);
  const store = memoized(source);
  const rootIndex = await store.readIndex();
  const found = await resolveTarget(store, options.selector);
  const placement = placementOf(source, writer, found, options.output);
  const scope = placement === 'in place' ? { index: rootIndex, target: found, referrers: [], tree: new Set<Digest>() } : await outputScope(store, rootIndex, found);
  const { target } = scope;
  const plan = await planEdits(store, scope.index.value, target, options);
  refuseDockerTypes(plan, options);
  const warnings = checkValues(plan, options.force ?? false);

  const out = new RecordingWriter(options.dryRun ? undefined : writer);
  const outcome = await rewriteAll(store, out, scope.index, plan, options);
  if (options.moveReferrers && outcome.referrers.some((r) => r.moved)) {
    warnings.push(`moved ${outcome.referrers.filter((r) => r.moved).length} referrer(s) to the new digests: signatures made over the old digests no longer verify`);
  }
  const into = placement === 'new tag' ? rootIndex : options.output?.index;
  const written = placement === 'in place' ? { index: outcome.index, carried: rootIndex.value } : outputOf(scope, outcome, options, into, writer?.kind ?? source.kind);
  const replaced = outcome.replaced;
  const result: AnnotateResult = {
    target: target.descriptor.digest,
    newTarget: replaced.get(target.descriptor.digest) ?? target.descriptor.digest,
    changed: !outcome.index.equals(scope.index.raw),
    inPlace: placement === 'in place',
    dryRun: options.dryRun ?? false,
    changes: outcome.changes,
    rewritten: [...replaced].map(([from, to]) => ({ from, to })),
    referrers: outcome.referrers,
    danglingReferrers: outcome.referrers.filter((r) => !r.moved),
    notes: plan.notes,
    warnings,
    diffs: [],
    copied: { blobs: 0, bytes: 0 },
  };
  if (options.dryRun) {
    result.diffs = await diffs(store, out, outcome, (into ?? rootIndex).raw, written.index);
    return result;
  }
  await writeOut(store, writer!, rootIndex, written, result, placement);
  return result;
}

/** In place; the same layout under another tag (the target's own tag stays where it was); another layout or tarball. */
type Placement = 'in place' | 'new tag' | 'elsewhere';

function placementOf(source: Store, writer: StoreWriter | undefined, target: Target, output: AnnotateOutput | undefined): Placement {
  const same = writer ? sameLocation(source, writer) : output === undefined;
  if (!same) return 'elsewhere';
  const names = [refNameOf(target.descriptor), target.descriptor.annotations?.[CONTAINERD_IMAGE_NAME]];
  return output?.tag === undefined || names.includes(output.tag) ? 'in place' : 'new tag';
}

/** What annotate works on: index.json (in place), or the slice of it the output holds. */
interface Scope {
  index: Doc<ImageIndex>;
  target: Target;
  /** Referrers of the target's documents, by their position in `index`. */
  referrers: Referrer[];
  /** The target's manifests and indexes. */
  tree: Set<Digest>;
}

/**
 * Writing elsewhere: an index.json of the target alone (a nested one becomes an entry) and the entries
 * that are its referrers, so nothing outside it is rewritten or carried along.
 */
async function outputScope(store: Store, rootIndex: Doc<ImageIndex>, found: Target): Promise<Scope> {
  const tree = new Set<Digest>();
  await walk(store, rootNodes({ schemaVersion: 2, manifests: [found.descriptor] }), (node) => {
    if (node.role === 'root' || node.role === 'child') tree.add(node.descriptor.digest);
  }, { onError: () => {} });
  const all = await listReferrers(store, { onError: () => {} });
  const referrers = referrersOf(all, tree).filter((r) => r.entry !== found.position);
  const positions = [...new Set(referrers.map((r) => r.entry))].sort((a, b) => a - b);
  const value: ImageIndex = { ...rootIndex.value, manifests: [found.descriptor, ...positions.map((p) => rootIndex.value.manifests[p]!)] };
  return {
    index: { value, raw: serializeLike(value, rootIndex.raw) },
    target: { descriptor: found.descriptor, position: 0 },
    referrers: referrers.map((r) => ({ ...r, entry: positions.indexOf(r.entry) + 1 })),
    tree,
  };
}

/** The output's index.json, and the old entries its blobs are walked from. */
function outputOf(
  scope: Scope, outcome: Outcome, options: AnnotateOptions, into: Doc<ImageIndex> | undefined, kind: StoreKind,
): { index: Buffer; carried: ImageIndex } {
  const kept = keptEntries(scope, outcome, options);
  const entries = (parseJson(outcome.index, 'index.json') as ImageIndex).manifests;
  const tag = options.output?.tag;
  const next = kept.map((i) => (i === 0 && tag ? retagged(entries[0]!, tag, kind) : entries[i]!));
  return { index: outputIndex(into, next), carried: { ...scope.index.value, manifests: kept.map((i) => scope.index.value.manifests[i]!) } };
}

/** Positions in the scope's index the output keeps: the target, and the referrers that still name what it holds. */
function keptEntries(scope: Scope, outcome: Outcome, options: AnnotateOptions): number[] {
  const renamed = (d: Digest) => outcome.replaced.get(d) ?? d;
  const move = options.moveReferrers ?? false;
  const after = scope.referrers.map((r) => ({ ...r, subject: move ? renamed(r.subject) : r.subject, descriptor: { ...r.descriptor, digest: renamed(r.descriptor.digest) } }));
  const kept = new Set(referrersOf(after, [...scope.tree].map(renamed)).map((r) => r.entry));
  return [0, ...[...kept].sort((a, b) => a - b)];
}

interface Outcome {
  /** The new index.json bytes (the old ones when nothing changed). */
  index: Buffer;
  /** Every document rewritten, annotated or parent: old digest → new digest. */
  replaced: Map<Digest, Digest>;
  changes: DocumentChange[];
  referrers: ReferrerLink[];
}

/** The edited documents bottom-up, then their parents once (propagate), then index.json's referrer links. */
async function rewriteAll(store: Store, out: StoreWriter, rootIndex: Doc<ImageIndex>, plan: Plan, options: AnnotateOptions): Promise<Outcome> {
  const move = options.moveReferrers ?? false;
  const rewriter = new Rewriter(store, out, plan, options);
  for (const root of plan.editRoots) await rewriter.rewrite(root);
  const rootDoc = applyRootEdits(rootIndex, plan, rewriter.changes);
  const byTag = options.selector !== undefined && 'tag' in options.selector;
  const onlyEntry = byTag ? plan.target.position : undefined;
  const propagation = await propagate(store, out, rootDoc, rewriter.replacements(), { moveReferrers: move, onlyEntry });
  const fromIndexJson = indexJsonReferrers(propagation.index, propagation.replaced, move);
  const fromSubjects = await subjectReferrers(store, rootIndex.value, propagation.replaced, move);
  settleDescriptorDigests(rewriter.changes, propagation.replaced);
  return {
    index: fromIndexJson.index,
    replaced: propagation.replaced,
    changes: rewriter.changes,
    referrers: [...rewriter.attestations, ...fromIndexJson.links, ...fromSubjects],
  };
}

/** Commits (in place, nothing at all when nothing changed), carrying the blobs the output reaches over where needed. */
async function writeOut(
  store: Store, writer: StoreWriter, rootIndex: Doc<ImageIndex>, written: { index: Buffer; carried: ImageIndex }, result: AnnotateResult, placement: Placement,
): Promise<void> {
  if (placement === 'in place' && written.index.equals(rootIndex.raw)) {
    await writer.abort();
    return;
  }
  if (writer.kind === 'docker-archive') {
    result.warnings.push('docker-save readers that go by manifest.json (skopeo docker-archive:, the classic docker load) do not see annotations; the tarball\'s index.json and manifests carry them');
  }
  // An archive rewritten in place already carries its blobs (hasBlob says so); a directory in place needs no walk.
  const replaced = new Map(result.rewritten.map((r) => [r.from, r.to]));
  if (placement === 'elsewhere' || writer.kind !== 'oci') result.copied = await carryBlobs(store, writer, written.carried, replaced);
  await writer.commit(written.index);
}

// ---------------------------------------------------------------------------
// Planning: which documents and descriptors change, and to what
// ---------------------------------------------------------------------------

async function planEdits(store: Store, rootIndex: ImageIndex, target: Target, options: AnnotateOptions): Promise<Plan> {
  const on = options.on ?? 'manifest';
  const isIndex = isIndexType(target.descriptor.mediaType);
  if (on === 'index' && !isIndex) throw new OcikitError(`--on index: ${shortDigest(target.descriptor.digest)} is an image manifest (${target.descriptor.mediaType}), not an index`);
  const platforms = options.platform === undefined ? [] : [options.platform].flat();
  const images = await selectImages(store, target, platforms);
  if (images.length === 0 && (on === 'manifest' || on === 'all' || wantsDerivation(options))) {
    throw new OcikitError(`${store.path}: ${shortDigest(target.descriptor.digest)} holds no image manifest to annotate`);
  }
  const notes: string[] = [];
  const derived = wantsDerivation(options) ? await deriveAll(store, images, options, notes) : new Map<Digest, DerivedAnnotation[]>();
  const explicit = explicitEdit(options);
  const editFor = (image: PlatformImage): Edit => withDerived(explicit, derived.get(image.descriptor.digest) ?? []);
  const shared = withDerived(explicit, commonDerived(images, derived, notes, isIndex && on !== 'manifest'));

  const plan: Plan = {
    target, images, manifestEdits: new Map(), indexEdits: new Map(), descriptorEdits: new Map(), rootEdits: new Map(),
    editRoots: [target.descriptor], onPath: new Set([target.descriptor.digest]), platforms: new Map(), notes,
  };
  for (const image of images) {
    for (const node of image.path) plan.onPath.add(node.descriptor.digest);
    const platform = platformString(image.descriptor.platform);
    if (platform) plan.platforms.set(image.descriptor.digest, platform);
  }
  if (on === 'manifest' || on === 'all') for (const image of images) plan.manifestEdits.set(image.descriptor.digest, editFor(image));
  if (on === 'index') plan.indexEdits.set(target.descriptor.digest, shared);
  if (on === 'all') {
    for (const image of images) for (const node of image.path.slice(0, -1)) plan.indexEdits.set(node.descriptor.digest, shared);
    if (isIndex) plan.indexEdits.set(target.descriptor.digest, shared);
  }
  if (on === 'descriptor' || on === 'all') await planDescriptorEdits(store, rootIndex, plan, options, isIndex ? shared : editFor(images[0]!), editFor);
  return plan;
}

async function planDescriptorEdits(
  store: Store, rootIndex: ImageIndex, plan: Plan, options: AnnotateOptions, edit: Edit, editFor: (image: PlatformImage) => Edit,
): Promise<void> {
  const { target } = plan;
  if ([options.platform ?? []].flat().length > 0 && isIndexType(target.descriptor.mediaType)) {
    // The platforms' own entries in the index, rather than the index's entry.
    for (const image of plan.images) {
      const holder = image.path.at(-2)!.descriptor.digest;
      const edits = plan.descriptorEdits.get(holder) ?? new Map<Digest, Edit>();
      edits.set(image.descriptor.digest, editFor(image));
      plan.descriptorEdits.set(holder, edits);
    }
    return;
  }
  if (target.position !== undefined) {
    plan.rootEdits.set(target.position, edit);
    return;
  }
  // A nested target: its entry in every index that holds it.
  await walk(store, rootNodes(rootIndex), (node) => {
    if (node.descriptor.digest !== target.descriptor.digest || node.role !== 'child' || !node.parent) return;
    const holder = node.parent.descriptor;
    const edits = plan.descriptorEdits.get(holder.digest) ?? new Map<Digest, Edit>();
    edits.set(target.descriptor.digest, edit);
    plan.descriptorEdits.set(holder.digest, edits);
    if (!plan.editRoots.some((d) => d.digest === holder.digest)) plan.editRoots.push(holder);
    plan.onPath.add(holder.digest);
  });
}

/** The target's platform manifests, those of the wanted platforms when any are named (each must match one). */
async function selectImages(store: Store, target: Target, platforms: PlatformSpec[]): Promise<PlatformImage[]> {
  if (platforms.length === 0) return imagesOf(store, target);
  if (!isIndexType(target.descriptor.mediaType)) return [await singleImageFor(store, target, platforms)];
  const selected = new Map<Digest, PlatformImage>();
  for (const platform of platforms) for (const image of await imagesOf(store, target, platform)) selected.set(image.descriptor.digest, image);
  return [...selected.values()];
}

/** A single image is for its descriptor's platform, else (as most index.json entries have none) its config's. */
async function singleImageFor(store: Store, target: Target, platforms: PlatformSpec[]): Promise<PlatformImage> {
  const [image] = await imagesOf(store, target);
  const own = platformOf(await loadImage(store, target.descriptor));
  const wanted = platforms.find((p) => platformMatches(own, p));
  if (!wanted) throw new OcikitError(`--platform ${platforms.map((p) => platformString(p as Descriptor['platform'])).join(',')}: ${shortDigest(target.descriptor.digest)} is a ${platformString(own)} image`);
  return image!;
}

function explicitEdit(options: AnnotateOptions): Edit {
  const set = new Map<string, { value: string; source: string }>();
  for (const [key, value] of Object.entries(options.set ?? {})) set.set(key, { value, source: options.setSources?.[key] ?? '--set' });
  return { set, unset: new Set(options.unset ?? []) };
}

function checkUnsetVersusSet(options: AnnotateOptions): void {
  const both = (options.unset ?? []).filter((k) => Object.hasOwn(options.set ?? {}, k));
  if (both.length) throw new OcikitError(`${both[0]} is both set and unset`);
}

/** Derived values first, explicit ones over them; unset keys are never derived back. */
function withDerived(explicit: Edit, derived: DerivedAnnotation[]): Edit {
  const set = new Map<string, { value: string; source: string }>();
  for (const d of derived) if (!explicit.unset.has(d.key)) set.set(d.key, { value: d.value, source: d.source });
  for (const [key, value] of explicit.set) set.set(key, value);
  return { set, unset: explicit.unset };
}

/** For an index or its descriptor: derived values that every platform agrees on. */
function commonDerived(images: PlatformImage[], derived: Map<Digest, DerivedAnnotation[]>, notes: string[], report: boolean): DerivedAnnotation[] {
  if (images.length === 0 || derived.size === 0) return [];
  const [first, ...rest] = images.map((i) => derived.get(i.descriptor.digest) ?? []);
  const common: DerivedAnnotation[] = [];
  for (const d of first!) {
    if (rest.every((list) => list.some((o) => o.key === d.key && o.value === d.value))) {
      common.push(images.length > 1 ? { ...d, source: `${d.source} (the same for all ${images.length} platforms)` } : d);
    } else if (report) {
      notes.push(`${d.key} differs between platforms: set on each manifest, not on the index`);
    }
  }
  return common;
}

function wantsDerivation(options: AnnotateOptions): boolean {
  return !!(options.fromLabels || options.labelSchema || options.base || options.fromBuildinfo || options.fromBuildpacks || options.created);
}

/** Derivations per platform image, in rising precedence (a later one overrides an earlier one). */
async function deriveAll(store: Store, images: PlatformImage[], options: AnnotateOptions, notes: string[]): Promise<Map<Digest, DerivedAnnotation[]>> {
  const out = new Map<Digest, DerivedAnnotation[]>();
  const found = new Map<string, { values: number; notes: string[] }>();
  for (const at of images) {
    const image = await loadImage(store, at.descriptor);
    const where = `${platformString(platformOf(image))} ${shortDigest(at.descriptor.digest)}`;
    const merged = new Map<string, DerivedAnnotation>();
    for (const [flag, derivation] of await derivationsFor(store, image, at, options)) {
      for (const d of derivation.derived) merged.set(d.key, d);
      const stepNotes = derivation.notes.map((n) => `${where}: ${n}`);
      notes.push(...stepNotes);
      const tally = found.get(flag) ?? { values: 0, notes: [] };
      tally.values += derivation.derived.length;
      tally.notes.push(...stepNotes);
      found.set(flag, tally);
    }
    out.set(at.descriptor.digest, [...merged.values()]);
  }
  for (const [flag, tally] of found) {
    // Label copies may rightly find nothing; a base or source that cannot be found is a failed check.
    if (tally.values === 0 && (flag === '--from-buildinfo' || flag === '--from-buildpacks')) throw new OcikitError(`${flag} found nothing to derive: ${tally.notes.join('; ') || 'no metadata'}`, { exitCode: 1 });
  }
  return out;
}

async function derivationsFor(store: Store, image: Image, at: PlatformImage, options: AnnotateOptions): Promise<Array<[string, Derivation]>> {
  const labels = image.config.value.config?.Labels ?? {};
  const steps: Array<[string, Derivation]> = [];
  if (options.labelSchema) steps.push(['--label-schema', deriveLabelSchema(labels, image.manifest.value.annotations ?? {})]);
  if (options.fromLabels) steps.push(['--from-labels', deriveFromLabels(labels, Array.isArray(options.fromLabels) ? options.fromLabels : [])]);
  if (options.fromBuildpacks) steps.push(['--from-buildpacks', deriveFromBuildpacks(labels, image.config.value.rootfs.diff_ids)]);
  if (options.fromBuildinfo) {
    const buildinfo = await deriveFromBuildinfo(store, image, at, { baseLayouts: options.baseLayouts ?? [], baseName: options.baseName });
    steps.push(['--from-buildinfo', buildinfo]);
  }
  if (options.base) steps.push(['--base', await deriveFromBase(image, { ...options.base, name: options.base.name ?? options.baseName })]);
  if (options.created) steps.push(['--created', createdFor(image, options)]);
  return steps;
}

function createdFor(image: Image, options: AnnotateOptions): Derivation {
  const spec = options.created!;
  if (spec === 'config') {
    const created = image.config.value.created;
    if (!created) throw new OcikitError(`--created config: the config of ${shortDigest(image.descriptor.digest)} has no created time`);
    return { derived: [{ key: ImageAnnotation.created, value: created, source: 'the config\'s created time (--created config)' }], notes: [] };
  }
  if (spec !== 'now') return { derived: [{ key: ImageAnnotation.created, value: spec, source: '--created' }], notes: [] };
  const { date, source } = clock(options.now);
  return { derived: [{ key: ImageAnnotation.created, value: date.toISOString().replace(/\.\d{3}Z$/, 'Z'), source }], notes: [] };
}

function clock(now: Date | undefined): { date: Date; source: string } {
  if (now) return { date: now, source: '--created now' };
  const epoch = process.env.SOURCE_DATE_EPOCH;
  if (epoch !== undefined && epoch !== '') {
    if (!/^\d+$/.test(epoch)) throw new OcikitError(`SOURCE_DATE_EPOCH=${JSON.stringify(epoch)} is not a number of seconds`);
    return { date: new Date(Number(epoch) * 1000), source: `--created now with SOURCE_DATE_EPOCH=${epoch}` };
  }
  return { date: new Date(), source: '--created now (the current time)' };
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/** Docker schema2 documents have no annotations field: refuse, unless converting to OCI in this run. */
function refuseDockerTypes(plan: Plan, options: AnnotateOptions): void {
  if (options.ociMediaTypes) return;
  const holders: Array<{ digest: Digest; mediaType: string }> = [];
  for (const image of plan.images) if (plan.manifestEdits.has(image.descriptor.digest)) holders.push(image.descriptor);
  const indexes = new Map<Digest, string>();
  for (const image of plan.images) for (const node of image.path) indexes.set(node.descriptor.digest, node.descriptor.mediaType);
  for (const d of plan.editRoots) indexes.set(d.digest, d.mediaType);
  for (const digest of [...plan.indexEdits.keys(), ...plan.descriptorEdits.keys()]) holders.push({ digest, mediaType: indexes.get(digest) ?? '' });
  const docker = holders.find((h) => mediaTypeInfo(h.mediaType)?.family === 'docker');
  if (docker) {
    throw new OcikitError(`${shortDigest(docker.digest)} is a Docker ${mediaTypeInfo(docker.mediaType)!.kind === 'index' ? 'manifest list' : 'manifest'} (${docker.mediaType}), which has no annotations; add --oci-media-types to convert it to OCI media types in the same run (its digest changes)`);
  }
}

/** Format errors stop the run unless forced; key style problems are warnings. */
function checkValues(plan: Plan, force: boolean): string[] {
  const edits = [...plan.manifestEdits.values(), ...plan.indexEdits.values(), ...plan.rootEdits.values(), ...[...plan.descriptorEdits.values()].flatMap((m) => [...m.values()])];
  const seen = new Set<string>();
  const errors: Array<AnnotationProblem & { source: string }> = [];
  const warnings: string[] = [];
  for (const edit of edits) {
    for (const [key, { value, source }] of edit.set) {
      for (const problem of checkAnnotation(key, value)) {
        if (seen.has(problem.message)) continue;
        seen.add(problem.message);
        if (problem.severity === 'error' && !(force && key !== '')) errors.push({ ...problem, source });
        else warnings.push(problem.severity === 'error' ? `${problem.message} (set anyway: --force)` : problem.message);
      }
    }
  }
  if (errors.length) {
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
    throw new OcikitError(`${errors[0]!.message} (from ${errors[0]!.source})${more}; --force sets it anyway`);
  }
  return warnings;
}

// ---------------------------------------------------------------------------
// Rewriting: the edited documents bottom-up, below and including the edit roots
// ---------------------------------------------------------------------------

type NewBlob = BlobRef & { mediaType?: string };

const ATTESTATION_TYPE = 'vnd.docker.reference.type';
const MAX_DEPTH = 32;
const ATTESTATION_SUBJECT = 'vnd.docker.reference.digest';

class Rewriter {
  readonly changes: DocumentChange[] = [];
  readonly attestations: ReferrerLink[] = [];
  private readonly done = new Map<Digest, Promise<NewBlob | null>>();

  constructor(private readonly store: Store, private readonly writer: StoreWriter, private readonly plan: Plan, private readonly options: AnnotateOptions) {}

  /** `ancestors`: the documents above this one, to refuse a loop rather than wait on itself. */
  rewrite(d: Descriptor, ancestors: readonly Digest[] = []): Promise<NewBlob | null> {
    if (ancestors.includes(d.digest) || ancestors.length > MAX_DEPTH) {
      return Promise.reject(new OcikitError(`index nesting loops or is deeper than ${MAX_DEPTH} at ${d.digest}`));
    }
    let pending = this.done.get(d.digest);
    if (!pending) {
      pending = this.rewriteDocument(d, [...ancestors, d.digest]);
      this.done.set(d.digest, pending);
    }
    return pending;
  }

  /** Old digest → new blob, for every document that changed. */
  replacements(): Replacements {
    return this.settled;
  }

  private readonly settled: Replacements = new Map();

  private async rewriteDocument(d: Descriptor, ancestors: Digest[]): Promise<NewBlob | null> {
    const parsed = await readDocument(this.store, d);
    if (!parsed || parsed.kind === 'config') return null;
    const value = parsed.doc.value as unknown as Record<string, unknown>;
    const copy = new LazyCopy(value);
    const convert = this.options.ociMediaTypes ?? false;
    if (convert) convertOwnFields(copy, parsed.kind);
    if (parsed.kind === 'index') await this.rewriteChildren(d, copy, ancestors);
    const edit = (parsed.kind === 'index' ? this.plan.indexEdits : this.plan.manifestEdits).get(d.digest);
    const applied = edit ? applyEdit(value.annotations as Annotations | undefined, edit) : undefined;
    if (applied) copy.set('annotations', applied.next);
    if (!copy.changed) return null;
    const raw = serializeLike(copy.value, parsed.doc.raw);
    if (raw.length > DEFAULT_MAX_DOCUMENT_BYTES) {
      throw new OcikitError(`${shortDigest(d.digest)} would grow to ${raw.length} bytes, over the ${DEFAULT_MAX_DOCUMENT_BYTES}-byte limit readers put on manifests and indexes`);
    }
    const blob = await this.writer.putBlob(raw);
    const mediaType = convert ? toOciMediaType(d.mediaType) : d.mediaType;
    const result: NewBlob = mediaType !== d.mediaType ? { ...blob, mediaType } : blob;
    this.settled.set(d.digest, result);
    if (applied) {
      this.changes.push({
        role: parsed.kind, digest: d.digest, newDigest: blob.digest, mediaType: d.mediaType, newMediaType: mediaType,
        platform: this.plan.platforms.get(d.digest), annotations: applied.changes,
      });
    }
    return result;
  }

  private async rewriteChildren(holder: Descriptor, copy: LazyCopy, ancestors: Digest[]): Promise<void> {
    const children = copy.original.manifests as Descriptor[];
    const edits = this.plan.descriptorEdits.get(holder.digest);
    const renamed = new Map<Digest, Digest>();
    const next = await Promise.all(children.map(async (child, i) => {
      let c = child;
      if (this.shouldDescend(child)) {
        const r = await this.rewrite(child, ancestors);
        if (r) {
          c = pointTo(c, r);
          renamed.set(child.digest, r.digest);
        }
      }
      const edit = edits?.get(child.digest);
      const applied = edit ? applyEdit(c.annotations, edit) : undefined;
      if (applied) {
        c = withAnnotations(c, applied.next);
        this.changes.push({
          role: 'descriptor', digest: child.digest, newDigest: c.digest, mediaType: child.mediaType, newMediaType: c.mediaType,
          platform: platformString(child.platform) || undefined, holder: `${holder.digest} $.manifests[${i}]`, annotations: applied.changes,
        });
      }
      return c;
    }));
    const linked = next.map((c) => this.relinkAttestation(c, renamed));
    if (linked.some((c, i) => c !== children[i])) copy.set('manifests', linked);
  }

  /** BuildKit keeps attestations beside their image in the index, linked by a descriptor annotation. */
  private relinkAttestation(c: Descriptor, renamed: Map<Digest, Digest>): Descriptor {
    const subject = c.annotations?.[ATTESTATION_SUBJECT];
    if (c.annotations?.[ATTESTATION_TYPE] !== 'attestation-manifest' || !subject || !renamed.has(subject)) return c;
    const newSubject = renamed.get(subject)!;
    const moved = this.options.moveReferrers ?? false;
    this.attestations.push({ referrer: c.digest, subject, newSubject, convention: 'attestation', moved });
    return moved ? withAnnotations(c, { ...c.annotations, [ATTESTATION_SUBJECT]: newSubject }) : c;
  }

  private shouldDescend(child: Descriptor): boolean {
    if (this.plan.onPath.has(child.digest)) return true;
    const info = mediaTypeInfo(child.mediaType);
    return !!this.options.ociMediaTypes && info?.family === 'docker' && (info.kind === 'index' || info.kind === 'manifest');
  }
}

/** A shallow copy made on the first change, so unchanged documents are never re-serialized. */
class LazyCopy {
  private copy: Record<string, unknown> | undefined;
  constructor(readonly original: Record<string, unknown>) {}
  get changed(): boolean {
    return this.copy !== undefined;
  }
  get value(): Record<string, unknown> {
    return this.copy ?? this.original;
  }
  set(key: string, value: unknown): void {
    this.copy ??= { ...this.original };
    if (value === undefined) delete this.copy[key];
    else defineOwn(this.copy, key, value);
  }
}

function convertOwnFields(copy: LazyCopy, kind: 'index' | 'manifest'): void {
  const v = copy.original;
  if (typeof v.mediaType === 'string' && toOciMediaType(v.mediaType) !== v.mediaType) copy.set('mediaType', toOciMediaType(v.mediaType));
  if (kind !== 'manifest') return;
  const convert = (d: Descriptor): Descriptor => (toOciMediaType(d.mediaType) === d.mediaType ? d : { ...d, mediaType: toOciMediaType(d.mediaType) });
  const config = v.config as Descriptor;
  if (convert(config) !== config) copy.set('config', convert(config));
  const layers = v.layers as Descriptor[];
  const next = layers.map(convert);
  if (next.some((l, i) => l !== layers[i])) copy.set('layers', next);
}

/** The annotations after an edit, or undefined when the edit changes nothing. */
function applyEdit(current: Annotations | undefined, edit: Edit): { next: Annotations | undefined; changes: AnnotationChange[] } | undefined {
  const next: Annotations = { ...current };
  const changes: AnnotationChange[] = [];
  for (const key of edit.unset) {
    if (!Object.hasOwn(next, key)) continue;
    changes.push({ key, from: next[key] });
    delete next[key];
  }
  for (const [key, { value, source }] of edit.set) {
    if (Object.hasOwn(next, key) && next[key] === value) continue;
    changes.push({ key, ...(Object.hasOwn(next, key) ? { from: next[key] } : {}), to: value, source });
    defineOwn(next, key, value);
  }
  if (changes.length === 0) return undefined;
  return { next: Object.keys(next).length > 0 ? next : undefined, changes };
}

function withAnnotations(d: Descriptor, annotations: Annotations | undefined): Descriptor {
  const next: Descriptor = { ...d };
  if (annotations) defineOwn(next, 'annotations', annotations);
  else delete next.annotations;
  return next;
}

/** Assignment that treats `__proto__` as the plain key JSON says it is. */
function defineOwn(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function applyRootEdits(rootIndex: Doc<ImageIndex>, plan: Plan, changes: DocumentChange[]): Doc<ImageIndex> {
  if (plan.rootEdits.size === 0) return rootIndex;
  const manifests = rootIndex.value.manifests.map((d, i) => {
    const edit = plan.rootEdits.get(i);
    const applied = edit ? applyEdit(d.annotations, edit) : undefined;
    if (!applied) return d;
    changes.push({
      role: 'descriptor', digest: d.digest, newDigest: d.digest, mediaType: d.mediaType, newMediaType: d.mediaType,
      platform: platformString(d.platform) || undefined, holder: `index.json $.manifests[${i}]`, annotations: applied.changes,
    });
    return withAnnotations(d, applied.next);
  });
  const value = { ...rootIndex.value, manifests };
  return { value, raw: serializeLike(value, rootIndex.raw) };
}

/** Descriptor changes learn their final digests once the parents are written. */
function settleDescriptorDigests(changes: DocumentChange[], replaced: Map<Digest, Digest>): void {
  for (const c of changes) if (c.role === 'descriptor') c.newDigest = replaced.get(c.digest) ?? c.newDigest;
}

// ---------------------------------------------------------------------------
// Referrers
// ---------------------------------------------------------------------------

/**
 * Referrers stored by index.json conventions: a `sha256-<hex>` fallback tag and containerd's subject
 * annotation. Moved by renaming the tag or rewriting the annotation.
 */
function indexJsonReferrers(indexBytes: Buffer, replaced: Map<Digest, Digest>, move: boolean): { index: Buffer; links: ReferrerLink[] } {
  const links: ReferrerLink[] = [];
  const index = parseJson(indexBytes, 'index.json') as ImageIndex;
  let changed = false;
  const manifests = index.manifests.map((d) => {
    let next = d;
    const tag = parseReferrerTag(refNameOf(d));
    const newTagSubject = tag && replaced.get(tag.subject);
    if (tag && newTagSubject) {
      links.push({ referrer: d.digest, subject: tag.subject, newSubject: newTagSubject, convention: tag.convention, moved: move });
      if (move) next = withAnnotations(next, { ...next.annotations, [REF_NAME]: referrerTagFor(newTagSubject, tag) });
    }
    const subject = d.annotations?.[CONTAINERD_SUBJECT];
    if (subject && replaced.has(subject)) {
      const newSubject = replaced.get(subject)!;
      links.push({ referrer: d.digest, subject, newSubject, convention: 'containerd-annotation', moved: move });
      if (move) next = withAnnotations(next, { ...next.annotations, [CONTAINERD_SUBJECT]: newSubject });
    }
    changed ||= next !== d;
    return next;
  });
  return { index: changed ? serializeLike({ ...index, manifests }, indexBytes) : indexBytes, links };
}

/** Documents whose `subject` names a rewritten document (propagate moved them when asked). */
async function subjectReferrers(store: Store, rootIndex: ImageIndex, replaced: Map<Digest, Digest>, moved: boolean): Promise<ReferrerLink[]> {
  if (replaced.size === 0) return [];
  const links: ReferrerLink[] = [];
  const seen = new Set<string>();
  await walk(store, rootNodes(rootIndex), (node) => {
    if (node.role !== 'subject' || !node.parent || !replaced.has(node.descriptor.digest)) return;
    const key = `${node.parent.descriptor.digest} ${node.descriptor.digest}`;
    if (seen.has(key)) return;
    seen.add(key);
    links.push({ referrer: node.parent.descriptor.digest, subject: node.descriptor.digest, newSubject: replaced.get(node.descriptor.digest)!, convention: 'subject', moved });
  }, { onError: () => {} });
  return links;
}

// ---------------------------------------------------------------------------
// Output: destination merge, blob carrying, dry-run diffs
// ---------------------------------------------------------------------------

/** The destination's entries, but those the new ones replace (same tag, or same untagged content), then the new ones. */
function outputIndex(dest: Doc<ImageIndex> | undefined, entries: Descriptor[]): Buffer {
  const kept = (dest?.value.manifests ?? []).filter((d) => !entries.some((e) => sameIndexEntry(d, e)));
  const value = { ...(dest?.value ?? { schemaVersion: 2, mediaType: MediaType.ociIndex }), manifests: [...kept, ...entries] };
  return serializeLike(value, dest?.raw);
}

/** Blobs the new entries reach (walked from the old ones), copied (verified) to a destination that lacks them. */
async function carryBlobs(store: Store, writer: StoreWriter, rootIndex: ImageIndex, replaced: Map<Digest, Digest>): Promise<{ blobs: number; bytes: number }> {
  const wanted = new Map<Digest, Descriptor>();
  await walk(store, rootNodes(rootIndex), (node) => {
    const d = node.descriptor;
    // Rewritten documents are written anew; an extension descriptor still names the old one.
    const rewritten = replaced.has(d.digest) && (node.role === 'root' || node.role === 'child');
    if (node.role !== 'subject' && !rewritten && !wanted.has(d.digest)) wanted.set(d.digest, d);
  }, { scanConfigs: true });
  const copied = { blobs: 0, bytes: 0 };
  for (const d of wanted.values()) {
    if (await writer.hasBlob(d.digest)) continue;
    if ((await store.statBlob(d.digest)) === undefined) {
      // Non-distributable and foreign layers are often absent on purpose: their descriptors carry on alone.
      if (mediaTypeInfo(d.mediaType)?.nondistributable || d.urls?.length) continue;
      throw new OcikitError(`${store.path}: blob ${d.digest} is missing; nothing was written`);
    }
    await writer.copyBlob(store, { digest: d.digest, size: d.size });
    copied.blobs++;
    copied.bytes += d.size;
  }
  return copied;
}

function sameLocation(store: Store, writer: StoreWriter): boolean {
  return resolvePath(store.path) === resolvePath(writer.path);
}

async function diffs(store: Store, out: RecordingWriter, outcome: Outcome, oldIndex: Buffer, newIndex: Buffer): Promise<Array<{ name: string; diff: string }>> {
  const labels = new Map(outcome.changes.filter((c) => c.role !== 'descriptor').map((c) => [c.digest, c.platform ? `${c.role} ${c.platform}` : c.role]));
  const result: Array<{ name: string; diff: string }> = [];
  for (const [from, to] of outcome.replaced) {
    const after = out.written.get(to);
    if (!after) continue;
    const label = labels.get(from) ?? 'parent';
    const name = `${label} ${shortDigest(from)} → ${shortDigest(to)}`;
    result.push({ name, diff: jsonDiff(await store.readBlob(from), after, `a/blobs/${from.replace(':', '/')} (${label})`, `b/blobs/${to.replace(':', '/')}`) });
  }
  if (!oldIndex.equals(newIndex)) result.push({ name: 'index.json', diff: jsonDiff(oldIndex, newIndex, 'a/index.json', 'b/index.json') });
  return result;
}

/** Forwards writes (none in a dry run) and remembers each new document's bytes. */
class RecordingWriter implements StoreWriter {
  readonly written = new Map<Digest, Buffer>();
  readonly kind;
  readonly path;

  constructor(private readonly inner: StoreWriter | undefined) {
    this.kind = inner?.kind ?? 'oci';
    this.path = inner?.path ?? '(dry run)';
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    return this.written.has(digest) || (await this.inner?.hasBlob(digest)) === true;
  }

  async putBlob(data: Buffer): Promise<BlobRef> {
    const blob = this.inner ? await this.inner.putBlob(data) : { digest: digestOf(data), size: data.length };
    this.written.set(blob.digest, data);
    return blob;
  }

  async copyBlob(from: Store, blob: BlobRef): Promise<void> {
    await this.inner?.copyBlob(from, blob);
  }

  async commit(index: Buffer): Promise<void> {
    await this.inner?.commit(index);
  }

  async abort(): Promise<void> {
    await this.inner?.abort();
  }
}

/** Documents are read by planning, rewriting, propagating and the referrer scan: each read once. */
function memoized(store: Store): Store {
  const cache = new Map<Digest, Promise<Buffer>>();
  const limit = 4 * 1024 * 1024;
  return {
    kind: store.kind,
    path: store.path,
    readIndex: () => store.readIndex(),
    statBlob: (digest) => store.statBlob(digest),
    isSynthesized: (digest) => store.isSynthesized?.(digest) ?? false,
    readBlob: (digest, maxBytes) => {
      if (maxBytes === undefined || maxBytes > limit) return store.readBlob(digest, maxBytes);
      let pending = cache.get(digest);
      if (!pending) {
        pending = store.readBlob(digest, maxBytes);
        pending.catch(() => cache.delete(digest));
        cache.set(digest, pending);
      }
      return pending;
    },
    openBlob: (digest) => store.openBlob(digest),
    listBlobs: () => store.listBlobs(),
    close: () => store.close(),
  };
}
