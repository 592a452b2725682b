/**
 * Hand-written tar (ustar / pax / gnu) header index and deterministic writer.
 *
 * The reader only ever reads headers and metadata records (PAX 'x', GNU 'L'/'K');
 * entry content is located by offset and read on demand, so indexing a
 * multi-GiB layer costs one small positional read per header.
 */
import { constants, createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { OcikitError } from '../errors.js';

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';

export interface TarEntry {
  /** Normalized archive name: no leading `./`, no `//`, no trailing `/`. */
  name: string;
  type: TarEntryType;
  /** The raw header typeflag character (`'\0'` for old-style regular files). */
  typeflag: string;
  /** Byte offset of the entry's content in the archive file. */
  offset: number;
  size: number;
  linkname?: string;
  mode: number;
  mtime: number;
}

export interface TarIndex {
  path: string;
  entries: TarEntry[];
  /** Last entry wins for a repeated name, as on extraction. */
  byName: Map<string, TarEntry>;
  /** Names that occur more than once, in order of their first repetition. */
  duplicates: string[];
  /** Size of the archive file in bytes. */
  size: number;
}

export interface ScanStats {
  bytesRead: number;
  reads: number;
}

export interface ScanOptions {
  maxEntries?: number;
  /** Incremented with every read the scanner makes. */
  stats?: ScanStats;
}

const BLOCK = 512;
const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
const MIN_READ = 4 * 1024;
const MAX_READ = 256 * 1024;
/** PAX and GNU long-name records are tiny; a huge one is an attack or corruption. */
const MAX_META_SIZE = 1024 * 1024;
const MAX_OCTAL_SIZE = 8 ** 11 - 1;

const padded = (n: number): number => Math.ceil(n / BLOCK) * BLOCK;

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

/**
 * Canonical archive name. Throws on names that could escape an extraction
 * root (absolute, `..`) or that cannot be a path (NUL). `where` is appended
 * to the error message to say which archive/offset the name came from.
 */
export function normalizeEntryName(raw: string, where = ''): string {
  const reject = (why: string): never => {
    throw new OcikitError(`unsafe tar entry name ${JSON.stringify(raw)}: ${why}${where}`);
  };
  if (raw.includes('\0')) reject('contains a NUL byte');
  if (raw.startsWith('/')) reject('absolute path');
  const segments = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) reject("contains a '..' segment");
  return segments.join('/');
}

// ---------------------------------------------------------------------------
// Header field decoding
// ---------------------------------------------------------------------------

function cString(buf: Buffer, start: number, end: number, encoding: BufferEncoding = 'utf8'): string {
  const nul = buf.indexOf(0, start);
  return buf.toString(encoding, start, nul >= 0 && nul < end ? nul : end);
}

/** Octal (space/NUL padded) or GNU base-256 (high bit set) number field. */
function parseNumber(buf: Buffer, start: number, end: number): number | undefined {
  if ((buf[start] ?? 0) & 0x80) return parseBase256(buf, start, end);
  let i = start;
  while (i < end && (buf[i] === 0x20 || buf[i] === 0)) i++;
  let value = 0;
  for (; i < end; i++) {
    const c = buf[i] ?? 0;
    if (c < 0x30 || c > 0x37) break;
    value = value * 8 + (c - 0x30);
  }
  for (; i < end; i++) if (buf[i] !== 0x20 && buf[i] !== 0) return undefined;
  return value;
}

function parseBase256(buf: Buffer, start: number, end: number): number | undefined {
  let value = 0n;
  for (let i = start; i < end; i++) value = value * 256n + BigInt(buf[i] ?? 0);
  const bits = BigInt((end - start) * 8);
  // 0x80 marks a positive number, 0xff a two's complement negative one.
  value -= (buf[start] ?? 0) === 0xff ? 1n << bits : 1n << (bits - 1n);
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

function checksumMatches(block: Buffer): boolean {
  const stored = parseNumber(block, 148, 156);
  if (stored === undefined) return false;
  // The checksum field itself counts as eight spaces.
  let unsigned = 8 * 0x20;
  let highBytes = 0;
  for (let i = 0; i < BLOCK; i++) {
    if (i === 148) i = 156;
    const b = block[i] as number;
    unsigned += b;
    if (b > 127) highBytes++;
  }
  // Some old writers summed signed chars.
  return stored === unsigned || stored === unsigned - 256 * highBytes;
}

function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

interface RawHeader {
  name: string;
  typeflag: string;
  linkname: string;
  size: number;
  mode: number;
  mtime: number;
}

function parseHeader(block: Buffer, where: (msg: string) => OcikitError): RawHeader {
  const rawName = cString(block, 0, 100);
  if (!checksumMatches(block)) throw where(`bad header checksum for entry ${JSON.stringify(rawName)}`);
  const field = (label: string, start: number, end: number): number => {
    const n = parseNumber(block, start, end);
    if (n === undefined) throw where(`invalid ${label} field in header of entry ${JSON.stringify(rawName)}`);
    return n;
  };
  // Only POSIX ustar has a prefix; GNU ("ustar  \0") keeps atime/ctime there.
  const isPosix = block.toString('latin1', 257, 263) === 'ustar\0';
  const prefix = isPosix ? cString(block, 345, 500) : '';
  return {
    name: prefix ? `${prefix}/${rawName}` : rawName,
    typeflag: String.fromCharCode(block[156] ?? 0),
    linkname: cString(block, 157, 257),
    size: field('size', 124, 136),
    mode: field('mode', 100, 108) & 0o7777,
    mtime: field('mtime', 136, 148),
  };
}

/** Records are `"<len> key=value\n"` where len counts the whole record. */
function parsePaxRecords(buf: Buffer, where: (msg: string) => OcikitError): Map<string, string> {
  const records = new Map<string, string>();
  let i = 0;
  while (i < buf.length && buf[i] !== 0) {
    const space = buf.indexOf(0x20, i);
    const lenText = space > i ? buf.toString('latin1', i, space) : '';
    const len = /^\d{1,12}$/.test(lenText) ? Number(lenText) : NaN;
    const end = i + len;
    if (!(len > space - i + 2) || end > buf.length || buf[end - 1] !== 0x0a) {
      throw where(`malformed PAX record at byte ${i} of the extended header`);
    }
    const record = buf.toString('utf8', space + 1, end - 1);
    const eq = record.indexOf('=');
    if (eq <= 0) throw where(`malformed PAX record at byte ${i} of the extended header`);
    records.set(record.slice(0, eq), record.slice(eq + 1));
    i = end;
  }
  return records;
}

// ---------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/**
 * Positional reads through a small window. The window size adapts: archives of
 * many small files get batches of up to 256 KiB of headers, archives of big files get
 * small reads so we do not pull content we are about to skip.
 */
class WindowReader {
  private window = Buffer.alloc(0);
  private windowPos = 0;
  private readSize = 16 * 1024;
  private hits = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly stats: ScanStats | undefined,
  ) {}

  /** The bytes if the current window already holds them; no I/O. */
  cached(pos: number, len: number): Buffer | undefined {
    const start = pos - this.windowPos;
    if (start < 0 || start + len > this.window.length) return undefined;
    this.hits++;
    return this.window.subarray(start, start + len);
  }

  async read(pos: number, len: number, fileSize: number): Promise<Buffer> {
    const hit = this.cached(pos, len);
    if (hit) return hit;
    this.readSize = this.hits > 1 ? Math.min(this.readSize * 2, MAX_READ) : Math.max(this.readSize / 2, MIN_READ);
    this.hits = 1;
    const buf = Buffer.allocUnsafe(Math.min(Math.max(len, this.readSize), fileSize - pos));
    const got = await readFully(this.fh, buf, pos);
    if (this.stats) {
      this.stats.bytesRead += got;
      this.stats.reads++;
    }
    this.window = buf.subarray(0, got);
    this.windowPos = pos;
    return this.window.subarray(0, Math.min(len, got));
  }
}

/** Metadata collected from PAX 'x' and GNU 'L'/'K' headers for the next entry. */
interface PendingMeta {
  headerOffset?: number;
  path?: string;
  linkpath?: string;
  size?: number;
  mtime?: number;
  sparse?: boolean;
}

const META_TYPES = new Set(['x', 'g', 'L', 'K']);

type MetaHeader = RawHeader & { headerPos: number; where: (msg: string) => OcikitError };

function entryType(typeflag: string, rawName: string, meta: PendingMeta): TarEntryType {
  if (meta.sparse) return 'other';
  switch (typeflag) {
    case '0':
    case '\0':
      // Pre-POSIX archives mark directories only by a trailing slash.
      return rawName.endsWith('/') ? 'dir' : 'file';
    case '7':
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '5':
      return 'dir';
    default:
      return 'other';
  }
}

class Scanner {
  readonly entries: TarEntry[] = [];
  readonly byName = new Map<string, TarEntry>();
  readonly duplicates: string[] = [];
  private readonly duplicateSet = new Set<string>();
  private meta: PendingMeta = {};
  private pos = 0;

  constructor(
    private readonly path: string,
    private readonly reader: WindowReader,
    private readonly fileSize: number,
    private readonly maxEntries: number,
  ) {}

  private error(offset: number, msg: string): OcikitError {
    return new OcikitError(`tar ${this.path}: ${msg} (at byte offset ${offset})`);
  }

  async run(): Promise<void> {
    for (;;) {
      if (this.pos === this.fileSize) break;
      if (this.pos + BLOCK > this.fileSize) throw await this.truncatedHeader();
      // Headers already in the read window are parsed without awaiting.
      const block = this.reader.cached(this.pos, BLOCK) ?? (await this.reader.read(this.pos, BLOCK, this.fileSize));
      if (isZeroBlock(block)) break;
      const metaHeader = this.step(block);
      if (metaHeader) await this.readMeta(metaHeader);
    }
    if (this.meta.headerOffset !== undefined) {
      throw this.error(this.meta.headerOffset, 'extended header is not followed by an entry; archive is truncated');
    }
  }

  private async truncatedHeader(): Promise<OcikitError> {
    const tail = await this.reader.read(this.pos, this.fileSize - this.pos, this.fileSize);
    const nameEnd = Math.min(100, tail.length);
    const partial = cString(tail, 0, nameEnd);
    // Without a NUL inside the bytes we have, the name may be cut short too.
    const nul = tail.indexOf(0);
    const complete = nameEnd === 100 || (nul >= 0 && nul < nameEnd);
    const which = partial === '' ? 'a header' : `the header of entry ${complete ? '' : 'starting '}${JSON.stringify(partial)}`;
    const after = this.entries.at(-1)?.name;
    const context = after === undefined ? '' : ` after entry ${JSON.stringify(after)}`;
    return this.error(this.pos, `archive is truncated: end of file inside ${which}${context}`);
  }

  /** Records the entry in `block` and moves past it; returns metadata headers whose content must be read. */
  private step(block: Buffer): MetaHeader | undefined {
    const headerPos = this.pos;
    const where = (msg: string) => this.error(headerPos, msg);
    const header = parseHeader(block, where);
    const isMeta = META_TYPES.has(header.typeflag);
    const size = isMeta ? header.size : (this.meta.size ?? header.size);
    const contentPos = headerPos + BLOCK;
    const name = isMeta ? header.name : (this.meta.path ?? header.name);
    if (contentPos + padded(size) > this.fileSize) {
      throw where(`archive is truncated: content of entry ${JSON.stringify(name)} (${size} bytes) runs past end of file (${this.fileSize} bytes)`);
    }
    this.pos = contentPos + padded(size);
    if (isMeta) return { ...header, headerPos, where };
    this.addEntry(header, name, contentPos, size, where);
    return undefined;
  }

  private async readMeta(header: MetaHeader): Promise<void> {
    const { where } = header;
    if (header.size > MAX_META_SIZE) {
      throw where(`extended header ${JSON.stringify(header.name)} is ${header.size} bytes, larger than the ${MAX_META_SIZE} byte limit`);
    }
    const content = await this.reader.read(header.headerPos + BLOCK, header.size, this.fileSize);
    if (header.typeflag === 'g') return; // global defaults do not describe an entry
    this.meta.headerOffset ??= header.headerPos;
    if (header.typeflag === 'L') this.meta.path = cString(content, 0, content.length);
    else if (header.typeflag === 'K') this.meta.linkpath = cString(content, 0, content.length);
    else this.applyPax(parsePaxRecords(content, where), where);
  }

  private applyPax(records: Map<string, string>, where: (m: string) => OcikitError): void {
    for (const [key, value] of records) {
      // An empty value means "use the header field".
      const v = value === '' ? undefined : value;
      if (key === 'path') this.meta.path = v;
      else if (key === 'linkpath') this.meta.linkpath = v;
      else if (key === 'size') this.meta.size = v === undefined ? undefined : paxInteger(v, where);
      else if (key === 'mtime') this.meta.mtime = v === undefined ? undefined : Math.floor(Number(v));
      else if (key.startsWith('GNU.sparse.')) this.meta.sparse = true;
    }
  }

  private addEntry(header: RawHeader, rawName: string, offset: number, size: number, where: (m: string) => OcikitError): void {
    const meta = this.meta;
    this.meta = {};
    const name = normalizeEntryName(rawName, ` in tar ${this.path} (at byte offset ${offset - BLOCK})`);
    const type = entryType(header.typeflag, rawName, meta);
    if (name === '') {
      if (type === 'dir') return;
      throw where(`entry with an empty name`);
    }
    if (this.entries.length >= this.maxEntries) throw where(`more than ${this.maxEntries} entries`);
    const linkname = meta.linkpath ?? header.linkname;
    const mtime = meta.mtime !== undefined && Number.isFinite(meta.mtime) ? meta.mtime : header.mtime;
    const entry: TarEntry = { name, type, typeflag: header.typeflag, offset, size, mode: header.mode, mtime };
    if (type === 'symlink' || type === 'hardlink') entry.linkname = linkname;
    this.entries.push(entry);
    if (this.byName.has(name) && !this.duplicateSet.has(name)) {
      this.duplicateSet.add(name);
      this.duplicates.push(name);
    }
    this.byName.set(name, entry);
  }
}

function paxInteger(value: string, where: (m: string) => OcikitError): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw where(`invalid PAX size ${JSON.stringify(value)}`);
  return n;
}

/** Non-blocking, so that opening a FIFO returns at once instead of waiting for a writer forever. */
const READ_NONBLOCK = constants.O_RDONLY | constants.O_NONBLOCK;

/** An archive is read by offsets, from a regular file only: a FIFO or device would hang or never end. */
export async function openRegular(path: string): Promise<FileHandle> {
  const fh = await open(path, READ_NONBLOCK);
  const info = await fh.stat().catch(async (err: unknown) => {
    await fh.close();
    throw err;
  });
  if (info.isFile()) return fh;
  await fh.close();
  throw new OcikitError(`${path}: not a regular file; a tar archive must be one`);
}

/** Index every entry of a tar file by reading only its headers. */
export async function scanTar(path: string, opts: ScanOptions = {}): Promise<TarIndex> {
  const fh = await openRegular(path);
  try {
    const { size } = await fh.stat();
    const scanner = new Scanner(path, new WindowReader(fh, opts.stats), size, opts.maxEntries ?? Infinity);
    await scanner.run();
    return { path, entries: scanner.entries, byName: scanner.byName, duplicates: scanner.duplicates, size };
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------------------
// Lookup inside an index
// ---------------------------------------------------------------------------

/** Join a relative symlink target onto a directory; undefined if it climbs above the root. */
function joinInside(dir: string, target: string): string | undefined {
  const out = dir === '' ? [] : dir.split('/');
  for (const seg of target.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg !== '..') out.push(seg);
    else if (out.pop() === undefined) return undefined;
  }
  return out.join('/');
}

const dirname = (name: string): string => name.slice(0, Math.max(0, name.lastIndexOf('/')));

/** Where a link entry points inside the archive, or undefined when it would leave the archive root. */
export function linkTarget(entry: TarEntry): string | undefined {
  const target = entry.linkname ?? '';
  if (target.startsWith('/')) return undefined;
  return entry.type === 'symlink' ? joinInside(dirname(entry.name), target) : joinInside('', target);
}

function lookupNoLinkedParents(index: TarIndex, name: string, asked: string): TarEntry {
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) {
    const parent = index.byName.get(name.slice(0, i));
    if (parent && parent.type !== 'dir') {
      throw new OcikitError(
        `tar ${index.path}: lookup of ${JSON.stringify(asked)} goes through ${JSON.stringify(parent.name)}, which is a ${parent.type}, not a directory`,
      );
    }
  }
  const entry = index.byName.get(name);
  if (!entry) throw new OcikitError(`tar ${index.path}: no entry ${JSON.stringify(name)} (looking up ${JSON.stringify(asked)})`);
  return entry;
}

/**
 * The entry `name` refers to, following symlinks and hardlinks inside the
 * archive. Links that leave the archive root, loops, and paths through a
 * symlinked directory are errors.
 */
export function resolveEntry(index: TarIndex, name: string, maxHops = 16): TarEntry {
  const fail = (msg: string): never => {
    throw new OcikitError(`tar ${index.path}: cannot resolve ${JSON.stringify(name)}: ${msg}`);
  };
  let current = normalizeEntryName(name, ` in tar ${index.path}`);
  const seen = new Set<string>();
  for (let hops = 0; ; hops++) {
    const entry = lookupNoLinkedParents(index, current, name);
    if (entry.type !== 'symlink' && entry.type !== 'hardlink') return entry;
    if (seen.has(current)) fail(`link loop at ${JSON.stringify(current)}`);
    if (hops >= maxHops) fail(`more than ${maxHops} link hops`);
    seen.add(current);
    const target = entry.linkname ?? '';
    const shown = `${entry.type} ${JSON.stringify(entry.name)} -> ${JSON.stringify(target)}`;
    if (target.startsWith('/')) fail(`${shown} is absolute and points outside the archive`);
    const next = entry.type === 'symlink' ? joinInside(dirname(entry.name), target) : joinInside('', target);
    if (next === undefined) fail(`${shown} escapes the archive root`);
    if (next === '') fail(`${shown} points at the archive root`);
    current = next as string;
  }
}

// ---------------------------------------------------------------------------
// Content access
// ---------------------------------------------------------------------------

/** Exactly `entry.size` content bytes; refuses before reading if larger than `maxBytes`. */
export async function readEntry(fhOrPath: FileHandle | string, entry: TarEntry, maxBytes?: number): Promise<Buffer> {
  if (maxBytes !== undefined && entry.size > maxBytes) {
    throw new OcikitError(`tar entry ${JSON.stringify(entry.name)} is ${entry.size} bytes, more than the ${maxBytes} byte limit`);
  }
  const fh = typeof fhOrPath === 'string' ? await openRegular(fhOrPath) : fhOrPath;
  try {
    const buf = Buffer.allocUnsafe(entry.size);
    const got = await readFully(fh, buf, entry.offset);
    if (got !== entry.size) {
      throw new OcikitError(
        `tar entry ${JSON.stringify(entry.name)}: expected ${entry.size} bytes at offset ${entry.offset}, file ends after ${got}`,
      );
    }
    return buf;
  } finally {
    if (fh !== fhOrPath) await fh.close();
  }
}

export function entryStream(path: string, entry: TarEntry): Readable {
  if (entry.size === 0) return Readable.from([]);
  return createReadStream(path, { start: entry.offset, end: entry.offset + entry.size - 1, highWaterMark: 1 << 20 });
}

// ---------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------

interface HeaderSpec {
  name: string;
  typeflag: string;
  size: number;
  mode: number;
  mtime: number;
}

function writeOctal(block: Buffer, value: number, start: number, width: number): void {
  block.write(value.toString(8).padStart(width - 1, '0') + '\0', start, width, 'latin1');
}

function encodeHeader(spec: { nameField: Buffer; prefixField?: Buffer } & Omit<HeaderSpec, 'name'>): Buffer {
  const block = Buffer.alloc(BLOCK);
  spec.nameField.copy(block, 0);
  writeOctal(block, spec.mode, 100, 8);
  writeOctal(block, 0, 108, 8); // uid
  writeOctal(block, 0, 116, 8); // gid
  writeOctal(block, spec.size <= MAX_OCTAL_SIZE ? spec.size : 0, 124, 12);
  writeOctal(block, spec.mtime, 136, 12);
  block.write(spec.typeflag, 156, 1, 'latin1');
  block.write('ustar\x0000', 257, 8, 'latin1');
  writeOctal(block, 0, 329, 8); // devmajor
  writeOctal(block, 0, 337, 8); // devminor
  spec.prefixField?.copy(block, 345);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return block;
}

/** Longest prefix of `bytes` no longer than `max` that does not split a UTF-8 sequence. */
function utf8Truncate(bytes: Buffer, max: number): Buffer {
  let n = Math.min(max, bytes.length);
  while (n > 0 && n < bytes.length && ((bytes[n] ?? 0) & 0xc0) === 0x80) n--;
  return bytes.subarray(0, n);
}

/** Split a long name at a '/' into ustar prefix (<=155 bytes) and name (<=100 bytes). */
function ustarSplit(bytes: Buffer): { prefix: Buffer; name: Buffer } | undefined {
  for (let i = Math.min(155, bytes.length - 2); i > 0; i--) {
    if (bytes[i] !== 0x2f) continue;
    if (bytes.length - i - 1 > 100) return undefined;
    return { prefix: bytes.subarray(0, i), name: bytes.subarray(i + 1) };
  }
  return undefined;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  const digits = String(bodyLen).length;
  let len = bodyLen + digits;
  if (String(len).length > digits) len++; // adding the length itself can add a digit
  return `${len}${body}`;
}

/** Header block(s) for one entry: a PAX 'x' header first when ustar cannot hold it. */
function encodeEntryHeaders(spec: HeaderSpec): Buffer[] {
  const bytes = Buffer.from(spec.name, 'utf8');
  const big = spec.size > MAX_OCTAL_SIZE;
  const split = bytes.length > 100 ? ustarSplit(bytes) : undefined;
  if (!big && (bytes.length <= 100 || split)) {
    return [encodeHeader({ ...spec, nameField: split?.name ?? bytes, prefixField: split?.prefix })];
  }
  let records = '';
  if (bytes.length > 100) records += paxRecord('path', spec.name);
  if (big) records += paxRecord('size', String(spec.size));
  const paxData = Buffer.from(records, 'utf8');
  const base = Buffer.from(spec.name.replace(/\/$/, '').split('/').pop() ?? '', 'utf8');
  const paxName = Buffer.concat([Buffer.from('PaxHeader/'), utf8Truncate(base, 90)]);
  const paxHeader = encodeHeader({ nameField: paxName, typeflag: 'x', size: paxData.length, mode: 0o644, mtime: spec.mtime });
  const header = encodeHeader({ ...spec, nameField: utf8Truncate(bytes, 100) });
  return [paxHeader, paxData, zeroPad(paxData.length), header];
}

const zeroPad = (size: number): Buffer => Buffer.alloc(padded(size) - size);

function deterministicMtime(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SOURCE_DATE_EPOCH;
  const n = raw !== undefined && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  return Number.isSafeInteger(n) && n <= MAX_OCTAL_SIZE ? n : 0;
}

interface Sink {
  write(chunk: Buffer): Promise<void>;
  close(): Promise<void>;
}

function streamSink(dest: Writable, end: boolean): Sink {
  let failure: unknown;
  dest.on('error', (err) => (failure ??= err));
  const check = () => {
    if (failure !== undefined) throw failure;
    // A write error destroys the stream before its 'error' event is emitted: report the cause, not the closing.
    if (dest.errored) throw dest.errored;
    if (dest.destroyed || dest.writableEnded) throw new OcikitError('tar output stream is already closed');
  };
  return {
    async write(chunk) {
      check();
      if (dest.write(chunk)) return;
      await new Promise<void>((resolve, reject) => {
        const done = (err?: unknown) => {
          dest.off('drain', onDrain).off('error', done).off('close', onClose);
          if (err) reject(err);
          else resolve();
        };
        const onDrain = () => done();
        const onClose = () => done(failure ?? dest.errored ?? new OcikitError('tar output stream closed while writing'));
        dest.on('drain', onDrain).on('error', done).on('close', onClose);
      });
    },
    async close() {
      check();
      if (!end) return;
      dest.end();
      await finished(dest, { readable: false });
    },
  };
}

function fileHandleSink(fh: FileHandle): Sink {
  return {
    async write(chunk) {
      for (let done = 0; done < chunk.length; ) {
        done += (await fh.write(chunk, done, chunk.length - done)).bytesWritten;
      }
    },
    async close() {},
  };
}

export type TarSource = Buffer | Readable | (() => Readable);

export interface TarWriterOptions {
  /** End the destination stream in finish() (default true; file handles are never closed). */
  end?: boolean;
}

/**
 * Writes a reproducible tar: fixed modes, uid/gid 0, no user names, one mtime
 * (SOURCE_DATE_EPOCH or 0). Calls are serialized; after a failure every later
 * call rejects, because the output is no longer a valid archive.
 */
export class TarWriter {
  private readonly sink: Sink;
  private readonly mtime = deterministicMtime();
  private queue: Promise<unknown> = Promise.resolve();
  private failed: unknown;
  private closed = false;
  private written = 0;

  constructor(dest: Writable | FileHandle, opts: TarWriterOptions = {}) {
    this.sink = dest instanceof Writable ? streamSink(dest, opts.end ?? true) : fileHandleSink(dest);
  }

  get bytesWritten(): number {
    return this.written;
  }

  addFile(name: string, size: number, source: TarSource): Promise<void> {
    return this.enqueue(async () => {
      if (!Number.isSafeInteger(size) || size < 0) throw new OcikitError(`tar entry ${JSON.stringify(name)}: invalid size ${size}`);
      const clean = this.checkName(name);
      if (Buffer.isBuffer(source) && source.length !== size) {
        throw new OcikitError(`tar entry ${JSON.stringify(clean)}: declared ${size} bytes but the buffer has ${source.length}`);
      }
      await this.emit(...encodeEntryHeaders({ name: clean, typeflag: '0', size, mode: 0o644, mtime: this.mtime }));
      if (Buffer.isBuffer(source)) await this.emit(source);
      else await this.copyStream(clean, size, typeof source === 'function' ? source() : source);
      await this.emit(zeroPad(size));
    });
  }

  addDir(name: string): Promise<void> {
    return this.enqueue(async () => {
      const clean = this.checkName(name);
      await this.emit(...encodeEntryHeaders({ name: `${clean}/`, typeflag: '5', size: 0, mode: 0o755, mtime: this.mtime }));
    });
  }

  /** Writes the end-of-archive marker and returns the archive's total size. */
  finish(): Promise<number> {
    return this.enqueue(async () => {
      await this.emit(END_OF_ARCHIVE);
      this.closed = true;
      await this.sink.close();
      return this.written;
    });
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.failed !== undefined) throw new OcikitError('tar writer already failed; the archive is incomplete', { cause: this.failed });
      if (this.closed) throw new OcikitError('tar writer is already finished');
      try {
        return await op();
      } catch (err) {
        this.failed = err;
        throw err;
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private checkName(name: string): string {
    const clean = normalizeEntryName(name, ' (writing tar)');
    if (clean === '') throw new OcikitError(`tar entry name ${JSON.stringify(name)} is empty`);
    return clean;
  }

  private async emit(...chunks: Buffer[]): Promise<void> {
    for (const chunk of chunks) {
      if (chunk.length === 0) continue;
      await this.sink.write(chunk);
      this.written += chunk.length;
    }
  }

  private async copyStream(name: string, size: number, source: Readable): Promise<void> {
    let seen = 0;
    try {
      for await (const chunk of source) {
        const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
        if (seen + buf.length > size) {
          throw new OcikitError(`tar entry ${JSON.stringify(name)}: source produced more than the declared ${size} bytes`);
        }
        seen += buf.length;
        await this.emit(buf);
      }
    } finally {
      source.destroy();
    }
    if (seen !== size) {
      throw new OcikitError(`tar entry ${JSON.stringify(name)}: source produced ${seen} bytes, declared ${size}`);
    }
  }
}

export type TarWriteEntry = { name: string; data: Buffer } | { name: string; dir: true };

/** Write a whole archive and end `dest`; returns the archive size. */
export async function writeTar(dest: Writable, entries: TarWriteEntry[]): Promise<number> {
  const writer = new TarWriter(dest);
  for (const entry of entries) {
    if ('dir' in entry) await writer.addDir(entry.name);
    else await writer.addFile(entry.name, entry.data.length, entry.data);
  }
  return writer.finish();
}

/** Whether a file starts with a ustar header (GNU and PAX archives do too). */
export async function looksLikeTar(path: string): Promise<boolean> {
  const fh = await open(path, READ_NONBLOCK);
  try {
    if (!(await fh.stat()).isFile()) return false;
    const header = Buffer.alloc(512);
    const { bytesRead } = await fh.read(header, 0, 512, 0);
    return bytesRead === 512 && header.toString('latin1', 257, 262) === 'ustar';
  } finally {
    await fh.close();
  }
}
