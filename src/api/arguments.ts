/**
 * What the library's public functions accept, checked where a caller's values come in: a wrong type
 * is an OcikitError naming the function and the argument, never a TypeError from deep inside.
 * Only the shape is checked here; the operations judge the values (a tag that exists, a platform held).
 */
import * as z from 'zod/mini';
import { OcikitError } from '../errors.js';
import { isDigest } from '../model/digest.js';
import type { Store, StoreWriter } from '../store/store.js';

const STORE_KINDS = ['oci', 'oci-archive', 'docker-archive'];

function hasMethods(value: unknown, names: string[]): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return STORE_KINDS.includes(v.kind as string) && typeof v.path === 'string' && names.every((n) => typeof v[n] === 'function');
}

export const store = z.custom<Store>((v) => hasMethods(v, ['readIndex', 'readBlob', 'openBlob', 'statBlob', 'listBlobs', 'close']), {
  error: 'expected a store (from openLayout)',
});

export const writer = z.custom<StoreWriter>((v) => hasMethods(v, ['hasBlob', 'putBlob', 'copyBlob', 'commit', 'abort']), {
  error: 'expected a store writer (from openWriter)',
});

export const fn = z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', { error: 'expected a function' });
export const text = z.string();
const flag = z.optional(z.boolean());

export const selector = z.union([
  z.looseObject({ tag: z.string() }),
  z.looseObject({ digest: z.string().check(z.refine(isDigest, { error: 'expected a digest (algorithm:encoded)' })) }),
], { error: 'expected { tag } or { digest } with a well-formed digest' });

export const optionalWriter = z.optional(writer);

export const optionalSelector = z.optional(selector);

export const platform = z.looseObject({ os: z.string(), architecture: z.string(), variant: z.optional(z.string()) }, { error: 'expected a platform { os, architecture[, variant] } (parsePlatform makes one)' });

/** A reference as text (`oci:dir:tag`) or as parseReference returns it. */
export const reference = z.union([
  z.string(),
  z.looseObject({ kind: z.optional(z.enum(['oci', 'oci-archive', 'docker-archive'])), path: z.string(), selector: z.optional(selector), text: z.string() }),
], { error: 'expected a reference: text such as oci:DIR[:TAG], or what parseReference returns' });

const baseSource = z.looseObject({ store, selector: z.optional(selector), name: z.optional(z.string()) });
const stringMap = z.record(z.string(), z.string());
const indexDoc = z.looseObject({ value: z.looseObject({ manifests: z.array(z.looseObject({})) }), raw: z.custom<Buffer>((v) => Buffer.isBuffer(v)) });

export const inspectOptions = z.optional(z.looseObject({ selector: z.optional(selector), platform: z.optional(platform) }));

export const verifyOptions = z.optional(z.looseObject({
  deep: flag,
  strict: flag,
  shard: z.optional(z.looseObject({ index: z.number(), count: z.number() })),
  jobs: z.optional(z.number()),
  maxLayerBytes: z.optional(z.number()),
  selector: z.optional(selector),
  maxDepth: z.optional(z.number()),
  onProgress: z.optional(fn),
}));

export const annotateOptions = z.looseObject({
  selector: z.optional(selector),
  on: z.optional(z.enum(['manifest', 'index', 'descriptor', 'all'])),
  platform: z.optional(z.union([platform, z.array(platform)], { error: 'expected a platform { os, architecture[, variant] } or a list of them' })),
  set: z.optional(stringMap),
  setSources: z.optional(stringMap),
  unset: z.optional(z.array(text)),
  fromLabels: z.optional(z.union([z.boolean(), z.array(text)], { error: 'expected true or a list of label prefixes' })),
  labelSchema: flag,
  base: z.optional(z.looseObject({ store, selector: z.optional(selector), text: z.optional(text), digest: z.optional(z.enum(['manifest', 'index'])) })),
  baseName: z.optional(text),
  baseLayouts: z.optional(z.array(store)),
  fromBuildinfo: flag,
  fromBuildpacks: flag,
  created: z.optional(text),
  now: z.optional(z.date()),
  ociMediaTypes: flag,
  moveReferrers: flag,
  force: flag,
  dryRun: flag,
  output: z.optional(z.looseObject({ tag: z.optional(text), index: z.optional(indexDoc) })),
});

export const rebaseOptions = z.optional(z.looseObject({
  selector: z.optional(selector),
  newBase: z.optional(baseSource),
  baseName: z.optional(text),
  oldBase: z.optional(baseSource),
  topLayer: z.optional(text),
  baseLayers: z.optional(z.number()),
  baseLayouts: z.optional(z.array(store)),
  platform: z.optional(platform),
  force: flag,
  output: z.optional(z.looseObject({ tag: z.optional(text), index: z.optional(indexDoc) })),
  onBlob: z.optional(fn),
}));

export const copyOptions = z.optional(z.looseObject({
  selector: z.optional(selector),
  platform: z.optional(platform),
  referrers: flag,
  tag: z.optional(text),
  ociMediaTypes: flag,
  onBlob: z.optional(fn),
}));

export const gcOptions = z.optional(z.looseObject({ dryRun: flag, wait: flag }));

export const unpackOptions = z.optional(z.looseObject({
  selector: z.optional(selector),
  platform: z.optional(platform),
  rootless: flag,
  maxLayerBytes: z.optional(z.number().check(z.positive())),
  onProgress: z.optional(fn),
  signal: z.optional(z.custom<AbortSignal>((v) => v instanceof AbortSignal, { error: 'expected an AbortSignal' })),
}));

export const writerOptions = z.optional(z.looseObject({ base: z.optional(store), link: flag, wait: flag }));

/**
 * Checks each argument of `name` against its schema, in order; the first that does not fit is named
 * with the path inside it (`annotate: options.set["k"]: …`).
 */
export function checkArguments(name: string, params: Array<[string, z.ZodMiniType]>, args: unknown[]): void {
  params.forEach(([param, schema], i) => {
    const result = schema.safeParse(args[i]);
    if (result.success) return;
    const issue = result.error.issues[0]!;
    const where = [param, ...issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))].join('').replace(/\.\[/g, '[');
    throw new OcikitError(`${name}: ${where}: ${describeIssue(issue)}${received(args[i], issue.path)}`);
  });
}

/** zod/mini carries no English messages of its own: the common cases are worded here. */
function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.message && issue.message !== 'Invalid input') return issue.message;
  if (issue.code === 'invalid_type') return `expected ${issue.expected}`;
  if (issue.code === 'invalid_value') return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  return 'not a value this takes';
}

/** What was given, for a wrong top-level type (`got undefined`, `got string`). */
function received(value: unknown, path: PropertyKey[]): string {
  let v: unknown = value;
  for (const key of path) v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[key] : undefined;
  const type = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
  return ` (got ${type})`;
}
