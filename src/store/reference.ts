import { existsSync } from 'node:fs';
import { OcikitError } from '../errors.js';
import { digestProblem, isDigest } from '../model/digest.js';
import type { StoreKind } from './store.js';

/** What a REF names inside a store: a tag (ref name / RepoTag) or a digest. */
export type Selector = { tag: string } | { digest: string };

export interface Reference {
  /** undefined when the user gave a bare path and the format is detected from the content. */
  kind: StoreKind | undefined;
  path: string;
  selector: Selector | undefined;
  /** The text the user typed, for messages. */
  text: string;
}

const TRANSPORTS: Record<string, StoreKind> = { oci: 'oci', 'oci-archive': 'oci-archive', 'docker-archive': 'docker-archive' };
const KNOWN = Object.keys(TRANSPORTS).join(', ');
const ENCODED_FORM: Record<string, string> = { sha256: 'sha256: and 64 lowercase hex digits', sha512: 'sha512: and 128 lowercase hex digits' };

/** What a transport name looks like (`docker`, `containers-storage`): a scheme, as in skopeo's `NAME:…`. */
const TRANSPORT_NAME = /^[A-Za-z][A-Za-z0-9+.-]*$/;

/** An `@` followed by something that was meant to be a digest: `algorithm:…`. */
const DIGEST_ATTEMPT = /@([a-z0-9]+(?:[+._-][a-z0-9]+)*:[^/@]*)$/;

/**
 * skopeo's transport syntax (`oci:DIR[:REF]`, `oci-archive:FILE[:REF]`, `docker-archive:FILE[:REF]`) or a
 * bare path. A path that exists is always a path; otherwise a word before the first colon is a transport,
 * and one ocikit does not know (`docker://…`, a typo) is refused rather than looked up as a file.
 */
export function parseReference(text: string): Reference {
  if (typeof text !== 'string') throw new OcikitError(`image reference: expected a string, got ${text === null ? 'null' : typeof text}`);
  if (!text) throw new OcikitError('empty image reference');
  const colon = text.indexOf(':');
  const transport = colon > 0 ? TRANSPORTS[text.slice(0, colon)] : undefined;
  if (transport) {
    const rest = text.slice(colon + 1);
    checkDigest(rest, text);
    const { path, selector } = splitPathAndSelector(rest, (p) => p.length > 0 && !p.includes(':'));
    if (!path) throw new OcikitError(`${text}: no path after '${text.slice(0, colon)}:'`);
    return { kind: transport, path, selector, text };
  }
  const exists = existsSync(text);
  if (!exists) checkDigest(text, text);
  const { path, selector } = splitPathAndSelector(text, (p) => existsSync(p));
  if (!exists && selector === undefined && colon > 0 && TRANSPORT_NAME.test(text.slice(0, colon))) {
    throw new OcikitError(`unknown transport ${JSON.stringify(text.slice(0, colon))} in ${text}: ocikit knows ${KNOWN} (and no file or directory is named ${text})`);
  }
  return { kind: undefined, path, selector, text };
}

/** `PATH@DIGEST` whose digest is not one: said so, instead of a missing file named after the whole text. */
function checkDigest(text: string, whole: string): void {
  const attempt = DIGEST_ATTEMPT.exec(text)?.[1];
  if (attempt === undefined || digestProblem(attempt) === undefined) return;
  const algorithm = attempt.slice(0, attempt.indexOf(':'));
  const form = ENCODED_FORM[algorithm] ?? 'algorithm:encoded, the encoded part of [a-zA-Z0-9=_-]';
  throw new OcikitError(`malformed digest ${JSON.stringify(attempt)} in ${whole}: expected ${form}`);
}

/** Splits `PATH[:TAG]` or `PATH@DIGEST`; `isPath` decides where the path ends when a colon could be either. */
function splitPathAndSelector(text: string, isPath: (p: string) => boolean): { path: string; selector: Selector | undefined } {
  const at = text.lastIndexOf('@');
  if (at > 0 && isDigest(text.slice(at + 1)) && !text.slice(0, at).includes(':')) {
    return { path: text.slice(0, at), selector: { digest: text.slice(at + 1) } };
  }
  if (existsSync(text) || !text.includes(':')) return { path: text, selector: undefined };
  for (let i = text.indexOf(':'); i >= 0; i = text.indexOf(':', i + 1)) {
    const path = text.slice(0, i);
    if (isPath(path)) return { path, selector: selectorOf(text.slice(i + 1)) };
  }
  return { path: text, selector: undefined };
}

function selectorOf(ref: string): Selector | undefined {
  if (!ref) return undefined;
  if (ref.startsWith('@')) {
    const digest = ref.slice(1);
    if (!isDigest(digest)) throw new OcikitError(`invalid digest reference ${JSON.stringify(ref)}`);
    return { digest };
  }
  return isPlainDigest(ref) ? { digest: ref } : { tag: ref };
}

/**
 * Without `@`, only a digest that cannot be a `NAME:TAG` counts as one: `myapp:v1` also fits the digest
 * grammar (algorithm `myapp`), and skopeo reads it as a name and tag.
 */
function isPlainDigest(ref: string): boolean {
  return /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/.test(ref);
}

export function selectorText(selector: Selector | undefined): string {
  if (!selector) return '';
  return 'tag' in selector ? selector.tag : `@${selector.digest}`;
}
