import { DEFAULT_MAX_DOCUMENT_BYTES } from '../../model/document.js';
import { IMAGE_LAYOUT_VERSION } from '../../model/oci-layout.js';
import { ArchiveStore } from '../../store/archive.js';
import { digestFromBlobPath } from '../../model/digest.js';
import { familiarName } from '../../model/image-name.js';
import { normalizeEntryName, readEntry, resolveEntry, type TarEntry, type TarIndex } from '../../store/tar-format.js';
import type { Findings } from './findings.js';
import { isPlainObject } from './formats.js';
import type { Site } from './site.js';

export interface TopFiles {
  /** index.json as stored; undefined when absent or unreadable. */
  index: Buffer | undefined;
  /** A docker save tarball without index.json: its images are in manifest.json only. */
  legacyDockerSave: boolean;
}

/** image-layout.md: oci-layout, index.json and blobs/ are where they must be. */
export async function checkTopFiles(site: Site, findings: Findings): Promise<TopFiles> {
  const index = await readTop(site, 'index.json', findings);
  const legacyDockerSave = site.store.kind === 'docker-archive' && index === undefined;
  if (legacyDockerSave) return { index, legacyDockerSave };
  if (index === undefined && !unreadable(findings, 'index.json')) findings.add('layout-missing-index', 'index.json is missing', { path: 'index.json' });
  checkOciLayout(await readTop(site, 'oci-layout', findings), findings);
  if (site.linkedDirs.includes('blobs')) findings.add('layout-blobs-symlink', 'blobs/ is a symlink; no blob is read through it', { path: 'blobs' });
  else if (!site.hasBlobsDir) findings.add('layout-missing-blobs', 'the blobs/ directory is missing', { path: 'blobs' });
  for (const dir of site.linkedDirs.filter((d) => d !== 'blobs')) findings.add('layout-blobs-symlink', `${dir} is a symlink; no blob is read through it`, { path: dir });
  return { index, legacyDockerSave };
}

const unreadable = (findings: Findings, path: string) => findings.list.some((f) => f.rule === 'layout-file-unreadable' && f.path === path);

async function readTop(site: Site, name: string, findings: Findings): Promise<Buffer | undefined> {
  try {
    return await site.readTop(name);
  } catch (err) {
    findings.add('layout-file-unreadable', (err as Error).message, { path: name });
    return undefined;
  }
}

function checkOciLayout(raw: Buffer | undefined, findings: Findings): void {
  const loc = { path: 'oci-layout' };
  if (raw === undefined) {
    if (!unreadable(findings, 'oci-layout')) findings.add('layout-missing-oci-layout', 'oci-layout is missing', loc);
    return;
  }
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    findings.add('layout-oci-layout-invalid', 'oci-layout is not valid JSON', loc);
    return;
  }
  if (!isPlainObject(value) || typeof value.imageLayoutVersion !== 'string') {
    findings.add('layout-oci-layout-invalid', 'oci-layout needs a string imageLayoutVersion', { ...loc, jsonPath: '$.imageLayoutVersion' });
  } else if (value.imageLayoutVersion !== IMAGE_LAYOUT_VERSION) {
    findings.add('layout-version-unsupported', `imageLayoutVersion is ${JSON.stringify(value.imageLayoutVersion)}, not "${IMAGE_LAYOUT_VERSION}"`, { ...loc, jsonPath: '$.imageLayoutVersion' });
  }
}

/**
 * Files under blobs/ that are not blobs: bad names, symlinks, devices. Referenced ones were already
 * reported where they are referenced.
 */
export function checkBlobFiles(site: Site, referenced: Map<string, string[]>, findings: Findings): void {
  for (const file of site.files) {
    if ((file.digest && referenced.has(file.digest)) || site.linkedDirs.includes(file.path)) continue;
    const loc = { path: file.path, digest: file.digest };
    if (file.type === 'symlink') findings.add('blob-symlink', `${file.path} is a symlink; it is not followed`, loc);
    else if (file.type === 'other') findings.add('blob-not-regular', `${file.path} is not a regular file`, loc);
    else if (!file.digest) findings.add('blob-name-invalid', `${file.path} is not named after a valid digest`, { path: file.path });
  }
  if (site.store instanceof ArchiveStore) {
    for (const name of site.store.tar.duplicates) findings.add('archive-duplicate-entry', `${name} occurs more than once in the tarball`, { path: name });
  }
}

/** An image manifest the walk read from index.json, as manifest.json entries are compared with it. */
export interface SavedImage {
  /** The index.json entry's names (io.containerd.image.name, ref.name). */
  names: string[];
  path: string;
  config?: string;
  layers: Array<string | undefined>;
  diffIds?: unknown[];
}

type Loc = { path: string; jsonPath: string };

/**
 * docker save's manifest.json: every file it names is in the tarball, layers match the config, and
 * (Docker 25+, whose index.json lists the images too) each entry agrees with its image's manifest.
 */
export async function checkDockerSaveManifest(tar: TarIndex, findings: Findings, images?: SavedImage[]): Promise<void> {
  const value = await readManifestJson(tar, findings);
  if (value === undefined) return;
  const loc = { path: 'manifest.json' };
  for (const [i, image] of value.entries()) {
    const where = { ...loc, jsonPath: `$[${i}]` };
    if (!isPlainObject(image) || typeof image.Config !== 'string' || !Array.isArray(image.Layers) || !image.Layers.every((l) => typeof l === 'string')) {
      findings.add('docker-save-manifest-invalid', 'entry needs a string Config and a Layers array of strings', where);
      continue;
    }
    const entry = { Config: image.Config, Layers: image.Layers as string[], RepoTags: Array.isArray(image.RepoTags) ? image.RepoTags.filter((t) => typeof t === 'string') : [] };
    const layers = entry.Layers.map((name, j) => entryOf(tar, name, { ...loc, jsonPath: `$[${i}].Layers[${j}]` }, findings));
    const config = entryOf(tar, entry.Config, { ...loc, jsonPath: `$[${i}].Config` }, findings);
    if (config) await checkSavedConfig(tar, config, entry, { ...loc, jsonPath: `$[${i}]` }, findings);
    if (images?.length) compareWithImage(entry, config, layers, pairOf(entry, config, i, value.length, images), where, findings);
  }
}

/** manifest.json as an array, or undefined (with a finding when it is there but unusable). */
async function readManifestJson(tar: TarIndex, findings: Findings): Promise<unknown[] | undefined> {
  if (!tar.byName.has('manifest.json')) return undefined;
  const loc = { path: 'manifest.json' };
  const copies = tar.entries.filter((e) => e.name === 'manifest.json');
  if (copies.length > 1 && !(await sameContent(tar, copies))) {
    findings.add('docker-save-manifest-invalid', `manifest.json occurs ${copies.length} times with different content; tools disagree on which copy counts`, loc);
    return undefined;
  }
  const manifest = entryOf(tar, 'manifest.json', { ...loc, jsonPath: '$' }, findings);
  if (!manifest) return undefined;
  let value: unknown;
  try {
    value = JSON.parse((await readEntry(tar.path, manifest, DEFAULT_MAX_DOCUMENT_BYTES)).toString('utf8'));
  } catch (err) {
    findings.add('docker-save-manifest-invalid', err instanceof SyntaxError ? 'manifest.json is not valid JSON' : `manifest.json cannot be read: ${(err as Error).message}`, loc);
    return undefined;
  }
  if (Array.isArray(value)) return value;
  findings.add('docker-save-manifest-invalid', 'manifest.json is not an array', loc);
  return undefined;
}

async function sameContent(tar: TarIndex, copies: TarEntry[]): Promise<boolean> {
  if (copies.some((c) => c.type !== 'file' || c.size !== copies[0]!.size || c.size > DEFAULT_MAX_DOCUMENT_BYTES)) return false;
  const contents = await Promise.all(copies.map((c) => readEntry(tar.path, c)));
  return contents.every((c) => c.equals(contents[0]!));
}

interface SaveEntry {
  Config: string;
  Layers: string[];
  RepoTags: string[];
}

/** The Config parses as an image config, and lists as many diff_ids as the entry lists layers. */
async function checkSavedConfig(tar: TarIndex, config: TarEntry, entry: SaveEntry, loc: Loc, findings: Findings): Promise<void> {
  let value: unknown;
  try {
    value = JSON.parse((await readEntry(tar.path, config, DEFAULT_MAX_DOCUMENT_BYTES)).toString('utf8'));
  } catch (err) {
    const why = err instanceof SyntaxError ? 'is not valid JSON' : `cannot be read: ${(err as Error).message}`;
    findings.add('docker-save-config-invalid', `the config ${entry.Config} ${why}`, { ...loc, jsonPath: `${loc.jsonPath}.Config` });
    return;
  }
  const diffIds = isPlainObject(value) && isPlainObject(value.rootfs) ? value.rootfs.diff_ids : undefined;
  if (!Array.isArray(diffIds)) {
    findings.add('docker-save-config-invalid', `the config ${entry.Config} has no rootfs.diff_ids array`, { ...loc, jsonPath: `${loc.jsonPath}.Config` });
  } else if (diffIds.length !== entry.Layers.length) {
    findings.add('docker-save-layers-mismatch', `${entry.Layers.length} layers listed, the config ${entry.Config} has ${diffIds.length} diff_ids`, { ...loc, jsonPath: `${loc.jsonPath}.Layers` });
  }
}

/** The image an entry describes: the one with its config, else the one tagged with its RepoTags, else by position. */
function pairOf(entry: SaveEntry, config: TarEntry | undefined, i: number, count: number, images: SavedImage[]): SavedImage | undefined {
  const configDigest = config && digestFromBlobPath(config.name);
  const tags = new Set(entry.RepoTags.map(familiarName));
  const tagged = (image: SavedImage) => image.names.some((n) => tags.has(familiarName(n)));
  const byConfig = images.filter((image) => configDigest !== undefined && image.config === configDigest);
  if (byConfig.length) return byConfig.find(tagged) ?? byConfig[0];
  const byTag = images.filter(tagged);
  if (byTag.length === 1) return byTag[0];
  return count === images.length ? images[i] : undefined;
}

function compareWithImage(entry: SaveEntry, config: TarEntry | undefined, layers: Array<TarEntry | undefined>, image: SavedImage | undefined, where: Loc, findings: Findings): void {
  if (!image) {
    findings.add('docker-save-image-mismatch', `no image in index.json has the config ${entry.Config} or the tags ${JSON.stringify(entry.RepoTags)}`, where);
    return;
  }
  const configDigest = config && digestFromBlobPath(config.name);
  if (configDigest && configDigest !== image.config) {
    findings.add('docker-save-image-mismatch', `Config is ${configDigest}; the manifest ${image.path} has config ${image.config ?? '(none)'}`, { ...where, jsonPath: `${where.jsonPath}.Config` });
  }
  if (layers.length !== image.layers.length) {
    findings.add('docker-save-image-mismatch', `${layers.length} layers listed; the manifest ${image.path} has ${image.layers.length}`, { ...where, jsonPath: `${where.jsonPath}.Layers` });
  }
  layers.forEach((layer, j) => {
    const digest = layer && digestFromBlobPath(layer.name);
    if (!digest || j >= image.layers.length || digest === image.layers[j] || digest === image.diffIds?.[j]) return;
    findings.add('docker-save-image-mismatch', `Layers[${j}] is ${digest}; layer ${j} of the manifest ${image.path} is ${image.layers[j]}`, { ...where, jsonPath: `${where.jsonPath}.Layers[${j}]` });
  });
}

function entryOf(tar: TarIndex, name: string, loc: Loc, findings: Findings): TarEntry | undefined {
  try {
    return resolveEntry(tar, name);
  } catch (err) {
    const present = (() => {
      try {
        return tar.byName.has(normalizeEntryName(name));
      } catch {
        return false;
      }
    })();
    findings.add('docker-save-entry-missing', present ? `${name} cannot be read: ${(err as Error).message}` : `${name} is not in the tarball`, loc);
    return undefined;
  }
}
