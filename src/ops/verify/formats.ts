/** Value formats the image spec names: RFC 3339 date-times, URIs, padded base64, ref names. */

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

/** An absolute URI (RFC 3986: scheme ":" hier-part), as WHATWG URL parsing accepts it, without whitespace. */
export function isUri(value: unknown): boolean {
  if (typeof value !== 'string' || /\s/.test(value) || !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(value)) return false;
  return URL.canParse(value);
}

export function isHttpUrl(value: unknown): boolean {
  return isUri(value) && /^https?:\/\/[^/]/i.test(value as string);
}

/** RFC 4648 §4 standard alphabet with padding. */
export function isPaddedBase64(value: string): boolean {
  return /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(value);
}

const REF_COMPONENT = '[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*';
const REF_NAME = new RegExp(`^${REF_COMPONENT}(?:/${REF_COMPONENT})*$`);

/** annotations.md: `ref ::= component ("/" component)*`. */
export function isRefName(value: string): boolean {
  return REF_NAME.test(value);
}

export function isStringMap(value: unknown): value is Record<string, string> {
  return isPlainObject(value) && Object.values(value).every((v) => typeof v === 'string');
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
