/**
 * Property-based fuzzing of ocikit's readers and writers, shared by the short run in `npm test`
 * (test/fuzz.test.ts) and the long one (`npm run fuzz`, test/fuzz/long.ts).
 *
 * A case is a valid fixture plus a mutation: bytes of a file, a field of a JSON document (optionally
 * "resealed": the changed blob renamed to its new digest and every parent rewritten to match, so the
 * mutation gets past digest checks into the logic behind them), or a field of a tar header. Each case
 * runs inspect, verify, annotate and convert, in process through the library (fast: any error must be
 * an OcikitError or an errno error, which the CLI reports as one line) and, for some cases, as the CLI
 * (no internal error, no stack trace, exit code 0, 1 or 2). Nothing may be written outside the target.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { OcikitError } from '../../src/errors.js';
import { annotate } from '../../src/ops/annotate.js';
import { copy } from '../../src/ops/copy.js';
import { inspect } from '../../src/ops/inspect.js';
import { verify } from '../../src/ops/verify.js';
import { DirWriter } from '../../src/store/dir.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { readTree } from '../../testdata/builder.js';
import { plainEntries, tarOf } from './hostile-tar.js';
import { assertNoCrash, hasCommand, runOcikit, TESTDATA } from './ocikit-process.js';
import { assertTreeUnchanged, snapshotTree, withoutPaths } from './tree-snapshot.js';

// ---------------------------------------------------------------------------
// Corpus
// ---------------------------------------------------------------------------

export interface Corpus {
  layouts: Array<{ name: string; files: Map<string, Buffer> }>;
  archives: Array<{ name: string; bytes: Buffer }>;
}

const LAYOUTS = ['app', 'multi', 'nested', 'artifact', 'docker-types', 'zstd', 'whiteouts'];
const ARCHIVES = ['app.oci.tar', 'app.docker.tar', 'app.docker25.tar'];

export async function loadCorpus(): Promise<Corpus> {
  return {
    layouts: await Promise.all(LAYOUTS.map(async (name) => ({ name, files: await readTree(join(TESTDATA, 'layouts', name)) }))),
    archives: await Promise.all(ARCHIVES.map(async (name) => ({ name, bytes: await readFile(join(TESTDATA, 'archives', name)) }))),
  };
}

// ---------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------

type ByteOp = { op: 'flip' | 'truncate' | 'insert' | 'replace'; at: number; data: Uint8Array };
type JsonOp =
  | { op: 'set'; path: number[]; value: unknown }
  | { op: 'delete'; path: number[] }
  | { op: 'duplicate-key'; path: number[] }
  | { op: 'deep'; path: number[]; depth: number };

export type FuzzCase =
  | { source: 'layout'; layout: number; file: number; mutation: { kind: 'bytes'; byte: ByteOp } | { kind: 'json'; json: JsonOp; reseal: boolean }; packAs: 'dir' | 'oci-archive' }
  | { source: 'archive'; archive: number; mutation: { kind: 'header'; entry: number; field: HeaderField; value: number | string; fixChecksum: boolean } | { kind: 'bytes'; byte: ByteOp } };

type HeaderField = 'name' | 'size' | 'typeflag' | 'linkname' | 'mode' | 'magic' | 'prefix';

const NASTY_STRINGS = [
  'sha256:../../x', '../../etc/passwd', '/etc/passwd', '', '\u0000', 'sha256:', `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`,
  'md5:abc', `sha512:${'0'.repeat(128)}`, 'foo/bar:abc', 'application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.oci.image.config.v1+json', 'application/vnd.oci.image.layer.v1.tar+gzip',
  'x'.repeat(5000), 'latest', '{}', '__proto__', 'constructor',
];

export const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom<unknown>(...NASTY_STRINGS) },
  { weight: 3, arbitrary: fc.constantFrom<unknown>(-1, 0, 1, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, 0.5, null, true, false, [], {}) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

/** Stands for a deeply nested array in the serialized text (JSON.stringify itself overflows on those). */
const DEEP_MARKER = '__ocikit_fuzz_deep__';

const byteOp: fc.Arbitrary<ByteOp> = fc.record({
  op: fc.constantFrom('flip', 'truncate', 'insert', 'replace'),
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  data: fc.uint8Array({ minLength: 1, maxLength: 64 }),
});

const jsonOp: fc.Arbitrary<JsonOp> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('set' as const), path: fc.array(fc.nat(), { minLength: 1, maxLength: 5 }), value: nastyValue }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), path: fc.array(fc.nat(), { minLength: 1, maxLength: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('duplicate-key' as const), path: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('deep' as const), path: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), depth: fc.integer({ min: 64, max: 20_000 }) }) },
);

export function fuzzCase(corpus: Corpus): fc.Arbitrary<FuzzCase> {
  const layoutCase = fc.record({
    source: fc.constant('layout' as const),
    layout: fc.nat({ max: corpus.layouts.length - 1 }),
    file: fc.nat(),
    mutation: fc.oneof(
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('bytes' as const), byte: byteOp }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('json' as const), json: jsonOp, reseal: fc.boolean() }) },
    ),
    packAs: fc.constantFrom('dir' as const, 'dir' as const, 'oci-archive' as const),
  });
  const archiveCase = fc.record({
    source: fc.constant('archive' as const),
    archive: fc.nat({ max: corpus.archives.length - 1 }),
    mutation: fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('header' as const),
          entry: fc.nat(),
          field: fc.constantFrom<HeaderField>('name', 'size', 'typeflag', 'linkname', 'mode', 'magic', 'prefix'),
          value: fc.oneof(fc.nat(), fc.constantFrom(...NASTY_STRINGS.filter((s) => s.length < 200)), fc.string({ maxLength: 120 })),
          fixChecksum: fc.boolean(),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('bytes' as const), byte: byteOp }) },
    ),
  });
  return fc.oneof({ weight: 3, arbitrary: layoutCase }, { weight: 2, arbitrary: archiveCase });
}

function applyBytes(buf: Buffer, { op, at, data }: ByteOp): Buffer {
  const pos = Math.min(buf.length, Math.floor(at * buf.length));
  if (op === 'truncate') return buf.subarray(0, pos);
  if (op === 'insert') return Buffer.concat([buf.subarray(0, pos), data, buf.subarray(pos)]);
  if (op === 'replace') return Buffer.concat([buf.subarray(0, pos), data, buf.subarray(Math.min(buf.length, pos + data.length))]);
  const out = Buffer.from(buf);
  if (out.length > 0) out[Math.min(pos, out.length - 1)] = (out[Math.min(pos, out.length - 1)] ?? 0) ^ (data[0] || 0xff);
  return out;
}

function tryJson(buf: Buffer): unknown {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Follows `path` (each number picks a key or index modulo the container's size) and edits the last container. */
function applyJson(doc: unknown, op: JsonOp): { value: unknown; text?: string } {
  if (doc === null || typeof doc !== 'object') return { value: op.op === 'set' ? op.value : doc };
  if (op.op === 'deep' && op.path.length === 0) return { value: doc };
  let container = doc as Record<string, unknown> | unknown[];
  for (let i = 0; i < op.path.length; i++) {
    const keys = Array.isArray(container) ? container.map((_, j) => j) : Object.keys(container);
    if (keys.length === 0) break;
    const key = keys[op.path[i]! % keys.length]!;
    const child = (container as Record<string | number, unknown>)[key];
    const last = i === op.path.length - 1 || child === null || typeof child !== 'object';
    if (!last) {
      container = child as Record<string, unknown>;
      continue;
    }
    if (op.op === 'set') (container as Record<string | number, unknown>)[key] = op.value;
    else if (op.op === 'deep') {
      (container as Record<string | number, unknown>)[key] = DEEP_MARKER;
      const deep = `${'['.repeat(op.depth)}${']'.repeat(op.depth)}`;
      return { value: doc, text: JSON.stringify(doc).replace(JSON.stringify(DEEP_MARKER), deep) };
    }
    else if (op.op === 'delete') {
      if (Array.isArray(container)) container.splice(key as number, 1);
      else delete (container as Record<string, unknown>)[key as string];
    } else if (!Array.isArray(container)) {
      // A second copy of the key with another value: JSON.parse keeps the last, other tools the first.
      const text = JSON.stringify(doc);
      const needle = `${JSON.stringify(key)}:`;
      const at = text.indexOf(needle);
      if (at >= 0) return { value: doc, text: `${text.slice(0, at)}${needle}"duplicate",${text.slice(at)}` };
    }
    break;
  }
  return { value: doc };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Renames a changed blob to its digest and rewrites every document naming it, up to index.json. */
function reseal(files: Map<string, Buffer>, changedPath: string): void {
  const pending = [changedPath];
  for (let rounds = 0; pending.length > 0 && rounds < 64; rounds++) {
    const path = pending.pop()!;
    const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(path);
    const bytes = files.get(path);
    if (!m || !bytes) continue;
    const oldDigest = `sha256:${m[1]}`;
    const newHex = sha256(bytes);
    if (newHex === m[1]) continue;
    files.delete(path);
    files.set(`blobs/sha256/${newHex}`, bytes);
    for (const [p, b] of files) {
      if (p !== 'index.json' && !p.startsWith('blobs/sha256/')) continue;
      const doc = tryJson(b);
      if (doc === undefined || !repoint(doc, oldDigest, `sha256:${newHex}`, bytes.length)) continue;
      const text = stringifyOrUndefined(doc);
      if (text === undefined) continue;
      files.set(p, Buffer.from(text));
      if (p !== 'index.json') pending.push(p);
    }
  }
}

function stringifyOrUndefined(doc: unknown): string | undefined {
  try {
    return JSON.stringify(doc);
  } catch {
    return undefined; // nested too deep to serialize: left as the mutation made it
  }
}

function repoint(value: unknown, from: string, to: string, size: number, depth = 0): boolean {
  if (value === null || typeof value !== 'object' || depth > 64) return false;
  let changed = false;
  const o = value as Record<string, unknown>;
  if (o.digest === from) {
    o.digest = to;
    o.size = size;
    changed = true;
  }
  for (const v of Object.values(o)) changed = repoint(v, from, to, size, depth + 1) || changed;
  return changed;
}

/** The mutated layout files (path → bytes). */
function mutateLayout(files: Map<string, Buffer>, c: Extract<FuzzCase, { source: 'layout' }>): Map<string, Buffer> {
  const out = new Map(files);
  const m = c.mutation;
  const candidates = m.kind === 'json' ? [...out.keys()].filter((p) => tryJson(out.get(p)!) !== undefined) : [...out.keys()];
  const path = candidates[c.file % candidates.length]!;
  if (m.kind === 'bytes') {
    out.set(path, applyBytes(out.get(path)!, m.byte));
    return out;
  }
  const { value, text } = applyJson(tryJson(out.get(path)!), m.json);
  out.set(path, Buffer.from(text ?? JSON.stringify(value) ?? 'null'));
  if (m.reseal) reseal(out, path);
  return out;
}

const HEADER_FIELDS: Record<HeaderField, [number, number]> = {
  name: [0, 100], mode: [100, 8], size: [124, 12], typeflag: [156, 1], linkname: [157, 100], magic: [257, 8], prefix: [345, 155],
};

/** Header offsets of a tar (ustar headers found by walking sizes). */
function headerOffsets(tar: Buffer): number[] {
  const offsets: number[] = [];
  for (let pos = 0; pos + 512 <= tar.length; ) {
    const block = tar.subarray(pos, pos + 512);
    if (block.every((b) => b === 0)) break;
    offsets.push(pos);
    const size = parseInt(block.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8) || 0;
    pos += 512 + Math.ceil(size / 512) * 512;
  }
  return offsets;
}

function mutateArchive(bytes: Buffer, c: Extract<FuzzCase, { source: 'archive' }>): Buffer {
  const m = c.mutation;
  if (m.kind === 'bytes') return applyBytes(bytes, m.byte);
  const out = Buffer.from(bytes);
  const offsets = headerOffsets(out);
  const at = offsets[m.entry % offsets.length]!;
  const [start, width] = HEADER_FIELDS[m.field];
  const field = Buffer.alloc(width);
  const text = typeof m.value === 'number' ? (m.field === 'size' || m.field === 'mode' ? m.value.toString(8).padStart(width - 1, '0') : String.fromCharCode(48 + (m.value % 75))) : m.value;
  Buffer.from(text, 'utf8').copy(field, 0, 0, width);
  field.copy(out, at + start);
  if (m.fixChecksum) {
    out.fill(0x20, at + 148, at + 156);
    let sum = 0;
    for (let i = at; i < at + 512; i++) sum += out[i]!;
    out.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 8, 'latin1');
  }
  return out;
}

/** Writes the case's input into `dir` and returns its path. */
export async function materialize(corpus: Corpus, c: FuzzCase, dir: string): Promise<string> {
  if (c.source === 'archive') {
    const path = join(dir, 'input.tar');
    await writeFile(path, mutateArchive(corpus.archives[c.archive]!.bytes, c));
    return path;
  }
  const files = mutateLayout(corpus.layouts[c.layout]!.files, c);
  if (c.packAs === 'oci-archive') {
    const path = join(dir, 'input.tar');
    await writeFile(path, tarOf(...plainEntries(files)));
    return path;
  }
  const path = join(dir, 'input');
  for (const [name, bytes] of files) {
    await mkdir(join(path, name, '..'), { recursive: true });
    await writeFile(join(path, name), bytes);
  }
  return path;
}

// ---------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------

/** The CLI turns these into one line; anything else it reports as an internal error. */
function isReportable(err: unknown): boolean {
  return err instanceof OcikitError || typeof (err as NodeJS.ErrnoException)?.code === 'string';
}

async function expectReportable(what: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!isReportable(err)) {
      assert.fail(`${what} threw a ${(err as Error)?.constructor?.name ?? typeof err} the CLI would report as an internal error: ${(err as Error)?.stack ?? String(err)}`);
    }
  }
}

const OUTPUTS = new Set(['out', 'out.tar', 'annotated', 'input', 'input.tar']);

/** Runs the library in process: inspect, verify, convert to a new layout, annotate into another new layout. */
export async function runLibrary(input: string, dir: string): Promise<void> {
  const before = await snapshotTree(dir);
  let store: Store | undefined;
  await expectReportable('openStore', async () => {
    store = await openStore(input);
  });
  if (!store) return;
  const s = store;
  await expectReportable('inspect', () => inspect(s));
  await expectReportable('verify', () => verify(s, { jobs: 1, minWorkerBytes: Number.MAX_SAFE_INTEGER }));
  await expectReportable('copy', async () => {
    const writer = await DirWriter.open(join(dir, 'out'), { create: true });
    try {
      await copy(s, writer, undefined);
    } catch (err) {
      await writer.abort();
      throw err;
    }
  });
  await expectReportable('annotate', async () => {
    const writer = await DirWriter.open(join(dir, 'annotated'), { create: true });
    try {
      await annotate(s, writer, { set: { 'org.example.fuzz': '1' } });
    } catch (err) {
      await writer.abort();
      throw err;
    }
  });
  await s.close();
  // The input is only read; the two new layouts are the only writes.
  const ignore = (rel: string) => rel === 'out' || rel.startsWith('out/') || rel === 'annotated' || rel.startsWith('annotated/');
  await assertTreeUnchanged(dir, withoutPaths(before, ignore), 'library run', { ignore });
}

/** Runs the CLI: exit 0/1/2, never an internal error or a stack; only the input and named outputs change. */
export async function runCli(input: string, dir: string): Promise<void> {
  const commands: string[][] = [
    ['inspect', input],
    ['convert', input, `oci:${join(dir, 'out')}`],
    ['convert', input, `oci-archive:${join(dir, 'out.tar')}`],
  ];
  if (hasCommand('verify')) commands.push(['verify', input]);
  if (hasCommand('annotate')) commands.push(['annotate', input, '--set', 'org.example.fuzz=1']);
  const ignore = (rel: string) => OUTPUTS.has(rel.split('/')[0]!);
  const before = await snapshotTree(dir, { ignore });
  for (const args of commands) {
    const r = await runOcikit(args, { timeoutMs: 60_000 });
    assertNoCrash(r);
    await assertTreeUnchanged(dir, before, `ocikit ${args[0]}`, { ignore });
  }
}

/** A fresh directory for one case; the parent's listing must not change (nothing written beside it). */
export async function inCaseDir<T>(root: string, n: number, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = join(root, `case-${n}`);
  await mkdir(dir, { recursive: true });
  const siblings = new Set(await readdir(root));
  try {
    return await fn(dir);
  } finally {
    const now = await readdir(root);
    await rm(dir, { recursive: true, force: true });
    const added = now.filter((name) => !siblings.has(name));
    assert.deepEqual(added, [], `files appeared beside the case directory: ${added.join(', ')}`);
  }
}

export function describeCase(c: FuzzCase, corpus: Corpus): string {
  const base = c.source === 'layout' ? `layout ${corpus.layouts[c.layout]!.name} as ${c.packAs}` : `archive ${corpus.archives[c.archive]!.name}`;
  return `${base}: ${JSON.stringify(c.mutation, (_k, v) => (typeof v === 'string' && v.length > 80 ? `${v.slice(0, 80)}…(${v.length})` : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))}`;
}
