import { OcikitError } from '../../errors.js';
import { ImageAnnotation, isUrl, parseImageName, qualifyImageName, type Derivation } from '../../model/annotations.js';
import { isDigest } from '../../model/digest.js';

export const LIFECYCLE_LABEL = 'io.buildpacks.lifecycle.metadata';
export const PROJECT_LABEL = 'io.buildpacks.project.metadata';

interface LifecycleMetadata {
  runImage?: { topLayer?: unknown; reference?: unknown; image?: unknown };
  stack?: { runImage?: { image?: unknown } };
}

interface ProjectMetadata {
  source?: { type?: unknown; version?: Record<string, unknown>; metadata?: Record<string, unknown> };
}

/**
 * `--from-buildpacks`: the run image the lifecycle exported onto (base.name from runImage.image,
 * base.digest from the digest in runImage.reference) and the project source (url, commit).
 */
export function deriveFromBuildpacks(labels: Record<string, string>, diffIds: readonly string[]): Derivation {
  const result: Derivation = { derived: [], notes: [] };
  const lifecycle = parseLabel<LifecycleMetadata>(labels, LIFECYCLE_LABEL);
  const project = parseLabel<ProjectMetadata>(labels, PROJECT_LABEL);
  if (!lifecycle && !project) {
    result.notes.push(`no ${LIFECYCLE_LABEL} or ${PROJECT_LABEL} label: not built by buildpacks?`);
    return result;
  }
  if (lifecycle) runImage(lifecycle, diffIds, result);
  if (project) projectSource(project, result);
  return result;
}

function parseLabel<T>(labels: Record<string, string>, key: string): T | undefined {
  const text = labels[key];
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as T;
  } catch {
    // reported below
  }
  throw new OcikitError(`config label ${key} is not a JSON object`);
}

function runImage(metadata: LifecycleMetadata, diffIds: readonly string[], result: Derivation): void {
  const run = metadata.runImage ?? {};
  const image = str(run.image) ?? str(metadata.stack?.runImage?.image);
  const imageField = str(run.image) !== undefined ? 'runImage.image' : 'stack.runImage.image';
  if (image && parseImageName(image)) {
    result.derived.push({ key: ImageAnnotation.baseName, value: qualifyImageName(stripDigest(image)), source: `${LIFECYCLE_LABEL} ${imageField} (the run image)` });
  } else {
    result.notes.push(`${LIFECYCLE_LABEL} has no usable runImage.image`);
  }
  const reference = str(run.reference);
  const digest = reference ? digestIn(reference) : undefined;
  if (digest) {
    result.derived.push({ key: ImageAnnotation.baseDigest, value: digest, source: `${LIFECYCLE_LABEL} runImage.reference ${reference}` });
  } else if (reference) {
    result.notes.push(`runImage.reference ${JSON.stringify(reference)} names no manifest digest (an image ID from a daemon?); base.digest not set`);
  }
  const topLayer = str(run.topLayer);
  if (topLayer) {
    const at = diffIds.indexOf(topLayer);
    result.notes.push(at >= 0
      ? `runImage.topLayer is layer ${at}: the run image is the image's first ${at + 1} layer(s)`
      : `runImage.topLayer ${topLayer} is not one of the image's diff_ids: the metadata does not match the layers (rebased without updating it?)`);
  }
}

function projectSource(metadata: ProjectMetadata, result: Derivation): void {
  const source = metadata.source;
  if (!source) {
    result.notes.push(`${PROJECT_LABEL} has no source`);
    return;
  }
  const url = ['url', 'repository', 'source'].map((k) => str(source.metadata?.[k])).find((v) => v !== undefined);
  if (url && isUrl(url)) result.derived.push({ key: ImageAnnotation.source, value: url, source: `${PROJECT_LABEL} source.metadata (${str(source.type) ?? 'source'} url)` });
  else if (url) result.notes.push(`${PROJECT_LABEL} source url ${JSON.stringify(url)} is not a URL`);
  const commit = str(source.version?.commit) ?? str(source.version?.revision);
  if (commit) result.derived.push({ key: ImageAnnotation.revision, value: commit, source: `${PROJECT_LABEL} source.version.commit` });
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function digestIn(reference: string): string | undefined {
  const at = reference.lastIndexOf('@');
  const digest = at >= 0 ? reference.slice(at + 1) : undefined;
  return digest && isDigest(digest) ? digest : undefined;
}

function stripDigest(name: string): string {
  const at = name.indexOf('@');
  return at >= 0 ? name.slice(0, at) : name;
}
