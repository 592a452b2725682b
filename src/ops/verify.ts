/**
 * `verify`: proves a layout or tarball intact and spec-conformant. Bad content never throws: it becomes
 * findings. Only input that is not a layout or tarball at all is an error (exit 2).
 *
 * The report (`ocikit verify --json`; fields are only ever added):
 *
 * ```jsonc
 * {
 *   "ref": "oci:img",                 // what was verified, as given
 *   "kind": "oci",                    // oci | oci-archive | docker-archive
 *   "path": "img",
 *   "ok": false,                      // no error (and, with --strict, no warning)
 *   "strict": false,
 *   "findings": [{
 *     "rule": "blob-digest-mismatch", // stable id; `ocikit verify --rules` lists them all
 *     "severity": "error",            // error | warning | info
 *     "message": "content hashes to sha256:…",
 *     "path": "blobs/sha256/ab…",     // file inside the layout or tarball
 *     "jsonPath": "$.layers[0]",      // where inside that file, for findings about a field
 *     "digest": "sha256:ab…",         // the blob the finding is about
 *     "chain": ["sha256:<index.json entry>", "sha256:<manifest>", "sha256:ab…"] // from index.json down
 *   }],
 *   "images": { "sha256:…": "latest" },  // index.json entries, by digest: tag or platform, to group findings
 *   "summary": {
 *     "blobs": 7, "bytes": 394004152,   // blobs whose content this run hashed (its shard's), and their bytes
 *     "seconds": 0.21, "mbPerSecond": 1876.2,
 *     "errors": 1, "warnings": 0, "infos": 2,
 *     "shard": "1/1", "deep": false
 *   }
 * }
 * ```
 */
import { availableParallelism } from 'node:os';
import { lstat, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { OcikitError } from '../errors.js';
import type { Descriptor } from '../model/descriptor.js';
import { REF_NAME, CONTAINERD_IMAGE_NAME } from '../model/keys.js';
import { platformString } from '../model/platform.js';
import { ArchiveStore } from '../store/archive.js';
import { DirStore } from '../store/dir.js';
import { parseReference, type Selector } from '../store/reference.js';
import type { Store, StoreKind } from '../store/store.js';
import { looksLikeTar, scanTar } from '../store/tar-format.js';
import { resolveTarget } from './resolve.js';
import { checkContents, inShard, planContents, type Shard } from './verify/contents.js';
import { DocumentWalk } from './verify/documents.js';
import { Findings, type Finding } from './verify/findings.js';
import { checkBlobFiles, checkDockerSaveManifest, checkTopFiles } from './verify/layout.js';
import { findZstdProgram } from '../hash/decoders.js';
import { JobRunner } from '../hash/job-runner.js';
import { openSite, type Site } from './verify/site.js';

export type { Finding } from './verify/findings.js';
export { RULES, type RuleId, type Severity } from './verify/rules.js';

export interface VerifyOptions {
  /** Decompress every layer: diff_ids, tar structure, whiteouts. */
  deep?: boolean;
  /** Warnings fail the check too. */
  strict?: boolean;
  /** Check only this shard's share of blob contents (every shard checks every document). */
  shard?: Shard;
  /** Threads hashing at once; default: the machine's cores (more only oversubscribes them); never more than there is work for. */
  jobs?: number;
  /** --deep stops decompressing a layer past this many bytes (a decompression bomb costs only time). */
  maxLayerBytes?: number;
  /** Verify only what a tag or digest names (default: the whole layout). */
  selector?: Selector;
  maxDepth?: number;
  /** Called about ten times a second while blobs are hashed. */
  onProgress?: (done: number, total: number) => void;
  /** Below this many bytes to hash, no worker thread is started (it would cost more than it saves). */
  minWorkerBytes?: number;
  /**
   * --deep: a `zstd` program to decode zstd layers with where the runtime's zlib has no zstd (Node < 22.15);
   * default the one on PATH, if any; false decodes with the bundled pure-JS decoder.
   */
  zstdProgram?: string | false;
}

export interface VerifySummary {
  blobs: number;
  bytes: number;
  seconds: number;
  mbPerSecond: number;
  errors: number;
  warnings: number;
  infos: number;
  shard: string;
  deep: boolean;
}

export interface VerifyReport {
  ref: string;
  kind: StoreKind;
  path: string;
  ok: boolean;
  strict: boolean;
  findings: Finding[];
  images: Record<string, string>;
  summary: VerifySummary;
}

export const DEFAULT_MAX_LAYER_BYTES = 64 * 1024 ** 3;
const DEFAULT_MIN_WORKER_BYTES = 16 * 1024 * 1024;

/** Verifies a store that is already open. */
export async function verify(store: Store, options: VerifyOptions = {}): Promise<VerifyReport> {
  const started = performance.now();
  const findings = new Findings();
  // A run that hashes every blob (of its shard) reads the small ones with the listing (see listReading).
  const readSmallBlobs = options.deep || options.selector ? undefined : (digest: string) => inShard(digest, options.shard);
  const site = await openSite(store, { readSmallBlobs });
  // Hashing is CPU-bound: threads beyond the cores add nothing but a heap each (the 150 MiB budget).
  const jobs = Math.max(1, Math.min(options.jobs ?? Infinity, availableParallelism()));
  const zstdProgram = options.deep && options.zstdProgram !== false ? (options.zstdProgram ?? findZstdProgram()) : undefined;
  const minWorkerBytes = options.minWorkerBytes ?? (options.deep ? DEFAULT_MIN_WORKER_BYTES / 4 : DEFAULT_MIN_WORKER_BYTES);
  const pool = new JobRunner({ jobs, minWorkerBytes, zstdProgram });
  if (!options.deep && !options.selector) pool.prestart(site.present().map((d) => site.blob(d)).filter((b) => !b.data).map((b) => b.size));
  try {
    const walk = new DocumentWalk(site, findings, { maxDepth: options.maxDepth ?? 32, dockerSave: store.kind === 'docker-archive' });
    const { images, roots } = await walkDocuments(store, site, walk, findings, options.selector);
    if (store instanceof ArchiveStore && store.kind === 'docker-archive') await checkDockerSave(store, walk, roots, findings);
    checkBlobFiles(site, walk.referenced, findings);
    const candidates = options.selector ? [...walk.referenced.keys()] : [...site.present(), ...walk.referenced.keys()];
    const planned = planContents(site, walk, candidates, { deep: options.deep ?? false, maxLayerBytes: options.maxLayerBytes ?? DEFAULT_MAX_LAYER_BYTES, shard: options.shard }, findings);
    const stop = watchProgress(pool, planned.reduce((s, p) => s + p.size, 0), options.onProgress);
    const content = await checkContents(planned, pool, findings).finally(stop);
    if (!options.selector && walk.complete) reportUnreferenced(site, walk.referenced, findings);
    const documents = [...walk.hashed.values()];
    const summary = { blobs: content.blobs + documents.length, bytes: content.bytes + documents.reduce((a, b) => a + b, 0) };
    return report(store, findings, images, summary, started, options);
  } finally {
    await pool.close();
  }
}

interface Roots {
  images: Record<string, string>;
  /** index.json's entries, when the images came from there (not from a docker save manifest.json). */
  roots?: Descriptor[];
}

/** The roots: index.json's entries, a selected image, or (docker save) manifest.json's images. */
async function walkDocuments(store: Store, site: Site, walk: DocumentWalk, findings: Findings, selector: Selector | undefined): Promise<Roots> {
  const top = await checkTopFiles(site, findings);
  if (selector) {
    const target = await resolveTarget(store, selector);
    await walk.fromDescriptors([target.descriptor], 'index.json');
    return { images: labels([target.descriptor]) };
  }
  let fromManifestJson = top.legacyDockerSave;
  if (top.index) fromManifestJson = !(await walk.fromIndexJson(top.index));
  if (!top.index && !top.legacyDockerSave) walk.complete = false; // nothing says which blobs are referenced
  const listed = await store.readIndex().then((doc) => doc.value.manifests, () => undefined);
  if (fromManifestJson) {
    await walk.fromDescriptors(listed ?? [], 'manifest.json');
    return { images: labels(listed ?? []) };
  }
  return { images: labels(listed ?? []), roots: listed };
}

/**
 * docker save: the images manifest.json lists that could not be built, and manifest.json itself,
 * compared with index.json's images when it lists them (Docker 25+).
 */
async function checkDockerSave(store: ArchiveStore, walk: DocumentWalk, roots: Descriptor[] | undefined, findings: Findings): Promise<void> {
  for (const skipped of store.skippedImages) {
    walk.complete = false;
    // Without an index the fault is in manifest.json's shape, which checkDockerSaveManifest reports.
    if (skipped.index !== undefined) findings.add('docker-save-image-skipped', `not verified: ${skipped.message}`, { path: 'manifest.json', jsonPath: `$[${skipped.index}]` });
  }
  const names = new Map<string, string[]>();
  for (const d of roots ?? []) names.set(d.digest, [...(names.get(d.digest) ?? []), ...[d.annotations?.[CONTAINERD_IMAGE_NAME], d.annotations?.[REF_NAME]].filter((n) => n !== undefined)]);
  const images = roots && [...walk.manifests.values()].map((m) => ({ ...m, names: names.get(m.chain[0]!) ?? [] }));
  await checkDockerSaveManifest(store.tar, findings, images);
}

function labels(descriptors: Descriptor[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of descriptors) {
    const name = d.annotations?.[REF_NAME] ?? d.annotations?.[CONTAINERD_IMAGE_NAME] ?? platformString(d.platform);
    out[d.digest] = out[d.digest] ? `${out[d.digest]}, ${name}` : name;
  }
  return out;
}

function reportUnreferenced(site: Site, referenced: Map<string, string[]>, findings: Findings): void {
  for (const digest of site.present()) {
    if (referenced.has(digest)) continue;
    const path = site.blob(digest).path;
    findings.add('blob-unreferenced', 'nothing reachable from index.json points to this blob', { path, digest });
  }
}

function watchProgress(pool: JobRunner, total: number, onProgress: VerifyOptions['onProgress']): () => void {
  if (!onProgress) return () => undefined;
  const timer = setInterval(() => onProgress(Math.min(pool.progress(), total), total), 100);
  return () => {
    clearInterval(timer);
    onProgress(total, total);
  };
}

function report(
  store: Store, findings: Findings, images: Record<string, string>, hashed: { blobs: number; bytes: number }, started: number, options: VerifyOptions,
): VerifyReport {
  const seconds = (performance.now() - started) / 1000;
  const errors = findings.count('error');
  const warnings = findings.count('warning');
  const strict = options.strict ?? false;
  return {
    ref: store.path,
    kind: store.kind,
    path: store.path,
    ok: errors === 0 && (!strict || warnings === 0),
    strict,
    findings: findings.list,
    images,
    summary: {
      ...hashed,
      seconds: round(seconds, 3),
      mbPerSecond: round(hashed.bytes / 1e6 / Math.max(seconds, 1e-6), 1),
      errors,
      warnings,
      infos: findings.count('info'),
      shard: options.shard ? `${options.shard.index}/${options.shard.count}` : '1/1',
      deep: options.deep ?? false,
    },
  };
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;

/** `K/N` with 1 ≤ K ≤ N. */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  const shard = m ? { index: Number(m[1]), count: Number(m[2]) } : undefined;
  if (!shard || shard.count < 1 || shard.index < 1 || shard.index > shard.count) throw new OcikitError(`--shard ${text}: expected K/N with 1 ≤ K ≤ N, e.g. 1/4`);
  return shard;
}

/**
 * Opens what a reference names and verifies it. A directory is verified even without oci-layout; a
 * tarball that cannot be scanned or opened is a finding (the input is a tarball, just a broken one).
 * Only a path that is neither a directory nor a tar file throws (exit 2).
 */
export async function verifyRef(text: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const ref = parseReference(text);
  const selector = options.selector ?? ref.selector;
  const info = await stat(ref.path).catch(() => undefined);
  if (!info) throw new OcikitError(`${ref.path}: no such file or directory`);
  let store: Store;
  if (info.isDirectory() && (ref.kind === undefined || ref.kind === 'oci')) {
    const parts = await Promise.all(['oci-layout', 'index.json', 'blobs'].map((n) => lstat(join(ref.path, n)).then(() => true, () => false)));
    if (!parts.some(Boolean)) throw new OcikitError(`${ref.path}: not an OCI image layout (no oci-layout, index.json or blobs/)`);
    store = new DirStore(ref.path);
  } else if (info.isFile() && ref.kind !== 'oci') {
    if (!(await looksLikeTar(ref.path))) throw new OcikitError(`${ref.path}: not an OCI layout directory or a tar archive`);
    const opened = await openArchive(ref.path, ref.kind, options);
    if ('report' in opened) return { ...opened.report, ref: text };
    store = opened.store;
  } else {
    const wanted = ref.kind === 'oci' ? 'not a directory' : 'not a regular file or a directory';
    throw new OcikitError(`${ref.path}: ${info.isDirectory() ? 'is a directory, not a tar file' : wanted}`);
  }
  try {
    return { ...(await verify(store, { ...options, selector })), ref: text };
  } finally {
    await store.close();
  }
}

async function openArchive(path: string, kind: StoreKind | undefined, options: VerifyOptions): Promise<{ store: ArchiveStore } | { report: VerifyReport }> {
  const started = performance.now();
  const findings = new Findings();
  const fail = (message: string, reportKind: StoreKind) => {
    findings.add('archive-invalid', message, { path: '.' }); // the tarball itself
    const fake = { path, kind: reportKind } as Store;
    return { report: report(fake, findings, {}, { blobs: 0, bytes: 0 }, started, options) };
  };
  let tar;
  try {
    tar = await scanTar(path);
  } catch (err) {
    return fail((err as Error).message, kind ?? 'oci-archive');
  }
  try {
    return { store: await ArchiveStore.open(path, kind === 'oci' ? undefined : kind, { tolerant: true }) };
  } catch (err) {
    const detected = kind ?? (tar.byName.has('manifest.json') ? 'docker-archive' : 'oci-archive');
    if (detected === 'docker-archive') await checkDockerSaveManifest(tar, findings);
    return fail((err as Error).message, detected);
  }
}

