import { ImageAnnotation, isUrl, type Derivation } from '../../model/annotations.js';
import type { Annotations } from '../../model/descriptor.js';

/** `--from-labels [PREFIX...]`: config labels copied as they are (all of them when no prefix is given). */
export function deriveFromLabels(labels: Record<string, string>, prefixes: string[]): Derivation {
  const derived = Object.entries(labels)
    .filter(([key]) => prefixes.length === 0 || prefixes.some((p) => key.startsWith(p)))
    .map(([key, value]) => ({ key, value, source: `config label ${key}` }));
  const notes = derived.length === 0 ? [`no config label${prefixes.length ? ` starts with ${prefixes.join(' or ')}` : ''}`] : [];
  return { derived, notes };
}

/** Label Schema (label-schema.org, retired) keys and the OCI keys that replaced them. */
export const LABEL_SCHEMA_KEYS: ReadonlyArray<[string, string]> = [
  ['org.label-schema.build-date', ImageAnnotation.created],
  ['org.label-schema.url', ImageAnnotation.url],
  ['org.label-schema.vcs-url', ImageAnnotation.source],
  ['org.label-schema.version', ImageAnnotation.version],
  ['org.label-schema.vcs-ref', ImageAnnotation.revision],
  ['org.label-schema.vendor', ImageAnnotation.vendor],
  ['org.label-schema.name', ImageAnnotation.title],
  ['org.label-schema.description', ImageAnnotation.description],
  ['org.label-schema.usage', ImageAnnotation.documentation],
];

/**
 * `--label-schema`: each org.label-schema.* label (or annotation) gives its OCI equivalent, unless the
 * image already states the OCI key itself (as a label or an annotation): the newer key is the truer one.
 */
export function deriveLabelSchema(labels: Record<string, string>, annotations: Annotations): Derivation {
  const result: Derivation = { derived: [], notes: [] };
  for (const [oldKey, ociKey] of LABEL_SCHEMA_KEYS) {
    const fromLabel = labels[oldKey];
    const value = fromLabel ?? annotations[oldKey];
    if (value === undefined) continue;
    const where = fromLabel !== undefined ? `config label ${oldKey}` : `annotation ${oldKey}`;
    const stated = labels[ociKey] !== undefined ? 'config label' : annotations[ociKey] !== undefined ? 'annotation' : undefined;
    if (stated) {
      result.notes.push(`${where} not mapped: the image already has ${ociKey} as a ${stated}`);
    } else if (ociKey === ImageAnnotation.documentation && !isUrl(value)) {
      result.notes.push(`${where} not mapped to ${ociKey}: ${JSON.stringify(value)} is usage text, not a URL`);
    } else {
      result.derived.push({ key: ociKey, value, source: `${where} (Label Schema → OCI)` });
    }
  }
  if (result.derived.length === 0 && result.notes.length === 0) result.notes.push('no org.label-schema.* label or annotation');
  return result;
}
