import type * as z from 'zod/mini';
import { OcikitError } from '../errors.js';

/** Manifests and indexes above this are refused before parsing (containers/image uses the same cap). */
export const DEFAULT_MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;

/** A JSON document as stored (raw bytes) and as parsed. Unchanged documents are written back as `raw`. */
export interface Doc<T> {
  raw: Buffer;
  value: T;
}

/** Real documents nest a handful of levels; deeper ones are refused before parsing (recursive code would overflow). */
export const MAX_JSON_DEPTH = 128;

/** Why a document is refused before parsing for its nesting, or undefined when it is shallow enough. */
export function nestingProblem(raw: Buffer): string | undefined {
  const at = depthOver(raw, MAX_JSON_DEPTH);
  return at === undefined ? undefined : `JSON nests deeper than ${MAX_JSON_DEPTH} levels (at byte ${at}); refusing to parse it`;
}

/** Fatal: a lenient decode turns bad bytes into U+FFFD, which a writing command would then store. The BOM is kept, so JSON.parse refuses it. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function parseJson(raw: Buffer, where: string): unknown {
  const tooDeep = nestingProblem(raw);
  if (tooDeep) throw new OcikitError(`${where}: ${tooDeep}`);
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw new OcikitError(`${where}: not valid UTF-8`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new OcikitError(`${where}: not valid JSON (${(err as Error).message.split('\n')[0]})`);
  }
}

/** The offset where nesting first exceeds `max` ([ and { outside strings), or undefined. */
function depthOver(raw: Buffer, max: number): number | undefined {
  if (openingsAtMost(raw, max)) return undefined;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return i;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return undefined;
}

/**
 * Whether the document holds at most `max` [ and { bytes, in strings or not: then it cannot nest deeper
 * than `max`. Most do, and indexOf finds them natively, several times faster than the byte loop above.
 */
function openingsAtMost(raw: Buffer, max: number): boolean {
  let n = 0;
  for (const byte of [0x7b, 0x5b]) {
    for (let i = raw.indexOf(byte); i !== -1; i = raw.indexOf(byte, i + 1)) if (++n > max) return false;
  }
  return true;
}

/**
 * Validates with the schema but returns the parsed JSON itself, not zod's copy: zod reorders keys,
 * and changed documents must keep their key order and unknown fields.
 */
export function parseDocument<S extends z.ZodMiniType>(schema: S, raw: Buffer, where: string): Doc<z.infer<S>> {
  const value = parseJson(raw, where);
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new OcikitError(`${where}: ${jsonPath(issue.path)}: ${issueText(issue)}`);
  }
  return { raw, value: value as z.infer<S> };
}

export function jsonPath(path: readonly PropertyKey[]): string {
  let out = '$';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) out += `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

/** Serializes a changed document in the style of its original bytes (indentation, trailing newline). */
export function serializeLike(value: unknown, original?: Buffer): Buffer {
  const text = original?.toString('utf8') ?? '';
  const indent = /^[{[]\r?\n([ \t]+)/.exec(text)?.[1];
  const body = JSON.stringify(value, null, indent);
  return Buffer.from(text.endsWith('\n') ? `${body}\n` : body);
}

/** zod/mini carries no message locale (that keeps the CLI small and fast to start): say it ourselves. */
function issueText(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}`;
    case 'too_small':
    case 'too_big':
      return `value out of range`;
    case 'invalid_format':
      return `invalid ${issue.format}`;
    default:
      return issue.message && issue.message !== 'Invalid input' ? issue.message : issue.code.replace(/_/g, ' ');
  }
}
