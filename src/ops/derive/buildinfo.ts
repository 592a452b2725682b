import { OcikitError } from '../../errors.js';
import { ImageAnnotation, parseImageName, qualifyImageName, type Derivation, type DerivedAnnotation } from '../../model/annotations.js';
import { digestOf, isDigest, shortDigest, type Digest } from '../../model/digest.js';
import { platformString, type Descriptor } from '../../model/descriptor.js';
import { MediaType } from '../../model/media-types.js';
import type { Store } from '../../store/store.js';
import { checkBasePrefix, loadImage, type Image } from '../image.js';
import type { PlatformImage } from '../resolve.js';
import { readDocument } from '../../graph/read.js';
import { isSynthesized } from '../old-base.js';
import { findInStores, manifestFor, platformOf } from './base.js';

export const BUILDINFO_KEY = 'moby.buildkit.buildinfo.v1';
const ATTESTATION_TYPE = 'vnd.docker.reference.type';
const ATTESTATION_SUBJECT = 'vnd.docker.reference.digest';
const PREDICATE_TYPE = 'in-toto.io/predicate-type';
/** In-toto statements are small JSON documents; anything larger is not read. */
const MAX_STATEMENT_BYTES = 4 * 1024 * 1024;
/** BuildKit's Dockerfile frontends show up as sources but are never a base. */
const FRONTEND_IMAGES = new Set(['docker.io/docker/dockerfile', 'docker.io/docker/dockerfile-upstream']);

/** An image the build pulled, as BuildKit recorded it. */
export interface BaseCandidate {
  /** Fully qualified, with its tag when the build named one. */
  name: string;
  digest?: Digest;
  sources: string[];
}

export interface BuildinfoOptions {
  /** `--base-layout`: stores where candidates may be found, to tell the base by its layers. */
  baseLayouts: Store[];
  /** `--base-name`: picks one of several candidates by name. */
  baseName?: string;
}

/**
 * `--from-buildinfo`: the docker-image sources BuildKit recorded, from the config's buildinfo
 * (key or label) and from SLSA provenance attestations stored beside the image in its index.
 * One source: that is the base. Several (multi-stage): the one found on disk whose layers are a
 * prefix, or the one `--base-name` names; else stop and list them.
 */
export async function deriveFromBuildinfo(store: Store, image: Image, at: PlatformImage | undefined, options: BuildinfoOptions): Promise<Derivation> {
  const notes: string[] = [];
  const found = [...buildinfoCandidates(image, notes), ...(at ? await provenanceCandidates(store, at, notes) : [])];
  const candidates = merge(found.filter((c) => {
    const frontend = FRONTEND_IMAGES.has(repositoryOf(c.name));
    if (frontend) notes.push(`${c.name} skipped: it is BuildKit's Dockerfile frontend, not a base`);
    return !frontend;
  }));
  if (candidates.length === 0) {
    notes.push(`no docker-image source in ${BUILDINFO_KEY} or in a provenance attestation`);
    return { derived: [], notes };
  }
  const chosen = await choose(image, candidates, options);
  const source = `${chosen.why}; recorded in ${chosen.candidate.sources.join(' and ')}`;
  const derived: DerivedAnnotation[] = [{ key: ImageAnnotation.baseName, value: chosen.candidate.name, source }];
  const digest = chosen.candidate.digest ?? chosen.onDisk;
  if (digest) derived.push({ key: ImageAnnotation.baseDigest, value: digest, source: chosen.candidate.digest ? `the pinned digest of ${chosen.candidate.name}; ${source}` : `its manifest found on disk; ${source}` });
  else notes.push(`${chosen.candidate.name} was recorded without a digest${chosen.proven ? ' and found on disk only in a legacy docker-save tarball' : ''}; base.digest not set`);
  return { derived, notes };
}

async function choose(image: Image, candidates: BaseCandidate[], options: BuildinfoOptions): Promise<{ candidate: BaseCandidate; why: string; proven?: boolean; onDisk?: Digest }> {
  let pool = candidates;
  if (options.baseName) {
    pool = candidates.filter((c) => sameName(c.name, options.baseName!));
    if (pool.length === 0) throw new OcikitError(`--base-name ${options.baseName} is none of the recorded sources: ${list(candidates)}`);
  }
  if (pool.length === 1) {
    const why = candidates.length === 1 ? 'the only docker-image source of the build' : `picked by --base-name out of ${candidates.length} sources`;
    return { candidate: pool[0]!, why };
  }
  const platform = platformString(platformOf(image));
  if (options.baseLayouts.length === 0) {
    throw new OcikitError(`--from-buildinfo: the ${platform} image was built from ${pool.length} images (multi-stage build): ${list(pool)}; pass --base-layout DIR holding them to tell the base by its layers, or --base-name NAME`);
  }
  const proven = await proveOnDisk(image, pool, options.baseLayouts);
  if (proven.length === 0) {
    throw new OcikitError(`--from-buildinfo: none of the ${pool.length} sources of the ${platform} image was found in --base-layout with its layers under the image's: ${list(pool)}; pass --base-name NAME`);
  }
  const best = proven.sort((a, b) => b.layers - a.layers)[0]!;
  return { candidate: best.candidate, why: `out of ${pool.length} sources, the one whose ${best.layers} layer(s) are the image's first (found in --base-layout)`, proven: true, ...(best.manifest ? { onDisk: best.manifest } : {}) };
}

async function proveOnDisk(image: Image, pool: BaseCandidate[], stores: Store[]) {
  const proven: Array<{ candidate: BaseCandidate; layers: number; manifest: Digest | undefined }> = [];
  for (const candidate of pool) {
    const found = await findInStores(stores, candidate.name, candidate.digest);
    if (!found) continue;
    const manifest = await manifestFor(found.store, found.target, platformOf(image), candidate.name).catch(() => undefined);
    if (!manifest) continue;
    const check = checkBasePrefix(image, await loadImage(found.store, manifest));
    // A made-up docker-save manifest proves the layers, but its digest is no base.digest.
    if (check.ok) proven.push({ candidate, layers: check.baseLayers, manifest: isSynthesized(found.store, manifest.digest) ? undefined : manifest.digest });
  }
  return proven;
}

/** Sources in the config: the buildinfo key (BuildKit 0.10) or the same as a label. */
export function buildinfoCandidates(image: Image, notes: string[]): BaseCandidate[] {
  const config = image.config.value as unknown as Record<string, unknown>;
  const fromKey = typeof config[BUILDINFO_KEY] === 'string' ? (config[BUILDINFO_KEY] as string) : undefined;
  const text = fromKey ?? image.config.value.config?.Labels?.[BUILDINFO_KEY];
  if (text === undefined) return [];
  const where = fromKey !== undefined ? `config key ${BUILDINFO_KEY}` : `config label ${BUILDINFO_KEY}`;
  let info: { sources?: unknown };
  try {
    info = JSON.parse(Buffer.from(text, 'base64').toString('utf8')) as { sources?: unknown };
  } catch {
    notes.push(`${where} is not base64 JSON; ignored`);
    return [];
  }
  const sources = Array.isArray(info?.sources) ? (info.sources as Array<Record<string, unknown>>) : [];
  return sources.flatMap((s) => {
    if (s?.type !== 'docker-image' || typeof s.ref !== 'string' || !parseImageName(s.ref)) return [];
    const digest = typeof s.pin === 'string' && isDigest(s.pin) ? s.pin : undefined;
    return [{ name: qualifyImageName(s.ref), ...(digest ? { digest } : {}), sources: [where] }];
  });
}

/** Materials of SLSA provenance attestations that the image's index keeps for this manifest. */
export async function provenanceCandidates(store: Store, at: PlatformImage, notes: string[]): Promise<BaseCandidate[]> {
  const parent = at.path.at(-2)?.descriptor;
  if (!parent) return [];
  const parsed = await readDocument(store, parent);
  if (parsed?.kind !== 'index') return [];
  const attestations = parsed.doc.value.manifests.filter((d) => d.annotations?.[ATTESTATION_TYPE] === 'attestation-manifest' && d.annotations?.[ATTESTATION_SUBJECT] === at.descriptor.digest);
  const out: BaseCandidate[] = [];
  for (const attestation of attestations) {
    const manifest = await readDocument(store, attestation);
    if (manifest?.kind !== 'manifest') continue;
    for (const layer of manifest.doc.value.layers) {
      if (!isProvenance(layer)) continue;
      const statement = await readStatement(store, layer, notes);
      const where = `provenance attestation ${shortDigest(attestation.digest)}`;
      for (const material of materialsOf(statement)) {
        const candidate = candidateFromPurl(material.uri, material.digest, where);
        if (candidate) out.push(candidate);
      }
    }
  }
  return out;
}

function isProvenance(layer: Descriptor): boolean {
  return layer.mediaType === MediaType.inToto && /slsa\.dev\/provenance/.test(layer.annotations?.[PREDICATE_TYPE] ?? '');
}

/** The statement is an attestation's own small JSON blob, read whole and checked against its digest. */
async function readStatement(store: Store, layer: Descriptor, notes: string[]): Promise<unknown> {
  if (layer.size > MAX_STATEMENT_BYTES) {
    notes.push(`provenance statement ${shortDigest(layer.digest)} is over ${MAX_STATEMENT_BYTES} bytes; not read`);
    return undefined;
  }
  const raw = await store.readBlob(layer.digest, MAX_STATEMENT_BYTES).catch(() => undefined);
  if (!raw || raw.length !== layer.size || (layer.digest.startsWith('sha256:') && digestOf(raw) !== layer.digest)) {
    notes.push(`provenance statement ${shortDigest(layer.digest)} is missing or does not match its digest; ignored`);
    return undefined;
  }
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    notes.push(`provenance statement ${shortDigest(layer.digest)} is not JSON; ignored`);
    return undefined;
  }
}

/** SLSA v0.2 `materials`, or v1 `buildDefinition.resolvedDependencies`. */
function materialsOf(statement: unknown): Array<{ uri: string; digest?: Record<string, unknown> }> {
  const predicate = (statement as { predicate?: Record<string, unknown> } | undefined)?.predicate;
  const list = predicate?.materials ?? (predicate?.buildDefinition as Record<string, unknown> | undefined)?.resolvedDependencies;
  if (!Array.isArray(list)) return [];
  return list.filter((m): m is { uri: string; digest?: Record<string, unknown> } => typeof m?.uri === 'string');
}

/** `pkg:docker/example/base@1.0?digest=sha256:…&platform=…` → docker.io/example/base:1.0 pinned at that digest. */
export function candidateFromPurl(uri: string, digests: Record<string, unknown> | undefined, where: string): BaseCandidate | undefined {
  const m = /^pkg:docker\/([^@?#]+)(?:@([^?#]+))?(?:\?([^#]*))?/.exec(uri);
  if (!m) return undefined;
  const path = m[1]!.split('/').map(decode).join('/');
  const version = m[2] ? decode(m[2]) : undefined;
  const qualifiers = new URLSearchParams(m[3] ?? '');
  const registry = qualifiers.get('repository_url');
  const repository = registry && !path.startsWith(`${registry}/`) ? `${registry.replace(/^https?:\/\//, '')}/${path}` : path;
  const tagged = version && !isDigest(version) ? `${repository}:${version}` : repository;
  if (!parseImageName(tagged)) return undefined;
  const sha256 = typeof digests?.sha256 === 'string' ? `sha256:${digests.sha256}` : undefined;
  const digest = [qualifiers.get('digest'), version, sha256].find((d): d is string => !!d && isDigest(d));
  return { name: qualifyImageName(tagged), ...(digest ? { digest } : {}), sources: [where] };
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function merge(candidates: BaseCandidate[]): BaseCandidate[] {
  const byKey = new Map<string, BaseCandidate>();
  for (const c of candidates) {
    const key = `${c.name}@${c.digest ?? ''}`;
    const known = byKey.get(key);
    if (known) known.sources = [...new Set([...known.sources, ...c.sources])];
    else byKey.set(key, { ...c, sources: [...c.sources] });
  }
  return [...byKey.values()];
}

function repositoryOf(name: string): string {
  const parsed = parseImageName(name);
  return parsed ? `${parsed.domain ?? 'docker.io'}/${parsed.path}` : name;
}

/** `--base-name` matches a candidate by full name, or by repository when it gives no tag. */
function sameName(candidate: string, wanted: string): boolean {
  const w = parseImageName(wanted);
  if (!w) return false;
  const full = qualifyImageName(wanted.split('@')[0]!);
  return w.tag === undefined ? repositoryOf(candidate) === repositoryOf(full) : candidate === full;
}

function list(candidates: BaseCandidate[]): string {
  return candidates.map((c) => (c.digest ? `${c.name}@${c.digest}` : c.name)).join(', ');
}
