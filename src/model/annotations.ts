import { isDigest } from './digest.js';

/** The pre-defined annotation keys of the OCI image spec (annotations.md). */
export const ImageAnnotation = {
  created: 'org.opencontainers.image.created',
  authors: 'org.opencontainers.image.authors',
  url: 'org.opencontainers.image.url',
  documentation: 'org.opencontainers.image.documentation',
  source: 'org.opencontainers.image.source',
  version: 'org.opencontainers.image.version',
  revision: 'org.opencontainers.image.revision',
  vendor: 'org.opencontainers.image.vendor',
  licenses: 'org.opencontainers.image.licenses',
  refName: 'org.opencontainers.image.ref.name',
  title: 'org.opencontainers.image.title',
  description: 'org.opencontainers.image.description',
  baseDigest: 'org.opencontainers.image.base.digest',
  baseName: 'org.opencontainers.image.base.name',
} as const;

const KNOWN_KEYS = new Set<string>(Object.values(ImageAnnotation));

export interface AnnotationProblem {
  key: string;
  severity: 'error' | 'warning';
  message: string;
}

type ValueCheck = (value: string) => string | undefined;

/** What each known key's value must look like; keys not listed take any string. */
const VALUE_CHECKS: Record<string, ValueCheck> = {
  [ImageAnnotation.created]: (v) => (isRfc3339(v) ? undefined : 'is not an RFC 3339 date-time (e.g. 2024-01-01T00:00:00Z)'),
  [ImageAnnotation.url]: urlCheck,
  [ImageAnnotation.documentation]: urlCheck,
  [ImageAnnotation.source]: urlCheck,
  [ImageAnnotation.licenses]: (v) => (isSpdxExpression(v) ? undefined : 'is not an SPDX license expression (e.g. "MIT OR Apache-2.0")'),
  [ImageAnnotation.refName]: (v) => (REF_NAME_GRAMMAR.test(v) ? undefined : 'does not match the ref.name grammar ([A-Za-z0-9] parts joined by - . _ : @ + or /)'),
  [ImageAnnotation.baseDigest]: (v) => (isDigest(v) ? undefined : 'is not a digest (algorithm:encoded)'),
  [ImageAnnotation.baseName]: (v) => (parseImageName(v) ? undefined : 'is not an image reference (registry/repository[:tag][@digest])'),
};

function urlCheck(value: string): string | undefined {
  return isUrl(value) ? undefined : 'is not a URL with a scheme (e.g. https://…)';
}

/** Problems with setting `key` to `value`: value formats of known keys (errors), key style (warnings). */
export function checkAnnotation(key: string, value: string): AnnotationProblem[] {
  const problems: AnnotationProblem[] = [];
  if (key === '') return [{ key, severity: 'error', message: 'annotation key is empty' }];
  const valueProblem = VALUE_CHECKS[key]?.(value);
  if (valueProblem) problems.push({ key, severity: 'error', message: `${key}=${JSON.stringify(value)} ${valueProblem}` });
  if (key === ImageAnnotation.baseName && !valueProblem && !isQualified(value)) {
    problems.push({ key, severity: 'warning', message: `${key}=${JSON.stringify(value)} is not fully qualified (did you mean ${qualifyImageName(value)}?)` });
  }
  if (!KNOWN_KEYS.has(key) && key.startsWith('org.opencontainers.')) {
    problems.push({ key, severity: 'warning', message: `${key}: the org.opencontainers prefix is reserved and the image spec defines no such key` });
  } else if (!isReverseDomainKey(key)) {
    problems.push({ key, severity: 'warning', message: `${key}: annotation keys should use reverse domain notation (e.g. com.example.${key.replace(/[^A-Za-z0-9]/g, '') || 'key'})` });
  }
  return problems;
}

/** `com.example.key`: at least two dot-separated parts, the first a lowercase domain label. */
export function isReverseDomainKey(key: string): boolean {
  return /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?)+$/.test(key);
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

export function isRfc3339(value: string): boolean {
  const m = RFC3339.exec(value);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const offsetOk = m[8] === undefined || (Number(m[8]) < 24 && Number(m[9]) < 60);
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth && hour < 24 && minute < 60 && second <= 60 && offsetOk;
}

/** A URL with a scheme and no whitespace (git+ssh://, https://, …). */
export function isUrl(value: string): boolean {
  if (/\s/.test(value) || !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(value)) return false;
  try {
    const url = new URL(value);
    return url.protocol.length > 1 && (url.host !== '' || !/^(https?|ftp):$/.test(url.protocol));
  } catch {
    return false;
  }
}

const SPDX_ID = /^(?:DocumentRef-[A-Za-z0-9.-]+:)?(?:LicenseRef-[A-Za-z0-9.-]+|[A-Za-z0-9][A-Za-z0-9.-]*\+?)$/;

/** SPDX license expression structure: operands joined by AND/OR/WITH, balanced parentheses. */
export function isSpdxExpression(value: string): boolean {
  const tokens = value.replace(/([()])/g, ' $1 ').trim().split(/\s+/).filter(Boolean);
  let depth = 0;
  let expectOperand = true;
  for (const token of tokens) {
    if (token === '(') {
      if (!expectOperand) return false;
      depth++;
    } else if (token === ')') {
      if (expectOperand || --depth < 0) return false;
    } else if (/^(AND|OR|WITH)$/i.test(token)) {
      if (expectOperand) return false;
      expectOperand = true;
    } else {
      if (!expectOperand || !SPDX_ID.test(token)) return false;
      expectOperand = false;
    }
  }
  return tokens.length > 0 && depth === 0 && !expectOperand;
}

/** ref.name grammar from the image spec's annotations (umoci enforces it). */
export const REF_NAME_GRAMMAR = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

/** An image reference split into parts (distribution/reference grammar). */
export interface ImageName {
  /** undefined when the name gives no registry (Docker Hub is then implied). */
  domain: string | undefined;
  path: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::\d+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;

export function parseImageName(text: string): ImageName | undefined {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) return undefined;
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return undefined;
  }
  const parts = rest.split('/');
  let domain: string | undefined;
  if (parts.length > 1 && /[.:]|^localhost$|[A-Z]/.test(parts[0]!)) {
    domain = parts.shift()!;
    if (!DOMAIN.test(domain)) return undefined;
  }
  if (parts.length === 0 || !parts.every((p) => COMPONENT.test(p))) return undefined;
  return { domain, path: parts.join('/'), ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

export function formatImageName(name: ImageName): string {
  return `${name.domain ? `${name.domain}/` : ''}${name.path}${name.tag !== undefined ? `:${name.tag}` : ''}${name.digest ? `@${name.digest}` : ''}`;
}

function isQualified(text: string): boolean {
  return parseImageName(text)?.domain !== undefined;
}

/** `alpine:3` → `docker.io/library/alpine:3`, as Docker resolves short names; other names are kept. */
export function qualifyImageName(text: string): string {
  const name = parseImageName(text);
  if (!name) return text;
  if (name.domain === 'index.docker.io') name.domain = 'docker.io';
  if (name.domain === undefined) {
    name.domain = 'docker.io';
    if (!name.path.includes('/')) name.path = `library/${name.path}`;
  }
  return formatImageName(name);
}

/** An annotation value worked out from the image's own metadata, with where it came from. */
export interface DerivedAnnotation {
  key: string;
  value: string;
  /** For the user: the label, file or document the value was read from and why it was chosen. */
  source: string;
}

/** What a derivation found for one image: values, and notes on what it skipped or doubted. */
export interface Derivation {
  derived: DerivedAnnotation[];
  notes: string[];
}
