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
  const strings = new StringScanner(text);
  let expectKey = false;
  for (let i = 0; i < text.length && found.length < limit; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = strings.end(i);
      const top = stack[stack.length - 1];
      if (top?.keys && expectKey) {
        // Most keys hold no escape: their text between the quotes is the key, without a JSON.parse per key.
        const key = strings.escaped ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end);
        if (hasKey(top, key)) found.push({ key, jsonPath: jsonPath(path.slice(0, stack.length - 1)) });
        addKey(top, key);
        path[stack.length - 1] = key;
        expectKey = false;
      }
      i = end;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      stack.push(c === OPEN_BRACE ? { keys: [] } : { index: 0 });
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
  /** An object's keys so far: a list while short (most objects, a descriptor's three), a set past SMALL_OBJECT. */
  keys?: string[] | Set<string>;
  index?: number;
}

const SMALL_OBJECT = 16;

function hasKey(frame: Frame, key: string): boolean {
  return Array.isArray(frame.keys) ? frame.keys.includes(key) : frame.keys!.has(key);
}

function addKey(frame: Frame, key: string): void {
  if (!Array.isArray(frame.keys)) frame.keys!.add(key);
  else if (frame.keys.length < SMALL_OBJECT) frame.keys.push(key);
  else frame.keys = new Set([...frame.keys, key]);
}

const QUOTE = 0x22;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

/**
 * Finds where strings end with indexOf, natively, rather than a loop over their characters (most of a
 * manifest's text is digests and media types). The next backslash is looked up once and kept until passed,
 * so text without escapes is searched for one once, not once per string.
 */
class StringScanner {
  /** Whether the string `end` last scanned holds an escape. */
  escaped = false;
  /** The next backslash at or after where the last search started (Infinity: none left). */
  private backslash = -1;

  constructor(private readonly text: string) {}

  /** Index of the quote closing the string that opens at `start`. */
  end(start: number): number {
    this.escaped = false;
    for (let from = start + 1; ;) {
      const quote = this.text.indexOf('"', from);
      if (quote === -1) return this.text.length;
      if (this.backslash < from) {
        const next = this.text.indexOf('\\', from);
        this.backslash = next === -1 ? Infinity : next;
      }
      if (this.backslash > quote) return quote;
      this.escaped = true;
      from = this.backslash + 2; // past the backslash and the character it escapes
    }
  }
}
