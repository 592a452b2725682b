/**
 * A raw tar encoder that writes whatever it is told: `../` and absolute names, links out of the
 * archive, device files, PAX and GNU long-name records, duplicates. The store's TarWriter refuses all
 * of these, which is why tests that build hostile archives need their own.
 */
const BLOCK = 512;

export interface RawEntry {
  name: string;
  /** '0' file, '1' hardlink, '2' symlink, '3' char device, '4' block device, '5' dir, '6' fifo, 'x' PAX, 'L' GNU long name. */
  typeflag?: string;
  data?: Buffer | string;
  linkname?: string;
  mode?: number;
  /** Header size field when it should differ from the data (a lie, or a truncated archive). */
  size?: number;
  /** 'gnu' writes the GNU magic ("ustar  \0"), whose headers have no prefix field. */
  magic?: 'ustar' | 'gnu';
  devmajor?: number;
  devminor?: number;
}

function octal(block: Buffer, value: number, start: number, width: number): void {
  block.write(`${value.toString(8).padStart(width - 1, '0')}\0`, start, width, 'latin1');
}

export function rawHeader(entry: RawEntry): Buffer {
  const data = toBuffer(entry.data);
  const block = Buffer.alloc(BLOCK);
  Buffer.from(entry.name, 'utf8').subarray(0, 100).copy(block, 0);
  const typeflag = entry.typeflag ?? '0';
  octal(block, entry.mode ?? (typeflag === '5' ? 0o755 : 0o644), 100, 8);
  octal(block, 0, 108, 8);
  octal(block, 0, 116, 8);
  octal(block, entry.size ?? data.length, 124, 12);
  octal(block, 1704067200, 136, 12);
  block.write(typeflag, 156, 1, 'latin1');
  Buffer.from(entry.linkname ?? '', 'utf8').subarray(0, 100).copy(block, 157);
  block.write(entry.magic === 'gnu' ? 'ustar  \0' : 'ustar\x0000', 257, 8, 'latin1');
  octal(block, entry.devmajor ?? 0, 329, 8);
  octal(block, entry.devminor ?? 0, 337, 8);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

function toBuffer(data: Buffer | string | undefined): Buffer {
  if (data === undefined) return Buffer.alloc(0);
  return Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8');
}

const pad = (n: number): Buffer => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);

/** One entry: header, data, padding. */
export function rawEntry(entry: RawEntry): Buffer {
  const data = toBuffer(entry.data);
  return Buffer.concat([rawHeader(entry), data, pad(data.length)]);
}

export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

/** A PAX extended header for the entry that follows it. */
export function paxHeader(records: Record<string, string>): Buffer {
  const data = Object.entries(records).map(([k, v]) => paxRecord(k, v)).join('');
  return rawEntry({ name: 'PaxHeader/entry', typeflag: 'x', data });
}

/** A GNU 'L' (long name) or 'K' (long link name) record for the entry that follows it. */
export function gnuLongRecord(kind: 'L' | 'K', value: string): Buffer {
  return rawEntry({ name: '././@LongLink', typeflag: kind, data: `${value}\0`, magic: 'gnu' });
}

export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

/** Files (path → bytes) as plain ustar entries with their parent directories, sorted. */
export function plainEntries(files: Map<string, Buffer>): Buffer[] {
  const dirs = new Set<string>();
  for (const name of files.keys()) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  const out: Array<[string, Buffer]> = [
    ...[...dirs].map((d): [string, Buffer] => [d, rawEntry({ name: `${d}/`, typeflag: '5' })]),
    ...[...files].map(([name, data]): [string, Buffer] => [name, rawEntry({ name, data })]),
  ];
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, b]) => b);
}

export function tarOf(...parts: Buffer[]): Buffer {
  return Buffer.concat([...parts, END_OF_ARCHIVE]);
}
