import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, symlink, link, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { OcikitError } from '../src/errors.js';
import {
  TarWriter,
  entryStream,
  normalizeEntryName,
  readEntry,
  resolveEntry,
  scanTar,
  writeTar,
  type TarIndex,
  type TarWriteEntry,
} from '../src/store/tar-format.js';

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

const root = await mkdtemp(join(tmpdir(), 'ocikit-tar-'));
test.after(() => rm(root, { recursive: true, force: true }));
let counter = 0;
const tmp = (name: string) => join(root, `${counter++}-${name}`);

async function writeTarFile(path: string, entries: TarWriteEntry[]): Promise<number> {
  return writeTar(createWriteStream(path), entries);
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function gnuTar(args: string[], cwd = root): string {
  return execFileSync('tar', args, { cwd, encoding: 'utf8', env: { ...process.env, TZ: 'UTC', LC_ALL: 'C.UTF-8' } });
}

function gnuTarBytes(args: string[]): Buffer {
  return execFileSync('tar', args, { cwd: root, maxBuffer: 1 << 28 });
}

/** Expect an OcikitError whose message contains every one of `parts`. */
async function rejectsMentioning(fn: () => unknown, ...parts: string[]): Promise<string> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof OcikitError, `expected OcikitError, got ${String(caught)}`);
  for (const p of parts) assert.ok(caught.message.includes(p), `message ${JSON.stringify(caught.message)} lacks ${JSON.stringify(p)}`);
  assert.ok(!caught.message.includes('\n'), 'message is one line');
  return caught.message;
}

interface RawSpec {
  name: string;
  size?: number;
  typeflag?: string;
  linkname?: string;
  prefix?: string;
  sizeField?: Buffer;
  signedChecksum?: boolean;
}

/** Independent ustar header encoder for building hostile archives. */
function rawHeader(spec: RawSpec): Buffer {
  const b = Buffer.alloc(512);
  b.write(spec.name, 0, 100, 'utf8');
  b.write('0000644\0', 100, 'latin1');
  b.write('0000000\0', 108, 'latin1');
  b.write('0000000\0', 116, 'latin1');
  if (spec.sizeField) spec.sizeField.copy(b, 124);
  else b.write((spec.size ?? 0).toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  b.write('00000000000\0', 136, 'latin1');
  b.write(spec.typeflag ?? '0', 156, 'latin1');
  if (spec.linkname) b.write(spec.linkname, 157, 100, 'utf8');
  b.write('ustar\x0000', 257, 'latin1');
  if (spec.prefix) b.write(spec.prefix, 345, 155, 'utf8');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += spec.signedChecksum && x > 127 ? x - 256 : x;
  b.write((sum & 0o777777).toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return b;
}

type RawItem = { h: RawSpec; data?: Buffer | string };

function rawTar(items: RawItem[], trailer = true): Buffer {
  const parts: Buffer[] = [];
  for (const { h, data } of items) {
    const body = Buffer.from(data ?? '');
    parts.push(rawHeader({ size: body.length, ...h }), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  if (trailer) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

function paxData(records: Record<string, string>): string {
  let out = '';
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(body) + 1;
    while (String(len).length + Buffer.byteLength(body) !== len) len++;
    out += `${len}${body}`;
  }
  return out;
}

async function scanRaw(name: string, items: RawItem[], trailer = true): Promise<TarIndex> {
  const path = tmp(name);
  await writeFile(path, rawTar(items, trailer));
  return scanTar(path);
}

const names = (index: TarIndex) => index.entries.map((e) => e.name);

// ---------------------------------------------------------------------------
// round trip
// ---------------------------------------------------------------------------

const name150 = `${'x'.repeat(60)}/${'y'.repeat(89)}`; // fits the ustar prefix split
const name300 = `${'p'.repeat(200)}/${'q'.repeat(99)}`; // prefix too long: needs PAX
const nameUnicode = `${'ü'.repeat(60)}/${'語'.repeat(40)}.bin`;

const roundTripEntries: TarWriteEntry[] = [
  { name: 'a.txt', data: Buffer.from('hello\n') },
  { name: 'd', dir: true },
  { name: 'd/empty', data: Buffer.alloc(0) },
  { name: name150, data: Buffer.from('one-fifty') },
  { name: name300, data: Buffer.alloc(1000, 7) },
  { name: nameUnicode, data: Buffer.from('unicode') },
  { name: `${'z'.repeat(180)}`, dir: true },
  { name: 'last', data: Buffer.alloc(512, 1) },
];

test('round trip: names, types, sizes, offsets and content', async () => {
  const path = tmp('rt.tar');
  const total = await writeTarFile(path, roundTripEntries);
  const file = await readFile(path);
  assert.equal(total, file.length);
  assert.equal(total % 512, 0);
  assert.ok(file.subarray(-1024).equals(Buffer.alloc(1024)), 'ends with two zero blocks');
  assert.ok(!file.includes(`path=${name150}`), '150-byte name uses the ustar prefix, not PAX');
  assert.ok(file.includes(`path=${name300}\n`), '300-byte name uses PAX');

  const index = await scanTar(path);
  assert.equal(index.size, file.length);
  assert.deepEqual(names(index), ['a.txt', 'd', 'd/empty', name150, name300, nameUnicode, 'z'.repeat(180), 'last']);
  assert.deepEqual(index.duplicates, []);
  assert.deepEqual(
    index.entries.map((e) => [e.type, e.typeflag, e.size, e.mode, e.mtime]),
    [
      ['file', '0', 6, 0o644, 0],
      ['dir', '5', 0, 0o755, 0],
      ['file', '0', 0, 0o644, 0],
      ['file', '0', 9, 0o644, 0],
      ['file', '0', 1000, 0o644, 0],
      ['file', '0', 7, 0o644, 0],
      ['dir', '5', 0, 0o755, 0],
      ['file', '0', 512, 0o644, 0],
    ],
  );
  assert.equal(index.entries[0]?.offset, 512);
  assert.equal(index.entries[2]?.offset, 512 + 512 + 512 + 512);
  for (const e of index.entries) {
    const written = roundTripEntries.find((w) => normalizeEntryName(w.name) === e.name);
    const expected = written && 'data' in written ? written.data : Buffer.alloc(0);
    assert.ok((await readEntry(path, e)).equals(expected), `content of ${e.name}`);
    assert.ok(file.subarray(e.offset, e.offset + e.size).equals(expected), `offset of ${e.name}`);
    assert.ok((await collect(entryStream(path, e))).equals(expected), `stream of ${e.name}`);
  }
  assert.equal(index.byName.get('d')?.type, 'dir');
});

test('readEntry: refuses above maxBytes, works with an open handle', async () => {
  const path = tmp('rb.tar');
  await writeTarFile(path, [{ name: 'big', data: Buffer.alloc(5000, 3) }]);
  const index = await scanTar(path);
  const entry = resolveEntry(index, 'big');
  await rejectsMentioning(() => readEntry(path, entry, 4999), 'big', '5000', '4999');
  const fh = await open(path, 'r');
  try {
    assert.ok((await readEntry(fh, entry, 5000)).equals(Buffer.alloc(5000, 3)));
  } finally {
    await fh.close();
  }
});

// ---------------------------------------------------------------------------
// interop with GNU tar
// ---------------------------------------------------------------------------

const deepDir = 'dir-'.repeat(20);

/** ustar cannot hold a leaf over 100 bytes nor a link target over 100 bytes. */
async function makeTree(format: 'gnu' | 'pax' | 'ustar'): Promise<{ dir: string; deepName: string; linkTarget: string }> {
  const dir = tmp(`tree-${format}`);
  const deepName = `${deepDir}/${'f'.repeat(format === 'ustar' ? 90 : 120)}.txt`;
  const linkTarget = format === 'ustar' ? 'plain.txt' : deepName;
  await mkdir(join(dir, deepDir), { recursive: true });
  await writeFile(join(dir, deepName), 'deep content\n');
  await writeFile(join(dir, 'plain.txt'), 'plain\n');
  await writeFile(join(dir, 'hé llo.txt'), 'unicode\n');
  await symlink(linkTarget, join(dir, 'link'));
  await link(join(dir, 'plain.txt'), join(dir, 'hard'));
  return { dir, deepName, linkTarget };
}

for (const format of ['gnu', 'pax', 'ustar'] as const) {
  test(`reads archives written by GNU tar --format=${format}`, async () => {
    const { dir, deepName, linkTarget } = await makeTree(format);
    const path = tmp(`gnu-${format}.tar`);
    gnuTar(['-cf', path, `--format=${format}`, '--sort=name', 'plain.txt', 'hard', 'link', 'hé llo.txt', deepDir], dir);
    const index = await scanTar(path);
    const listed = gnuTar(['-tf', path, '--quoting-style=literal']).split('\n').filter(Boolean).map((n) => normalizeEntryName(n));
    assert.deepEqual(names(index), listed);
    assert.ok(listed.includes(deepName));
    assert.equal(resolveEntry(index, deepName).type, 'file');
    assert.equal((await readEntry(path, resolveEntry(index, deepName))).toString(), 'deep content\n');
    const symlinkEntry = index.byName.get('link');
    assert.equal(symlinkEntry?.type, 'symlink');
    assert.equal(symlinkEntry?.linkname, linkTarget);
    assert.equal(resolveEntry(index, 'link').name, linkTarget);
    const hard = index.byName.get('hard');
    assert.equal(hard?.type, 'hardlink');
    assert.equal(hard?.linkname, 'plain.txt');
    assert.equal((await readEntry(path, resolveEntry(index, 'hard'))).toString(), 'plain\n');
    assert.equal((await readEntry(path, resolveEntry(index, 'hé llo.txt'))).toString(), 'unicode\n');
    assert.equal(index.byName.get(deepDir)?.type, 'dir');
  });
}

test('GNU tar lists and extracts what TarWriter wrote', async () => {
  const path = tmp('for-gnu.tar');
  await writeTarFile(path, roundTripEntries);
  const out = execFileSync('tar', ['-tvf', path], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC', LC_ALL: 'C.UTF-8' } });
  const lines = out.split('\n').filter(Boolean);
  assert.equal(lines.length, roundTripEntries.length);
  for (const [i, e] of roundTripEntries.entries()) {
    const line = lines[i] ?? '';
    const isDir = 'dir' in e;
    assert.ok(line.startsWith(isDir ? 'drwxr-xr-x 0/0' : '-rw-r--r-- 0/0'), line);
    assert.ok(line.includes('1970-01-01 00:00'), line);
    assert.ok(line.endsWith(isDir ? `${e.name}/` : e.name), line);
    if (!isDir) {
      assert.match(line, new RegExp(` ${e.data.length} 1970`));
      assert.ok(gnuTarBytes(['-xOf', path, e.name]).equals(e.data), `tar -xO ${e.name}`);
    }
  }
});

// ---------------------------------------------------------------------------
// determinism
// ---------------------------------------------------------------------------

async function withEpoch<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.SOURCE_DATE_EPOCH;
  if (value === undefined) delete process.env.SOURCE_DATE_EPOCH;
  else process.env.SOURCE_DATE_EPOCH = value;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
    else process.env.SOURCE_DATE_EPOCH = saved;
  }
}

test('determinism: identical bytes, across sinks; SOURCE_DATE_EPOCH respected', async () => {
  const [a, b] = [tmp('det-a.tar'), tmp('det-b.tar')];
  await withEpoch(undefined, () => writeTarFile(a, roundTripEntries));
  await withEpoch(undefined, () => writeTarFile(b, roundTripEntries));
  const bytesA = await readFile(a);
  assert.ok(bytesA.equals(await readFile(b)));

  // A slow, tiny-buffer writable exercises backpressure and must give the same bytes.
  const chunks: Buffer[] = [];
  let maxBuffered = 0;
  const slow = new Writable({
    highWaterMark: 16,
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      maxBuffered = Math.max(maxBuffered, slow.writableLength);
      setImmediate(cb);
    },
  });
  await withEpoch(undefined, () => writeTar(slow, roundTripEntries));
  assert.ok(Buffer.concat(chunks).equals(bytesA), 'stream sink matches');
  assert.ok(maxBuffered <= 1024, `writer waits for drain (max buffered ${maxBuffered} bytes)`);

  const viaHandle = tmp('det-fh.tar');
  const fh = await open(viaHandle, 'w');
  await withEpoch(undefined, async () => {
    const w = new TarWriter(fh);
    for (const e of roundTripEntries) {
      if ('dir' in e) await w.addDir(e.name);
      else await w.addFile(e.name, e.data.length, () => Readable.from([e.data]));
    }
    assert.equal(await w.finish(), bytesA.length);
  });
  await fh.close();
  assert.ok((await readFile(viaHandle)).equals(bytesA), 'file handle sink + stream sources match');

  const epoch = tmp('det-epoch.tar');
  await withEpoch('1700000000', () => writeTarFile(epoch, roundTripEntries));
  const index = await scanTar(epoch);
  assert.ok(index.entries.every((e) => e.mtime === 1700000000));
  assert.match(gnuTar(['-tvf', epoch]), /2023-11-14 22:13/);

  const bogus = tmp('det-bogus.tar');
  await withEpoch('not-a-number', () => writeTarFile(bogus, roundTripEntries));
  assert.ok((await readFile(bogus)).equals(bytesA), 'invalid SOURCE_DATE_EPOCH falls back to 0');
});

// ---------------------------------------------------------------------------
// writer validation
// ---------------------------------------------------------------------------

test('writer: stream sources must deliver exactly the declared size', async () => {
  const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
  const short = new TarWriter(sink());
  await rejectsMentioning(() => short.addFile('short', 10, Readable.from([Buffer.alloc(9)])), 'short', '9', '10');
  await rejectsMentioning(() => short.addFile('after', 1, Buffer.alloc(1)), 'already failed');

  const long = new TarWriter(sink());
  await rejectsMentioning(() => long.addFile('long', 10, () => Readable.from([Buffer.alloc(6), Buffer.alloc(6)])), 'long', '10');

  const buf = new TarWriter(sink());
  await rejectsMentioning(() => buf.addFile('buf', 10, Buffer.alloc(11)), 'buf', '11');

  const hostile = new TarWriter(sink());
  await rejectsMentioning(() => hostile.addFile('../evil', 0, Buffer.alloc(0)), '../evil');
  await rejectsMentioning(() => new TarWriter(sink()).addDir('/abs'), '/abs');
  await rejectsMentioning(() => new TarWriter(sink()).addFile('./', 0, Buffer.alloc(0)), 'empty');
});

// ---------------------------------------------------------------------------
// name normalization and format details
// ---------------------------------------------------------------------------

test('normalizeEntryName', () => {
  assert.equal(normalizeEntryName('./a//b/'), 'a/b');
  assert.equal(normalizeEntryName('././x'), 'x');
  assert.equal(normalizeEntryName('.//./x'), 'x');
  assert.equal(normalizeEntryName('./'), '');
  assert.equal(normalizeEntryName('a\\b'), 'a\\b');
  assert.equal(normalizeEntryName('..a/b..'), '..a/b..');
  for (const bad of ['/etc/passwd', '../x', 'a/../../x', 'a/..', './..', 'a\0b']) {
    assert.throws(() => normalizeEntryName(bad), OcikitError, bad);
  }
});

test('format details: PAX, GNU long names, base-256, octal padding, signed checksum', async () => {
  const index = await scanRaw('fmt.tar', [
    { h: { name: 'pax_global_header', typeflag: 'g' }, data: paxData({ path: 'ignored', comment: 'x' }) },
    { h: { name: './d/', typeflag: '5' } },
    { h: { name: 'PaxHeader/f', typeflag: 'x' }, data: paxData({ path: 'd/from-pax', mtime: '1234.5', size: '3' }) },
    { h: { name: 'ignored-name', size: 999 }, data: 'pax' },
    { h: { name: '././@LongLink', typeflag: 'L' }, data: `${'L'.repeat(150)}\0` },
    { h: { name: 'short', typeflag: '2', linkname: 'x' } },
    { h: { name: '././@LongLink', typeflag: 'K' }, data: `${'K'.repeat(130)}\0` },
    { h: { name: 'longlink', typeflag: '1', linkname: 'x' } },
    { h: { name: 'b256', sizeField: Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]) }, data: '12345' },
    { h: { name: 'spaces', sizeField: Buffer.from('     4 \0\0\0\0\0', 'latin1') }, data: 'abcd' },
    { h: { name: 'écrit', signedChecksum: true }, data: 'signed' },
    { h: { name: 'x'.repeat(50), prefix: 'pre/fix' }, data: 'p' },
    { h: { name: 'olddir/', typeflag: '\0' } },
    { h: { name: 'fifo', typeflag: '6' } },
    { h: { name: './' , typeflag: '5' } },
  ]);
  assert.deepEqual(names(index), [
    'd',
    'd/from-pax',
    'L'.repeat(150),
    'longlink',
    'b256',
    'spaces',
    'écrit',
    `pre/fix/${'x'.repeat(50)}`,
    'olddir',
    'fifo',
  ]);
  const byName = (n: string) => index.byName.get(n);
  assert.equal(byName('d/from-pax')?.size, 3);
  assert.equal(byName('d/from-pax')?.mtime, 1234);
  assert.equal(byName('L'.repeat(150))?.type, 'symlink');
  assert.equal(byName('L'.repeat(150))?.linkname, 'x');
  assert.equal(byName('longlink')?.linkname, 'K'.repeat(130));
  assert.equal(byName('b256')?.size, 5);
  assert.equal(byName('spaces')?.size, 4);
  assert.equal(byName('olddir')?.type, 'dir');
  assert.equal(byName('fifo')?.type, 'other');
  assert.equal((await readEntry(index.path, byName('d/from-pax')!)).toString(), 'pax');
  assert.equal((await readEntry(index.path, byName('b256')!)).toString(), '12345');
  assert.equal((await readEntry(index.path, byName('écrit')!)).toString(), 'signed');
});

test('end of archive: EOF at a block boundary without trailer; duplicates; maxEntries', async () => {
  const items: RawItem[] = [
    { h: { name: 'a' }, data: 'first' },
    { h: { name: 'b' }, data: 'b' },
    { h: { name: './a' }, data: 'second' },
  ];
  const index = await scanRaw('dup.tar', items, false);
  assert.deepEqual(names(index), ['a', 'b', 'a']);
  assert.deepEqual(index.duplicates, ['a']);
  assert.equal((await readEntry(index.path, resolveEntry(index, 'a'))).toString(), 'second');
  const path = tmp('max.tar');
  await writeFile(path, rawTar(items));
  await rejectsMentioning(() => scanTar(path, { maxEntries: 2 }), path, 'more than 2 entries');
});

// ---------------------------------------------------------------------------
// hostile archives
// ---------------------------------------------------------------------------

test('hostile names are rejected by scanTar', async () => {
  const cases: Array<[string, RawItem[], string]> = [
    ['dotdot', [{ h: { name: '../x' }, data: 'x' }], '../x'],
    ['nested dotdot', [{ h: { name: 'a/../../x' } }], 'a/../../x'],
    ['absolute', [{ h: { name: '/etc/passwd' }, data: 'root' }], '/etc/passwd'],
    ['pax path', [{ h: { name: 'PaxHeader/ok', typeflag: 'x' }, data: paxData({ path: '../evil' }) }, { h: { name: 'ok' } }], '../evil'],
    ['gnu long name', [{ h: { name: '././@LongLink', typeflag: 'L' }, data: '/abs/long\0' }, { h: { name: 'ok' } }], '/abs/long'],
    ['prefix', [{ h: { name: 'x', prefix: '..' } }], '../x'],
  ];
  for (const [label, items, name] of cases) {
    const path = tmp(`hostile-${label.replace(/ /g, '-')}.tar`);
    await writeFile(path, rawTar(items));
    await rejectsMentioning(() => scanTar(path), name, path);
  }
});

test('GNU tar --absolute-names archive is rejected', async () => {
  const src = tmp('abs-src');
  await writeFile(src, 'abs');
  const path = tmp('abs.tar');
  gnuTar(['-cf', path, '--absolute-names', src]);
  await rejectsMentioning(() => scanTar(path), src, 'absolute');
});

test('links: escapes, absolute targets, loops, too many hops, symlinked parents', async () => {
  const chain: RawItem[] = Array.from({ length: 20 }, (_, i) => ({ h: { name: `c${i}`, typeflag: '2', linkname: `c${i + 1}` } }));
  const index = await scanRaw('links.tar', [
    { h: { name: 'etc/real' }, data: 'real' },
    { h: { name: 'a', typeflag: '2', linkname: '../../etc' } },
    { h: { name: 'sub/b', typeflag: '2', linkname: '../etc/real' } },
    { h: { name: 'sub/c', typeflag: '2', linkname: '../../etc/real' } },
    { h: { name: 'abs', typeflag: '2', linkname: '/etc/passwd' } },
    { h: { name: 'hl', typeflag: '1', linkname: '../etc/real' } },
    { h: { name: 'hl-ok', typeflag: '1', linkname: './etc/real' } },
    { h: { name: 'l1', typeflag: '2', linkname: 'l2' } },
    { h: { name: 'l2', typeflag: '2', linkname: './l1' } },
    { h: { name: 'blobs/sha512', typeflag: '2', linkname: '/tmp' } },
    { h: { name: 'blobs/sha512/x' }, data: 'outside' },
    { h: { name: 'dirlink', typeflag: '2', linkname: 'etc' } },
    { h: { name: 'dot', typeflag: '2', linkname: 'sub/..' } },
    ...chain,
    { h: { name: 'c20' }, data: 'end' },
  ]);
  assert.equal(resolveEntry(index, 'sub/b').name, 'etc/real');
  assert.equal(resolveEntry(index, 'hl-ok').name, 'etc/real');
  assert.equal(resolveEntry(index, 'c10').name, 'c20');
  await rejectsMentioning(() => resolveEntry(index, 'a'), '"a"', '../../etc', 'escapes');
  await rejectsMentioning(() => resolveEntry(index, 'sub/c'), 'sub/c', 'escapes');
  await rejectsMentioning(() => resolveEntry(index, 'abs'), 'abs', '/etc/passwd');
  await rejectsMentioning(() => resolveEntry(index, 'hl'), 'hl', '../etc/real');
  await rejectsMentioning(() => resolveEntry(index, 'l1'), 'l1', 'loop');
  await rejectsMentioning(() => resolveEntry(index, 'c0'), 'c0', 'more than 16');
  await rejectsMentioning(() => resolveEntry(index, 'blobs/sha512/x'), 'blobs/sha512/x', 'blobs/sha512', 'symlink');
  await rejectsMentioning(() => resolveEntry(index, 'dirlink/real'), 'dirlink/real', 'dirlink');
  await rejectsMentioning(() => resolveEntry(index, 'dot'), 'dot', 'archive root');
  await rejectsMentioning(() => resolveEntry(index, 'missing'), 'missing');
  await rejectsMentioning(() => resolveEntry(index, '../etc/real'), '../etc/real');
  // The final name is found, but its own target goes through a symlinked dir.
  const viaLink = await scanRaw('links2.tar', [
    { h: { name: 'blobs/sha512', typeflag: '2', linkname: '/tmp' } },
    { h: { name: 'ref', typeflag: '2', linkname: 'blobs/sha512/x' } },
  ]);
  await rejectsMentioning(() => resolveEntry(viaLink, 'ref'), 'ref', 'blobs/sha512');
});

test('truncated archives name the entry', async () => {
  const full = rawTar([
    { h: { name: 'first.txt' }, data: 'hello' },
    { h: { name: 'big.bin' }, data: Buffer.alloc(10_000, 1) },
    { h: { name: 'second.txt' }, data: 'world' },
  ]);
  const secondHeader = 512 + 512 + 512 + 10_240;
  const cases: Array<[string, number, string]> = [
    ['mid-content', 512 + 512 + 512 + 5000, 'big.bin'],
    ['missing padding', 512 + 512 + 512 + 10_000, 'big.bin'],
    ['mid-header', secondHeader + 200, 'second.txt'],
    ['few header bytes', secondHeader + 5, 'big.bin'],
    ['mid pax', 0, 'PaxHeader/x'],
  ];
  for (const [label, cut, name] of cases) {
    const path = tmp(`trunc-${label.replace(/ /g, '-')}.tar`);
    const bytes =
      label === 'mid pax'
        ? rawTar([{ h: { name: 'PaxHeader/x', typeflag: 'x', size: 2000 }, data: paxData({ path: 'x' }) }]).subarray(0, 1024)
        : full.subarray(0, cut);
    await writeFile(path, bytes);
    const msg = await rejectsMentioning(() => scanTar(path), name, path, 'truncated');
    assert.match(msg, /offset \d+/);
  }
  const dangling = tmp('dangling.tar');
  await writeFile(dangling, rawTar([{ h: { name: 'PaxHeader/x', typeflag: 'x' }, data: paxData({ path: 'x' }) }]));
  await rejectsMentioning(() => scanTar(dangling), 'not followed by an entry');
});

test('bad checksum is rejected with the entry name and offset', async () => {
  const bytes = rawTar([
    { h: { name: 'good' }, data: 'ok' },
    { h: { name: 'corrupted-entry' }, data: 'bad' },
  ]);
  bytes[1024 + 136] = '7'.charCodeAt(0); // mtime digit: name intact, checksum now wrong
  const path = tmp('cksum.tar');
  await writeFile(path, bytes);
  await rejectsMentioning(() => scanTar(path), 'corrupted-entry', 'checksum', 'offset 1024');
  const garbage = tmp('garbage.tar');
  await writeFile(garbage, Buffer.concat([Buffer.from('this is not a tar file'), Buffer.alloc(1000, 0x41)]));
  await rejectsMentioning(() => scanTar(garbage), 'checksum', 'offset 0');
});

// ---------------------------------------------------------------------------
// reading only headers
// ---------------------------------------------------------------------------

test('scanTar never reads entry content', async () => {
  const path = tmp('64m.tar');
  const MiB = 1024 * 1024;
  const writer = new TarWriter(createWriteStream(path));
  await writer.addFile('head.txt', 3, Buffer.from('abc'));
  await writer.addFile('big.bin', 64 * MiB, () => Readable.from((function* () {
    for (let i = 0; i < 64; i++) yield Buffer.alloc(MiB, i);
  })()));
  await writer.addFile('tail.txt', 4, Buffer.from('tail'));
  await writer.finish();

  const probe = await open(path, 'r');
  const proto = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => Promise<{ bytesRead: number }> };
  await probe.close();
  const original = proto.read;
  let spied = 0;
  proto.read = async function (this: unknown, ...args: unknown[]) {
    const result = await original.apply(this, args);
    spied += result.bytesRead;
    return result;
  };
  const stats = { bytesRead: 0, reads: 0 };
  let index: TarIndex;
  try {
    index = await scanTar(path, { stats });
  } finally {
    proto.read = original;
  }
  assert.deepEqual(names(index), ['head.txt', 'big.bin', 'tail.txt']);
  assert.equal(stats.bytesRead, spied, 'stats count every read');
  assert.ok(spied < 3 * 64 * 1024, `read ${spied} bytes to scan a 64 MiB archive`);
  assert.ok(stats.reads <= 3, `${stats.reads} reads`);
  const big = index.byName.get('big.bin')!;
  assert.equal(big.size, 64 * MiB);
  const sample = await readEntry(path, { ...big, offset: big.offset + 63 * MiB, size: 16 });
  assert.ok(sample.equals(Buffer.alloc(16, 63)));
  assert.equal((await readEntry(path, index.byName.get('tail.txt')!)).toString(), 'tail');
});

test('multi-GiB sparse archive: base-256 and PAX sizes, scanned without reading content', async () => {
  const GiB = 1024 ** 3;
  const huge = 9 * GiB + 3;
  // Capture the headers TarWriter emits for a 9 GiB file, then give up on the content.
  const captured: Buffer[] = [];
  const writer = new TarWriter(new Writable({ write: (c: Buffer, _e, cb) => (captured.push(c), cb()) }));
  const failing = new Readable({ read() { this.destroy(new Error('stop')); } });
  await assert.rejects(writer.addFile('pax-sized.bin', huge, failing));
  const paxHeaders = Buffer.concat(captured);
  assert.equal(paxHeaders.length, 3 * 512, 'PAX header, PAX records, ustar header');
  assert.ok(paxHeaders.includes(`size=${huge}\n`));

  const b256 = Buffer.alloc(12);
  b256.writeUInt8(0x80, 0);
  b256.writeBigUInt64BE(BigInt(huge), 4);
  const path = tmp('sparse.tar');
  const fh = await open(path, 'w');
  let pos = 0;
  const put = async (buf: Buffer) => {
    await fh.write(buf, 0, buf.length, pos);
    pos += buf.length;
  };
  await put(rawHeader({ name: 'base256.bin', sizeField: b256 }));
  pos += Math.ceil(huge / 512) * 512;
  await put(paxHeaders);
  pos += Math.ceil(huge / 512) * 512;
  await put(rawTar([{ h: { name: 'after' }, data: 'after' }]));
  await fh.close();

  const stats = { bytesRead: 0, reads: 0 };
  const started = performance.now();
  const index = await scanTar(path, { stats });
  const elapsed = performance.now() - started;
  assert.deepEqual(
    index.entries.map((e) => [e.name, e.size]),
    [['base256.bin', huge], ['pax-sized.bin', huge], ['after', 5]],
  );
  assert.equal(index.entries[1]?.offset, 512 + Math.ceil(huge / 512) * 512 + 3 * 512);
  assert.equal((await readEntry(path, index.byName.get('after')!)).toString(), 'after');
  assert.ok(stats.bytesRead < 64 * 1024, `read ${stats.bytesRead} bytes`);
  assert.ok(elapsed < 1000, `scan took ${elapsed} ms`);
  await truncate(path, 0);
});
