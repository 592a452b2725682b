import { jsonPath } from '../../model/document.js';

export interface DuplicateKey {
  key: string;
  /** JSON path of the object holding the key twice. */
  jsonPath: string;
}

/**
 * Keys that occur twice in one object. JSON.parse silently keeps the last one, so two tools can read
 * different documents from the same bytes. Call only on text JSON.parse accepted: this scanner relies on
 * the syntax being valid and only tracks strings, nesting and keys.
 */
export function duplicateKeys(text: string, limit = 50): DuplicateKey[] {
  const found: DuplicateKey[] = [];
  const stack: Frame[] = [];
  const path: Array<string | number> = [];
  let expectKey = false;
  for (let i = 0; i < text.length && found.length < limit; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      const top = stack[stack.length - 1];
      if (top?.keys && expectKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (top.keys.has(key)) found.push({ key, jsonPath: jsonPath(path.slice(0, stack.length - 1)) });
        top.keys.add(key);
        path[stack.length - 1] = key;
        expectKey = false;
      }
      i = end;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      stack.push(c === OPEN_BRACE ? { keys: new Set() } : { index: 0 });
      if (c === OPEN_BRACKET) path[stack.length - 1] = 0;
      expectKey = c === OPEN_BRACE;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      stack.pop();
      path.length = stack.length;
    } else if (c === COMMA) {
      const top = stack[stack.length - 1];
      if (top?.keys) expectKey = true;
      else if (top && top.index !== undefined) path[stack.length - 1] = ++top.index;
    }
  }
  return found;
}

interface Frame {
  keys?: Set<string>;
  index?: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

/** Index of the quote closing the string that opens at `start`. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) i++;
    else if (c === QUOTE) return i;
  }
  return text.length;
}
