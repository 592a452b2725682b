/** Setting an annotation: what each known key's value must look like, and the derived values' shape. */
import { isDigest } from './digest.js';
import { isQualified, parseImageName, qualifyImageName } from './image-name.js';
import { isRefName, isRfc3339, isSpdxExpression, isUrl, REF_NAME_RULE } from './formats.js';
import { ImageAnnotation, isReverseDomainKey } from './keys.js';

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
  [ImageAnnotation.refName]: (v) => (isRefName(v) ? undefined : `does not match the ref.name grammar (${REF_NAME_RULE})`),
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

// Transitional, for the ops files being rewritten on another branch; deleted when their imports switch.
export { ImageAnnotation } from './keys.js';
export { formatImageName, parseImageName, qualifyImageName } from './image-name.js';
export { isUrl } from './formats.js';
