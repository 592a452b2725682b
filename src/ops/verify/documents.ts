import { createHash } from 'node:crypto';
import { algorithmOf, isDigest, isVerifiable, type Digest } from '../../model/digest.js';
import { REF_NAME } from '../../model/keys.js';
import { DEFAULT_MAX_DOCUMENT_BYTES, nestingProblem } from '../../model/document.js';
import { MediaType, mediaTypeInfo } from '../../model/media-types.js';
import { findExtensionDescriptors } from '../../graph/children.js';
import { checkConfig } from './config-check.js';
import { checkAnnotations, checkDescriptor, checkMediaType, type CheckedDescriptor } from './descriptors.js';
import type { Findings, Location } from './findings.js';
import { isPlainObject } from './formats.js';
import { duplicateKeys } from './json-keys.js';
import type { BlobState, Site } from './site.js';

/** Fatal, the BOM kept (refused above); one decoder for every document (decode without `stream` keeps no state). */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Documents above this are not even read: no real manifest, index or config comes near it. */
const HARD_DOCUMENT_CAP = 64 * 1024 * 1024;

export type Role = 'root' | 'child' | 'config' | 'layer' | 'subject';

/** An image manifest as read: what docker save's manifest.json is compared with. */
export interface ManifestUse {
  path: string;
  /** From the index.json entry down to this manifest. */
  chain: string[];
  config?: Digest;
  layers: Array<Digest | undefined>;
  diffIds?: unknown[];
}

/** A layer as --deep needs it: where it was first met and the diff_ids configs expect of it. */
export interface LayerUse {
  mediaType: string;
  loc: Location;
  /** Parse the content as a tar (known layer media types). */
  isTar: boolean;
  expectations: Array<{ diffId: unknown; loc: Location }>;
}

export interface WalkOptions {
  maxDepth: number;
  /** Index.json may say `"manifests": null`: a Docker 25+ save whose images manifest.json lists. */
  dockerSave: boolean;
}

interface Visit {
  value: unknown;
  role: Role;
  /** Where the descriptor sits; `chain` is its parent's chain. */
  loc: Location;
  depth: number;
  platform?: Record<string, unknown>;
}

/**
 * Walks every document from index.json down, checking each descriptor, each index, manifest and image
 * config, and recording which blobs are referenced (and how) for the content checks that follow.
 * Documents are small: they are read, hashed and parsed here, once each.
 */
export class DocumentWalk {
  /** Blob digest → the chain of its first reference. */
  readonly referenced = new Map<Digest, string[]>();
  /** Documents hashed here, with their sizes; the content phase skips them. */
  readonly hashed = new Map<Digest, number>();
  readonly layers = new Map<Digest, LayerUse>();
  readonly manifests = new Map<Digest, ManifestUse>();
  /** Blobs larger than a descriptor says: their content is not trusted, so not read (size is checked before hashing). */
  readonly oversized = new Set<Digest>();
  /** False when some document could not be parsed, so "unreferenced" would be guesswork. */
  complete = true;
  private readonly descended = new Set<Digest>();
  private readonly configs = new Map<Digest, unknown[] | undefined>();

  constructor(private readonly site: Site, private readonly findings: Findings, private readonly options: WalkOptions) {}

  /** index.json as stored; returns false when its images must come from elsewhere (manifest.json). */
  async fromIndexJson(raw: Buffer): Promise<boolean> {
    const loc: Location = { path: 'index.json', chain: [] };
    const value = this.parse(raw, loc);
    if (value === undefined) return true;
    if (isPlainObject(value) && value.manifests === null && this.options.dockerSave) {
      this.findings.add('index-manifests-null', 'index.json lists no images ("manifests": null); checking the images manifest.json lists', { ...loc, jsonPath: '$.manifests' });
      this.checkIndexFields(value, loc, undefined);
      return false;
    }
    await this.index(value, loc, undefined, 0);
    this.checkRefNames(value);
    return true;
  }

  /** Roots given directly: a selected image, or the images a docker save manifest.json lists. */
  async fromDescriptors(descriptors: unknown[], path: string): Promise<void> {
    for (const [i, value] of descriptors.entries()) {
      await this.visit({ value, role: 'root', loc: { path, jsonPath: path === 'index.json' ? undefined : `$[${i}]`, chain: [] }, depth: 0 });
    }
  }

  private async visit(v: Visit): Promise<CheckedDescriptor | undefined> {
    const d = checkDescriptor(v.value, v.loc, this.findings);
    if (!d) return undefined;
    const chain = [...(v.loc.chain ?? []), d.digest];
    const state = this.site.blob(d.digest);
    if (v.role === 'subject' && state.status === 'missing') {
      this.findings.add('subject-missing', `subject ${d.digest} is not in the layout`, { ...v.loc, jsonPath: v.loc.jsonPath, digest: d.digest });
      return undefined;
    }
    if (!this.referenced.has(d.digest)) this.referenced.set(d.digest, chain);
    if (!this.present(d, state, v, chain)) return undefined;
    if (d.size !== undefined && state.size !== d.size) {
      this.findings.add('blob-size-mismatch', `blob ${state.path} is ${state.size} bytes, the descriptor says ${d.size}`, { ...v.loc, digest: d.digest, chain });
      if (state.size > d.size) this.oversized.add(d.digest);
    }
    const kind = mediaTypeInfo(d.mediaType)?.kind;
    if (v.role === 'layer' && !this.layers.has(d.digest)) {
      this.layers.set(d.digest, { mediaType: d.mediaType, loc: { ...v.loc, digest: d.digest, chain }, isTar: kind === 'layer', expectations: [] });
    }
    if (kind === 'index' || kind === 'manifest') await this.document(d, state, v, chain);
    return d;
  }

  private present(d: CheckedDescriptor, state: BlobState, v: Visit, chain: string[]): boolean {
    if (state.status === 'present') return true;
    if (state.status === 'missing') {
      const where = { ...v.loc, digest: d.digest, chain };
      const external = mediaTypeInfo(d.mediaType)?.nondistributable || d.urls.length > 0;
      if (external) this.findings.add('blob-missing-external', `${d.mediaType} blob is not in the layout${d.urls.length ? ` (urls: ${d.urls.join(', ')})` : ''}`, where);
      else this.findings.add('blob-missing', `blob ${state.path} is missing`, where);
      return false;
    }
    if (state.status === 'symlink' && !state.underLinkedDir) this.findings.add('blob-symlink', `${state.path} is a symlink (or under one); it is not followed`, { path: state.path, digest: d.digest, chain });
    if (state.status === 'not-regular') this.findings.add('blob-not-regular', `${state.path} is not a regular file`, { path: state.path, digest: d.digest, chain });
    return false;
  }

  private async document(d: CheckedDescriptor, state: BlobState, v: Visit, chain: string[]): Promise<void> {
    // Before the visited check: a document reached again through itself is a loop, not a second visit.
    if (chain.indexOf(d.digest) < chain.length - 1 || v.depth > this.options.maxDepth) {
      this.findings.add('index-too-deep', `${d.digest} is nested ${v.depth} levels deep or contains itself; not descended`, { ...v.loc, digest: d.digest, chain });
      return;
    }
    if (this.descended.has(d.digest)) return;
    this.descended.add(d.digest);
    const loc: Location = { path: state.path, chain };
    const raw = await this.read(d, state, chain);
    const value = raw && this.parse(raw, loc);
    if (value === undefined) return;
    this.checkArtifactType(d, value, v.loc);
    const kind = mediaTypeInfo(d.mediaType)?.kind;
    if (kind === 'index') await this.index(value, loc, d.mediaType, v.depth);
    else await this.manifest(value, loc, d.mediaType, v.platform, v.depth);
  }

  /** Reads and hashes a document blob; undefined (with a finding) when it cannot be trusted. */
  private async read(d: CheckedDescriptor, state: BlobState, chain: string[]): Promise<Buffer | undefined> {
    const loc: Location = { path: state.path, digest: d.digest, chain };
    if (state.size > HARD_DOCUMENT_CAP) {
      this.findings.add('document-too-large', `${state.size} bytes; documents over ${HARD_DOCUMENT_CAP} bytes are not read`, loc);
      this.complete = false;
      return undefined;
    }
    let raw: Buffer;
    try {
      raw = await this.site.readDocument(d.digest, HARD_DOCUMENT_CAP);
    } catch (err) {
      this.findings.add('blob-unreadable', (err as Error).message, loc);
      this.complete = false;
      return undefined;
    }
    if (!isVerifiable(d.digest)) return raw;
    this.hashed.set(d.digest, raw.length);
    const algorithm = algorithmOf(d.digest);
    const actual = `${algorithm}:${createHash(algorithm).update(raw).digest('hex')}`;
    if (actual === d.digest) return raw;
    this.findings.add('blob-digest-mismatch', `content hashes to ${actual}; the document is not trusted`, loc);
    this.complete = false;
    return undefined;
  }

  /** UTF-8 JSON without duplicate keys; undefined (with a finding) when it does not parse. */
  private parse(raw: Buffer, loc: Location): unknown {
    if (raw.length > DEFAULT_MAX_DOCUMENT_BYTES) this.findings.add('json-too-large', `${raw.length} bytes, over the 4 MiB documents are expected to fit in`, loc);
    const tooDeep = nestingProblem(raw); // checked before parsing: the checks below recurse into the value
    if (tooDeep) {
      this.findings.add('json-invalid', tooDeep, loc);
      this.complete = false;
      return undefined;
    }
    if (raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf) {
      this.findings.add('json-invalid', 'starts with a UTF-8 byte order mark, which JSON does not allow (Go\'s encoding/json refuses it)', loc);
      this.complete = false;
      return undefined;
    }
    let text: string;
    let value: unknown;
    try {
      text = utf8.decode(raw);
    } catch {
      this.findings.add('json-invalid', 'not valid UTF-8', loc);
      this.complete = false;
      return undefined;
    }
    try {
      value = JSON.parse(text);
    } catch (err) {
      this.findings.add('json-invalid', `not valid JSON (${(err as Error).message.split('\n')[0]})`, loc);
      this.complete = false;
      return undefined;
    }
    for (const dup of duplicateKeys(text)) this.findings.add('json-duplicate-key', `key ${JSON.stringify(dup.key)} occurs twice`, { ...loc, jsonPath: dup.jsonPath });
    return value;
  }

  private async index(value: unknown, loc: Location, descriptorType: string | undefined, depth: number): Promise<void> {
    if (!isPlainObject(value)) {
      this.findings.add('index-invalid', 'the index is not a JSON object', loc);
      this.complete = false;
      return;
    }
    this.checkIndexFields(value, loc, descriptorType);
    if (!Array.isArray(value.manifests)) {
      this.findings.add('index-invalid', `manifests must be an array, not ${kindOf(value.manifests)}`, { ...loc, jsonPath: '$.manifests' });
      return;
    }
    const isRoot = descriptorType === undefined;
    for (const [i, child] of value.manifests.entries()) {
      const childLoc = { ...loc, jsonPath: `$.manifests[${i}]` };
      const platform = isPlainObject(child) && isPlainObject(child.platform) ? child.platform : undefined;
      if (!isRoot && isPlainObject(child) && mediaTypeInfo(child.mediaType as string)?.kind === 'manifest' && !platform) {
        this.findings.add('platform-missing', 'an image manifest in an index should carry a platform', childLoc);
      }
      await this.visit({ value: child, role: isRoot ? 'root' : 'child', loc: childLoc, depth: depth + 1, platform });
    }
    if (value.subject !== undefined) await this.visit({ value: value.subject, role: 'subject', loc: { ...loc, jsonPath: '$.subject' }, depth: depth + 1 });
    this.recordExtensions(value, [...value.manifests, value.subject]);
  }

  private checkIndexFields(value: Record<string, unknown>, loc: Location, descriptorType: string | undefined): void {
    this.checkCommon(value, loc, descriptorType ?? MediaType.ociIndex, 'index');
  }

  private async manifest(value: unknown, loc: Location, descriptorType: string, platform: Record<string, unknown> | undefined, depth: number): Promise<void> {
    if (!isPlainObject(value)) {
      this.findings.add('manifest-invalid', 'the manifest is not a JSON object', loc);
      this.complete = false;
      return;
    }
    this.checkCommon(value, loc, descriptorType, 'manifest');
    const layers = Array.isArray(value.layers) ? value.layers : undefined;
    if (!layers) this.findings.add('manifest-invalid', 'layers must be an array', { ...loc, jsonPath: '$.layers' });
    let diffIds: unknown[] | undefined;
    let configType: string | undefined;
    if (!isPlainObject(value.config)) {
      this.findings.add('manifest-invalid', 'config must be a descriptor', { ...loc, jsonPath: '$.config' });
    } else {
      const config = await this.visit({ value: value.config, role: 'config', loc: { ...loc, jsonPath: '$.config' }, depth: depth + 1 });
      configType = config?.mediaType ?? (typeof value.config.mediaType === 'string' ? value.config.mediaType : undefined);
      if (config && mediaTypeInfo(config.mediaType)?.kind === 'config') diffIds = await this.config(config, layers?.length ?? 0, platform);
    }
    const use: ManifestUse = { path: loc.path, chain: [...(loc.chain ?? [])], layers: [] };
    if (isPlainObject(value.config) && isDigest(value.config.digest)) use.config = value.config.digest;
    if (diffIds) use.diffIds = diffIds;
    this.manifests.set(use.chain.at(-1)!, use);
    const configDigest = (value.config as { digest: string } | null)?.digest as string; // config may be null in hostile input
    // Where the config's diff_ids are, for every layer's expectation: one path and chain (never changed) for them all.
    const configAt = diffIds && { path: this.site.blob(configDigest).path, chain: [...(loc.chain ?? []), configDigest] };
    for (const [i, layer] of (layers ?? []).entries()) {
      const layerLoc = { ...loc, jsonPath: `$.layers[${i}]` };
      const d = await this.visit({ value: layer, role: 'layer', loc: layerLoc, depth: depth + 1 });
      use.layers.push(d?.digest);
      if (d && configAt && i < diffIds!.length) {
        this.layers.get(d.digest)?.expectations.push({ diffId: diffIds![i], loc: { path: configAt.path, jsonPath: `$.rootfs.diff_ids[${i}]`, digest: configDigest, chain: configAt.chain } });
      }
    }
    const isImage = mediaTypeInfo(configType)?.kind === 'config';
    if (layers && layers.length === 0 && isImage) this.findings.add('manifest-layers-empty', 'an image manifest should have at least one layer', { ...loc, jsonPath: '$.layers' });
    if (configType === MediaType.ociEmpty && value.artifactType === undefined) {
      this.findings.add('artifact-type-missing', 'artifactType is required when config is the empty descriptor', { ...loc, jsonPath: '$.artifactType' });
    }
    if (value.subject !== undefined) await this.visit({ value: value.subject, role: 'subject', loc: { ...loc, jsonPath: '$.subject' }, depth: depth + 1 });
    this.recordExtensions(value, [value.config, ...(layers ?? []), value.subject]);
  }

  /** schemaVersion, mediaType (against the descriptor's, each family on its own), artifactType, annotations. */
  private checkCommon(value: Record<string, unknown>, loc: Location, expected: string, kind: 'index' | 'manifest'): void {
    if (value.schemaVersion !== 2) this.findings.add('schema-version-invalid', `schemaVersion is ${typeof value.schemaVersion === 'number' ? value.schemaVersion : kindOf(value.schemaVersion)}, not 2`, { ...loc, jsonPath: '$.schemaVersion' });
    const mediaType = value.mediaType;
    const where = { ...loc, jsonPath: '$.mediaType' };
    if (mediaType === undefined) {
      this.findings.add(`${kind}-media-type-missing`, `the ${kind} has no mediaType (expected ${expected})`, where);
    } else if (mediaType !== expected) {
      this.findings.add(`${kind}-media-type-mismatch`, `mediaType is ${typeof mediaType === 'string' ? JSON.stringify(mediaType.slice(0, 200)) : kindOf(mediaType)}, the descriptor says ${expected}`, where);
    }
    if (value.artifactType !== undefined) checkMediaType(value.artifactType, { ...loc, jsonPath: '$.artifactType' }, this.findings, 'artifact-type-invalid');
    if (value.annotations !== undefined) checkAnnotations(value.annotations, { ...loc, jsonPath: '$.annotations' }, this.findings);
  }

  private async config(d: CheckedDescriptor, layerCount: number, platform: Record<string, unknown> | undefined): Promise<unknown[] | undefined> {
    if (this.configs.has(d.digest)) return this.configs.get(d.digest);
    this.configs.set(d.digest, undefined);
    const state = this.site.blob(d.digest);
    const chain = [...(this.referenced.get(d.digest) ?? [d.digest])];
    const raw = await this.read(d, state, chain);
    const loc = { path: state.path, chain };
    const value = raw && this.parse(raw, loc);
    if (value === undefined) return undefined;
    const diffIds = checkConfig(value, loc, { layerCount, platform }, this.findings);
    this.configs.set(d.digest, diffIds);
    return diffIds;
  }

  /** Derived (descriptor.md): a descriptor's artifactType is its target's, or the config's mediaType. */
  private checkArtifactType(d: CheckedDescriptor, value: unknown, at: Location): void {
    if (d.artifactType === undefined || !isPlainObject(value)) return;
    const config = isPlainObject(value.config) ? value.config.mediaType : undefined;
    const target = value.artifactType ?? config;
    if (typeof target !== 'string' || target === d.artifactType) return;
    const where = { ...at, jsonPath: `${at.jsonPath ?? '$'}.artifactType`, digest: d.digest };
    this.findings.add('artifact-type-mismatch', `artifactType is ${JSON.stringify(d.artifactType)}, the ${value.artifactType === undefined ? "target's config mediaType" : 'target'} says ${JSON.stringify(target)}`, where);
  }

  /** Descriptors outside the spec's places (gc keeps their blobs, so they are not "unreferenced"). */
  private recordExtensions(value: Record<string, unknown>, known: unknown[]): void {
    const knownSet = new Set(known.filter((k): k is object => typeof k === 'object' && k !== null));
    for (const { descriptor } of findExtensionDescriptors(value, knownSet)) {
      if (isDigest(descriptor.digest) && !this.referenced.has(descriptor.digest)) this.referenced.set(descriptor.digest, [descriptor.digest]);
    }
  }

  /** A ref name tagging two digests in index.json: tools disagree on which one the tag means. */
  private checkRefNames(index: unknown): void {
    if (!isPlainObject(index) || !Array.isArray(index.manifests)) return;
    const byName = new Map<string, Set<string>>();
    for (const d of index.manifests) {
      const name = isPlainObject(d) && isPlainObject(d.annotations) ? d.annotations[REF_NAME] : undefined;
      if (typeof name === 'string' && typeof d.digest === 'string') byName.set(name, (byName.get(name) ?? new Set()).add(d.digest));
    }
    for (const [name, digests] of byName) {
      if (digests.size > 1) this.findings.add('ref-name-ambiguous', `ref name ${JSON.stringify(name)} tags ${[...digests].join(' and ')}`, { path: 'index.json', jsonPath: '$.manifests', chain: [] });
    }
  }
}

/** A short name for what a JSON value is, for messages (never the value itself: it may be huge). */
function kindOf(value: unknown): string {
  if (value === undefined) return 'absent';
  if (value === null) return 'null';
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}
