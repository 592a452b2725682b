import { DEFAULT_MAX_DOCUMENT_BYTES } from '../../model/document.js';
import { IMAGE_LAYOUT_VERSION } from '../../model/oci-layout.js';
import { ArchiveStore } from '../../store/archive.js';
import { readEntry, resolveEntry, type TarIndex } from '../../store/tar-format.js';
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
    if (file.digest && referenced.has(file.digest)) continue;
    const loc = { path: file.path, digest: file.digest };
    if (file.type === 'symlink') findings.add('blob-symlink', `${file.path} is a symlink; it is not followed`, loc);
    else if (file.type === 'other') findings.add('blob-not-regular', `${file.path} is not a regular file`, loc);
    else if (!file.digest) findings.add('blob-name-invalid', `${file.path} is not named after a valid digest`, { path: file.path });
  }
  if (site.store instanceof ArchiveStore) {
    for (const name of site.store.tar.duplicates) findings.add('archive-duplicate-entry', `${name} occurs more than once in the tarball`, { path: name });
  }
}

/** docker save's manifest.json: every file it names is in the tarball and layers match the config. */
export async function checkDockerSaveManifest(tar: TarIndex, findings: Findings): Promise<void> {
  const manifest = tar.byName.has('manifest.json') ? entryOf(tar, 'manifest.json', { path: 'manifest.json', jsonPath: '$' }, findings) : undefined;
  const raw = manifest && (await readEntry(tar.path, manifest, DEFAULT_MAX_DOCUMENT_BYTES).catch(() => undefined));
  if (!raw) return;
  const loc = { path: 'manifest.json' };
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    findings.add('docker-save-manifest-invalid', 'manifest.json is not valid JSON', loc);
    return;
  }
  if (!Array.isArray(value)) {
    findings.add('docker-save-manifest-invalid', 'manifest.json is not an array', loc);
    return;
  }
  for (const [i, image] of value.entries()) {
    const where = { ...loc, jsonPath: `$[${i}]` };
    if (!isPlainObject(image) || typeof image.Config !== 'string' || !Array.isArray(image.Layers) || !image.Layers.every((l) => typeof l === 'string')) {
      findings.add('docker-save-manifest-invalid', 'entry needs a string Config and a Layers array of strings', where);
      continue;
    }
    const layers = image.Layers as string[];
    layers.forEach((name, j) => entryOf(tar, name, { ...loc, jsonPath: `$[${i}].Layers[${j}]` }, findings));
    const config = entryOf(tar, image.Config, { ...loc, jsonPath: `$[${i}].Config` }, findings);
    if (!config) continue;
    const diffIds = await readEntry(tar.path, config, DEFAULT_MAX_DOCUMENT_BYTES)
      .then((b) => (JSON.parse(b.toString('utf8')) as { rootfs?: { diff_ids?: unknown } })?.rootfs?.diff_ids)
      .catch(() => undefined);
    if (Array.isArray(diffIds) && diffIds.length !== layers.length) {
      findings.add('docker-save-layers-mismatch', `${layers.length} layers listed, the config ${image.Config} has ${diffIds.length} diff_ids`, { ...loc, jsonPath: `$[${i}].Layers` });
    }
  }
}

function entryOf(tar: TarIndex, name: string, loc: { path: string; jsonPath: string }, findings: Findings) {
  try {
    return resolveEntry(tar, name);
  } catch {
    findings.add('docker-save-entry-missing', `${name} is not in the tarball`, loc);
    return undefined;
  }
}
