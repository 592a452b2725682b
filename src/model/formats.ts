/** Value formats the image spec names: RFC 3339 date-times, URIs and URLs, padded base64, ref names, SPDX expressions. */

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

/** The last string isRfc3339 judged: a config's history entries mostly repeat one `created` (a Date and a match each). */
let lastDate: string | undefined;
let lastDateValid = false;

/** RFC 3339 §5.6 date-time, with field ranges checked (a leap second is allowed). */
export function isRfc3339(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  if (value !== lastDate) {
    lastDateValid = parseRfc3339(value);
    lastDate = value;
  }
  return lastDateValid;
}

function parseRfc3339(value: string): boolean {
  const m = RFC3339.exec(value);
  if (!m) return false;
  const [, year, month, day, hour, minute, second, offH, offM] = m.map(Number) as number[];
  const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
  return month! >= 1 && month! <= 12 && day! >= 1 && day! <= daysInMonth && hour! <= 23 && minute! <= 59 && second! <= 60
    && (offH === undefined || Number.isNaN(offH) || offH <= 23) && (offM === undefined || Number.isNaN(offM) || offM <= 59);
}

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** An absolute URI (RFC 3986: scheme ":" hier-part), as WHATWG URL parsing accepts it, without whitespace. */
export function isUri(value: unknown): boolean {
  if (typeof value !== 'string' || /\s/.test(value) || !SCHEME.test(value)) return false;
  return URL.canParse(value);
}

export function isHttpUrl(value: unknown): boolean {
  return isUri(value) && /^https?:\/\/[^/]/i.test(value as string);
}

/**
 * A URL a user would follow: an absolute URI whose web schemes (http, https, ftp) name a host;
 * other schemes (git+ssh:, mailto:) are taken as they are.
 */
export function isUrl(value: string): boolean {
  if (!isUri(value)) return false;
  const url = new URL(value);
  return url.protocol.length > 1 && (url.host !== '' || !/^(https?|ftp):$/.test(url.protocol));
}

/** RFC 4648 §4 standard alphabet with padding. */
export function isPaddedBase64(value: string): boolean {
  return /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(value);
}

const REF_COMPONENT = '[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*';
/** annotations.md: `ref ::= component ("/" component)*` (a SHOULD in the spec; umoci enforces it). */
const REF_NAME_GRAMMAR = new RegExp(`^${REF_COMPONENT}(?:/${REF_COMPONENT})*$`);

/** What a ref name that fails isRefName should have been, for messages. */
export const REF_NAME_RULE = '[A-Za-z0-9] parts joined by - . _ : @ + or /';

export function isRefName(value: string): boolean {
  return REF_NAME_GRAMMAR.test(value);
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
