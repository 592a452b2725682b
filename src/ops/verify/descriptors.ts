import { createHash } from 'node:crypto';
import { digestProblem, EMPTY_JSON_DIGEST, isDigest, isVerifiable, type Digest } from '../../model/digest.js';
import { IMAGE_ANNOTATION_PREFIX, REF_NAME } from '../../model/keys.js';
import { MEDIA_TYPE_GRAMMAR, MediaType } from '../../model/media-types.js';
import type { Findings, Location } from './findings.js';
import { isHttpUrl, isPaddedBase64, isRefName, isRfc3339, isUri } from '../../model/formats.js';
import { isPlainObject, isStringMap } from './formats.js';

/** The fields of a descriptor verify relies on, once they passed their checks. */
export interface CheckedDescriptor {
  mediaType: string;
  /** Grammar-valid, so it may become a path. */
  digest: Digest;
  /** undefined when the size field is unusable. */
  size: number | undefined;
  urls: string[];
  platform?: Record<string, unknown>;
  artifactType?: string;
}

const at = (loc: Location, field: string): Location => ({ ...loc, jsonPath: `${loc.jsonPath ?? '$'}.${field}` });

/**
 * Checks one descriptor's fields (descriptor.md) and returns what is usable. A descriptor without a
 * valid digest returns undefined: its blob is never looked up, so a digest such as
 * `sha256:../../etc/passwd` never becomes a path.
 */
export function checkDescriptor(value: unknown, loc: Location, findings: Findings): CheckedDescriptor | undefined {
  if (!isPlainObject(value)) {
    findings.add('descriptor-invalid', 'descriptor is not a JSON object', loc);
    return undefined;
  }
  const { mediaType, size } = value;
  // Each location is made only for a finding: a walk checks every layer descriptor of every manifest.
  if (typeof mediaType !== 'string') findings.add('descriptor-invalid', 'descriptor has no string mediaType', loc);
  else if (!MEDIA_TYPE_GRAMMAR.test(mediaType)) checkMediaType(mediaType, at(loc, 'mediaType'), findings, 'media-type-invalid');
  const sizeOk = typeof size === 'number' && Number.isSafeInteger(size) && size >= 0;
  if (size === undefined) findings.add('descriptor-invalid', 'descriptor has no size', loc);
  else if (!sizeOk) findings.add('descriptor-size-invalid', `size ${JSON.stringify(size)} is not a non-negative integer`, at(loc, 'size'));
  let digestOk = false;
  if (value.digest === undefined) {
    findings.add('descriptor-invalid', 'descriptor has no digest', loc);
  } else {
    const problem = digestProblem(value.digest);
    if (problem) findings.add('digest-invalid', problem, at(loc, 'digest'));
    else digestOk = true;
  }
  const urls = value.urls === undefined ? [] : checkUrls(value.urls, at(loc, 'urls'), findings);
  if (value.annotations !== undefined) checkAnnotations(value.annotations, at(loc, 'annotations'), findings);
  if (value.artifactType !== undefined) checkMediaType(value.artifactType, at(loc, 'artifactType'), findings, 'artifact-type-invalid');
  if (value.platform !== undefined) checkPlatform(value.platform, at(loc, 'platform'), findings);
  if (typeof mediaType !== 'string' || !digestOk) return undefined;
  const digest = value.digest as Digest; // digestProblem found none: grammar-valid
  const checked: CheckedDescriptor = { mediaType, digest, size: sizeOk ? size : undefined, urls };
  if (isPlainObject(value.platform)) checked.platform = value.platform;
  if (typeof value.artifactType === 'string') checked.artifactType = value.artifactType;
  if (value.data !== undefined) checkData(value.data, checked, at(loc, 'data'), findings);
  if (mediaType === MediaType.ociEmpty && (digest !== EMPTY_JSON_DIGEST || size !== 2)) {
    findings.add('empty-descriptor-invalid', `the empty descriptor should be size 2, digest ${EMPTY_JSON_DIGEST}`, { ...loc, digest });
  }
  if (!isVerifiable(digest)) findings.add('digest-unverifiable', `${digest.slice(0, digest.indexOf(':'))} digests are not verified`, { ...loc, digest });
  return checked;
}

export function checkMediaType(value: unknown, loc: Location, findings: Findings, rule: 'media-type-invalid' | 'artifact-type-invalid'): void {
  if (typeof value !== 'string' || !MEDIA_TYPE_GRAMMAR.test(value)) findings.add(rule, `${JSON.stringify(value)} is not an RFC 6838 media type`, loc);
}

function checkUrls(value: unknown, loc: Location, findings: Findings): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    findings.add('descriptor-url-invalid', 'urls is not an array', loc);
    return [];
  }
  value.forEach((url, i) => {
    const where = { ...loc, jsonPath: `${loc.jsonPath}[${i}]` };
    if (!isUri(url)) findings.add('descriptor-url-invalid', `${JSON.stringify(url)} is not a URI`, where);
    else if (!isHttpUrl(url)) findings.add('descriptor-url-scheme', `${JSON.stringify(url)} is not an http or https URL`, where);
  });
  return value.filter((u): u is string => typeof u === 'string');
}

function checkData(value: unknown, descriptor: CheckedDescriptor, loc: Location, findings: Findings): void {
  if (typeof value !== 'string' || !isPaddedBase64(value)) {
    findings.add('descriptor-data-invalid', 'data is not standard padded base64', loc);
    return;
  }
  const bytes = Buffer.from(value, 'base64');
  if (descriptor.size !== undefined && bytes.length !== descriptor.size) {
    findings.add('descriptor-data-mismatch', `data decodes to ${bytes.length} bytes, size says ${descriptor.size}`, { ...loc, digest: descriptor.digest });
  }
  const algorithm = descriptor.digest.slice(0, descriptor.digest.indexOf(':'));
  if (!isVerifiable(descriptor.digest)) return;
  const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
  if (actual !== descriptor.digest) findings.add('descriptor-data-mismatch', `data hashes to ${actual}`, { ...loc, digest: descriptor.digest });
}

function checkPlatform(value: unknown, loc: Location, findings: Findings): void {
  if (!isPlainObject(value) || typeof value.os !== 'string' || typeof value.architecture !== 'string') {
    findings.add('platform-invalid', 'platform needs string os and architecture', loc);
    return;
  }
  for (const key of ['variant', 'os.version']) {
    if (value[key] !== undefined && typeof value[key] !== 'string') findings.add('platform-invalid', `${key} is not a string`, loc);
  }
  for (const key of ['os.features', 'features']) {
    const v = value[key];
    if (v !== undefined && !(Array.isArray(v) && v.every((x) => typeof x === 'string'))) findings.add('platform-invalid', `${key} is not an array of strings`, loc);
  }
}

const IMAGE = IMAGE_ANNOTATION_PREFIX;

/** annotations.md: a string map; the image spec's own keys hold values in their formats. */
export function checkAnnotations(value: unknown, loc: Location, findings: Findings): void {
  if (!isStringMap(value)) {
    findings.add('annotations-invalid', 'annotations are not a map of string to string', loc);
    return;
  }
  const key = (k: string): Location => ({ ...loc, jsonPath: `${loc.jsonPath ?? '$'}[${JSON.stringify(k)}]` });
  const created = value[`${IMAGE}created`];
  if (created !== undefined && !isRfc3339(created)) findings.add('annotation-created-invalid', `${IMAGE}created ${JSON.stringify(created)} is not RFC 3339`, key(`${IMAGE}created`));
  for (const name of ['url', 'source', 'documentation']) {
    const v = value[`${IMAGE}${name}`];
    if (v !== undefined && !isUri(v)) findings.add('annotation-url-invalid', `${IMAGE}${name} ${JSON.stringify(v)} is not a URL`, key(`${IMAGE}${name}`));
  }
  const baseDigest = value[`${IMAGE}base.digest`];
  if (baseDigest !== undefined) {
    if (!isDigest(baseDigest)) findings.add('annotation-base-digest-invalid', `${IMAGE}base.digest ${JSON.stringify(baseDigest)} is not a digest`, key(`${IMAGE}base.digest`));
    if (value[`${IMAGE}base.name`] === undefined) findings.add('annotation-base-name-missing', `${IMAGE}base.digest is set without ${IMAGE}base.name`, key(`${IMAGE}base.digest`));
  }
  const refName = value[REF_NAME];
  if (refName !== undefined && !isRefName(refName)) findings.add('annotation-ref-name-invalid', `${REF_NAME} ${JSON.stringify(refName)} does not follow the ref name grammar`, key(REF_NAME));
}
