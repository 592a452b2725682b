import { OcikitError } from '../errors.js';
import { refNameOf, type Annotations, type Descriptor, type Platform } from '../model/descriptor.js';
import { CONTAINERD_IMAGE_NAME } from '../model/keys.js';
import { platformMatches, platformString, type PlatformSpec } from '../model/platform.js';
import type { ImageConfig } from '../model/image-config.js';
import { mediaTypeInfo } from '../model/media-types.js';
import { selectorText, type Selector } from '../store/reference.js';
import type { Store } from '../store/store.js';
import { resolveTarget } from './resolve.js';
import { readDocument, readJson } from '../graph/read.js';

/** The `inspect --json` shape (documented in the README; fields are only ever added). */
export interface InspectNode {
  kind: 'index' | 'manifest' | 'other';
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  tags?: string[];
  annotations?: Annotations;
  artifactType?: string;
  subject?: string;
  config?: {
    mediaType: string; digest: string; size: number;
    os?: string; architecture?: string; variant?: string; created?: string; labels?: Record<string, string>;
  };
  layers?: Array<{ mediaType: string; digest: string; size: number; annotations?: Annotations }>;
  /** Bytes of the manifest, config and layers (index: of all children, each blob counted once). */
  totalSize?: number;
  children?: InspectNode[];
}

export interface InspectReport {
  kind: string;
  path: string;
  entries: InspectNode[];
}

export interface InspectOptions {
  selector?: Selector;
  platform?: PlatformSpec;
}

/** Reads manifests, indexes and configs only: never a layer byte. */
export async function inspect(store: Store, options: InspectOptions = {}): Promise<InspectReport> {
  const index = (await store.readIndex()).value;
  const roots = options.selector ? [(await resolveTarget(store, options.selector)).descriptor] : index.manifests;
  const entries: InspectNode[] = [];
  const tags = tagsByDigest(index.manifests);
  // Two tags on one image are one entry showing both tags.
  for (const d of roots.filter((d, i) => roots.findIndex((e) => e.digest === d.digest) === i)) {
    const node = await inspectNode(store, d, tags, options.platform, 0);
    if (node) entries.push(node);
  }
  if (options.platform && !entries.some((e) => showsPlatform(e, options.platform!))) {
    throw new OcikitError(`${store.path}: no ${platformString(options.platform)} image${options.selector ? ` in ${selectorText(options.selector)}` : ''}`);
  }
  return { kind: store.kind, path: store.path, entries };
}

/** Whether the tree holds an image of the platform, by its descriptor or its config. */
function showsPlatform(node: InspectNode, platform: PlatformSpec): boolean {
  if (node.kind === 'manifest') {
    const c = node.config;
    const fromConfig = c?.os && c.architecture ? { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) } : undefined;
    if (platformMatches(node.platform, platform) || platformMatches(fromConfig, platform)) return true;
  }
  return (node.children ?? []).some((c) => showsPlatform(c, platform));
}

function tagsByDigest(entries: Descriptor[]): Map<string, string[]> {
  const tags = new Map<string, string[]>();
  for (const d of entries) {
    const name = refNameOf(d) ?? d.annotations?.[CONTAINERD_IMAGE_NAME];
    if (!name) continue;
    const list = tags.get(d.digest) ?? [];
    if (!list.includes(name)) list.push(name);
    tags.set(d.digest, list);
  }
  return tags;
}

async function inspectNode(store: Store, d: Descriptor, tags: Map<string, string[]>, platform: PlatformSpec | undefined, depth: number): Promise<InspectNode | undefined> {
  const node: InspectNode = { kind: 'other', mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.platform) node.platform = d.platform;
  const tagList = tags.get(d.digest);
  if (tagList && depth === 0) node.tags = tagList;
  if (depth > 32) throw new OcikitError(`${d.digest}: index nesting deeper than 32 levels`);
  const parsed = await readDocument(store, d);
  if (!parsed || parsed.kind === 'config') return node;
  const doc = parsed.doc.value;
  if (doc.annotations && Object.keys(doc.annotations).length) node.annotations = doc.annotations;
  if (doc.artifactType) node.artifactType = doc.artifactType;
  if (doc.subject) node.subject = doc.subject.digest;
  if (parsed.kind === 'index') {
    node.kind = 'index';
    node.children = [];
    for (const child of parsed.doc.value.manifests) {
      const isImage = mediaTypeInfo(child.mediaType)?.kind === 'manifest';
      if (platform && isImage && !platformMatches(child.platform, platform)) continue;
      const c = await inspectNode(store, child, tags, platform, depth + 1);
      if (c) node.children.push(c);
    }
    node.totalSize = d.size + uniqueBytes(node.children);
    return node;
  }
  const manifest = parsed.doc.value;
  node.kind = 'manifest';
  node.layers = manifest.layers.map(({ mediaType, digest, size, annotations }) => (annotations ? { mediaType, digest, size, annotations } : { mediaType, digest, size }));
  node.config = { mediaType: manifest.config.mediaType, digest: manifest.config.digest, size: manifest.config.size };
  if (mediaTypeInfo(manifest.config.mediaType)?.kind === 'config') {
    // Plain JSON: a config that is not a full image config still lets the image be shown.
    const config = await readJson(store, manifest.config).catch((err) => (isMissing(err) ? undefined : Promise.reject(err)));
    if (config) Object.assign(node.config, configSummary(config.value));
  }
  node.totalSize = d.size + manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0);
  return node;
}

/** An absent config still lets the image be shown; a config that is unsafe or corrupt is an error. */
function isMissing(err: unknown): boolean {
  return err instanceof OcikitError && /is missing|not in the archive/.test(err.message);
}

/** What a config says that it can: fields of the wrong type are left out. */
function configSummary(value: unknown): Partial<NonNullable<InspectNode['config']>> {
  const config = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of ['os', 'architecture', 'variant', 'created'] as const) if (typeof config[key] === 'string' && config[key]) out[key] = config[key];
  const labels = (config.config as ImageConfig['config'] | undefined)?.Labels;
  if (isStringRecord(labels) && Object.keys(labels).length) out.labels = labels;
  return out;
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** Shared layers count once in an index's total. */
function uniqueBytes(children: InspectNode[]): number {
  const seen = new Map<string, number>();
  const add = (n: InspectNode): void => {
    seen.set(n.digest, n.size);
    if (n.config) seen.set(n.config.digest, n.config.size);
    for (const l of n.layers ?? []) seen.set(l.digest, l.size);
    for (const c of n.children ?? []) add(c);
  };
  children.forEach(add);
  return [...seen.values()].reduce((a, b) => a + b, 0);
}
