import { createHash, type Hash } from 'node:crypto';
import { OcikitError } from '../errors.js';

/** A content digest such as `sha256:abc…`. Always validated before it becomes a path. */
export type Digest = string;

const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Algorithms whose encoded form the spec pins down; only the hashable ones are verified. */
const ENCODED_FORM: Record<string, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
  blake3: /^[a-f0-9]{64}$/,
};
const HASHABLE = new Set(['sha256', 'sha512']);

export const EMPTY_JSON_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

export interface ParsedDigest {
  algorithm: string;
  encoded: string;
}

/** The common case, which passes both DIGEST_GRAMMAR and ENCODED_FORM.sha256: one test instead of two and a split. */
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;

/** Why a string is not a usable digest, or undefined when it is one. */
export function digestProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'digest is not a string';
  if (value.length === 71 && SHA256_DIGEST.test(value)) return undefined;
  if (!DIGEST_GRAMMAR.test(value)) return `invalid digest ${JSON.stringify(value)}`;
  const [algorithm, encoded] = splitDigest(value);
  const form = ENCODED_FORM[algorithm];
  if (form && !form.test(encoded)) return `invalid ${algorithm} digest ${JSON.stringify(value)}`;
  return undefined;
}

export function isDigest(value: unknown): value is Digest {
  return digestProblem(value) === undefined;
}

export function parseDigest(value: unknown, where = ''): ParsedDigest {
  const problem = digestProblem(value);
  if (problem) throw new OcikitError(where ? `${where}: ${problem}` : problem);
  const [algorithm, encoded] = splitDigest(value as string);
  return { algorithm, encoded };
}

function splitDigest(value: string): [string, string] {
  const colon = value.indexOf(':');
  return [value.slice(0, colon), value.slice(colon + 1)];
}

export function isVerifiable(digest: Digest): boolean {
  return HASHABLE.has(algorithmOf(digest));
}

export function algorithmOf(digest: Digest): string {
  return digest.slice(0, digest.indexOf(':')); // splitDigest's first half, without the second
}

export function digestOf(data: Uint8Array | string, algorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

export function newHasher(digest: Digest): Hash | undefined {
  const algorithm = algorithmOf(digest);
  return HASHABLE.has(algorithm) ? createHash(algorithm) : undefined;
}

/** `blobs/<alg>/<encoded>`, relative to the layout root. Grammar-valid digests contain no `/` or `..`. */
export function blobPath(digest: Digest): string {
  const { algorithm, encoded } = parseDigest(digest);
  return `blobs/${algorithm}/${encoded}`;
}

/** The digest a `blobs/<alg>/<encoded>` path stands for, or undefined when it names no valid digest. */
export function digestFromBlobPath(path: string): Digest | undefined {
  const m = /^(?:\.\/)?blobs\/([^/]+)\/([^/]+)$/.exec(path);
  if (!m) return undefined;
  const digest = `${m[1]}:${m[2]}`;
  return isDigest(digest) ? digest : undefined;
}

export function shortDigest(digest: Digest): string {
  const [algorithm, encoded] = splitDigest(digest);
  return `${algorithm}:${encoded.slice(0, 12)}`;
}
