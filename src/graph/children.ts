import type { Descriptor } from '../model/descriptor.js';
import { isDigest } from '../model/digest.js';
import { DEFAULT_MAX_DOCUMENT_BYTES, MAX_JSON_DEPTH } from '../model/document.js';
import { isJsonType, mediaTypeInfo } from '../model/media-types.js';
import type { Store } from '../store/store.js';
import { readDocument, readJson, type WalkedDoc } from './read.js';
import type { Role, WalkNode } from './walk.js';

export function childrenOf(node: WalkNode, parsed: WalkedDoc): WalkNode[] {
  const known = new Set<object>();
  const out: WalkNode[] = [];
  const schemaChecked = parsed.kind === 'index' || parsed.kind === 'manifest';
  const add = (d: unknown, role: Role, jsonPath: string) => {
    if (!isObject(d) || (!schemaChecked && !looksLikeDescriptor(d))) return;
    known.add(d);
    out.push({ descriptor: d as Descriptor, role, parent: node, jsonPath, depth: node.depth + 1 });
  };
  if (parsed.kind === 'index') {
    parsed.doc.value.manifests.forEach((d, i) => add(d, 'child', `$.manifests[${i}]`));
    add(parsed.doc.value.subject, 'subject', '$.subject');
  } else if (parsed.kind === 'manifest') {
    add(parsed.doc.value.config, 'config', '$.config');
    parsed.doc.value.layers.forEach((d, i) => add(d, 'layer', `$.layers[${i}]`));
    add(parsed.doc.value.subject, 'subject', '$.subject');
  } else if (parsed.kind === 'artifact' && isObject(parsed.doc.value)) {
    const { blobs, subject } = parsed.doc.value;
    if (Array.isArray(blobs)) blobs.forEach((d, i) => add(d, 'layer', `$.blobs[${i}]`));
    add(subject, 'subject', '$.subject');
  }
  for (const found of findExtensionDescriptors(parsed.doc.value, known)) {
    out.push({ descriptor: found.descriptor, role: 'extension', parent: node, jsonPath: found.jsonPath, depth: node.depth + 1 });
  }
  return out;
}

/**
 * The `subject` a document names (indexes, manifests, artifact manifests, JSON of unknown types), read
 * from the store. Unreadable indexes, manifests and artifacts are errors; other blobs are then opaque.
 */
export async function readSubject(store: Store, d: Descriptor): Promise<Descriptor | undefined> {
  const kind = mediaTypeInfo(d.mediaType)?.kind;
  if (kind === 'index' || kind === 'manifest') return subjectIn((await readDocument(store, d))?.doc.value);
  if (kind === 'artifact') return subjectIn((await readJson(store, d)).value);
  if (kind !== undefined || !isJsonType(d.mediaType) || d.size > DEFAULT_MAX_DOCUMENT_BYTES) return undefined;
  return subjectIn((await readJson(store, d).catch(() => undefined))?.value);
}

function subjectIn(value: unknown): Descriptor | undefined {
  const subject = isObject(value) ? value.subject : undefined;
  return isObject(subject) && looksLikeDescriptor(subject) ? (subject as Descriptor) : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects shaped like a descriptor outside the places the spec defines: kept by gc and copy all the same. */
export function findExtensionDescriptors(value: unknown, known: Set<object>, path = '$'): Array<{ descriptor: Descriptor; jsonPath: string }> {
  const found: Array<{ descriptor: Descriptor; jsonPath: string }> = [];
  // Keys are kept on a stack and joined into a path only for a find: most objects scanned are not descriptors.
  const keys: Array<string | number> = [];
  const visit = (v: unknown, depth: number): void => {
    if (depth > MAX_JSON_DEPTH) return; // deeper than parseJson accepts; callers that JSON.parse themselves must not overflow here
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        keys.push(i);
        visit(v[i], depth + 1);
        keys.pop();
      }
      return;
    }
    if (!known.has(v) && looksLikeDescriptor(v)) found.push({ descriptor: v as Descriptor, jsonPath: pathOf(path, keys) });
    for (const key in v) {
      keys.push(key);
      visit((v as Record<string, unknown>)[key], depth + 1);
      keys.pop();
    }
  };
  visit(value, 0);
  return found;
}

function pathOf(start: string, keys: Array<string | number>): string {
  let p = start;
  for (const key of keys) p += typeof key === 'number' ? `[${key}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
  return p;
}

/** The rule, nothing more: odd annotations, platform or urls do not make a blob unreachable. */
export function looksLikeDescriptor(v: object): boolean {
  const o = v as Record<string, unknown>;
  return typeof o.mediaType === 'string' && isDigest(o.digest) && Number.isSafeInteger(o.size) && (o.size as number) >= 0;
}
