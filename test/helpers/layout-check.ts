/**
 * An integrity check of an OCI layout directory written independently of ocikit's own code, so a
 * crash test does not trust the module it is testing: every blob hashes to its name, index.json
 * parses, and every descriptor it reaches (through indexes and manifests) is present with its size.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const TEMP_PREFIX = '.ocikit-tmp-';
const HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };
const MAX_DOCUMENT = 4 * 1024 * 1024;

export interface LayoutReport {
  problems: string[];
  /** Leftover temp files (relative paths): not blobs, but a later write must clean them. */
  temps: string[];
  blobs: number;
}

interface Descriptor {
  mediaType?: string;
  digest?: string;
  size?: number;
  urls?: string[];
}

const isIndexType = (t = '') => /image\.index\.v1\+json$|manifest\.list\.v2\+json$/.test(t);
const isManifestType = (t = '') => /image\.manifest\.v1\+json$|distribution\.manifest\.v2\+json$/.test(t);
const isNondistributable = (t = '') => /nondistributable|foreign/.test(t);

export async function checkLayout(dir: string): Promise<LayoutReport> {
  const report: LayoutReport = { problems: [], temps: [], blobs: 0 };
  const problem = (msg: string) => report.problems.push(msg);
  const layoutFile = await readRegular(join(dir, 'oci-layout'), problem);
  if (layoutFile) {
    const parsed = tryJson(layoutFile) as { imageLayoutVersion?: unknown } | undefined;
    if (typeof parsed?.imageLayoutVersion !== 'string') problem('oci-layout: no imageLayoutVersion');
  }
  const present = await scanBlobs(dir, report);
  const indexRaw = await readRegular(join(dir, 'index.json'), problem);
  if (!indexRaw) return report;
  const index = tryJson(indexRaw) as { manifests?: Descriptor[] } | undefined;
  if (!index || !Array.isArray(index.manifests)) {
    problem('index.json: not an image index');
    return report;
  }
  await checkReachable(dir, index.manifests, present, problem);
  return report;
}

/** Every file under blobs/: temps noted, anything else must be a regular file that hashes to its name. */
async function scanBlobs(dir: string, report: LayoutReport): Promise<Map<string, number>> {
  const present = new Map<string, number>();
  const root = join(dir, 'blobs');
  for (const alg of await readdir(root).catch(() => [] as string[])) {
    const algInfo = await lstat(join(root, alg));
    if (!algInfo.isDirectory()) {
      report.problems.push(`blobs/${alg}: not a directory`);
      continue;
    }
    for (const name of await readdir(join(root, alg))) {
      const rel = `blobs/${alg}/${name}`;
      if (name.startsWith(TEMP_PREFIX)) {
        report.temps.push(rel);
        continue;
      }
      const info = await lstat(join(dir, rel));
      if (!info.isFile()) {
        report.problems.push(`${rel}: not a regular file`);
        continue;
      }
      if (HEX_LENGTH[alg] !== name.length || !/^[a-f0-9]+$/.test(name)) {
        report.problems.push(`${rel}: not a blob name`);
        continue;
      }
      const actual = createHash(alg).update(await readFile(join(dir, rel))).digest('hex');
      if (actual !== name) report.problems.push(`${rel}: content hashes to ${actual}`);
      present.set(`${alg}:${name}`, info.size);
      report.blobs++;
    }
  }
  for (const name of await readdir(dir)) if (name.startsWith(TEMP_PREFIX)) report.temps.push(name);
  return present;
}

async function checkReachable(dir: string, roots: Descriptor[], present: Map<string, number>, problem: (m: string) => void): Promise<void> {
  const seen = new Set<string>();
  const queue = roots.map((d) => ({ d, where: 'index.json' }));
  while (queue.length > 0) {
    const { d, where } = queue.shift()!;
    if (typeof d.digest !== 'string' || seen.has(d.digest)) continue;
    seen.add(d.digest);
    const size = present.get(d.digest);
    if (size === undefined) {
      if (!isNondistributable(d.mediaType) && !d.urls?.length) problem(`${where}: ${d.digest} is missing`);
      continue;
    }
    if (size !== d.size) problem(`${where}: ${d.digest} has ${size} bytes, descriptor says ${d.size}`);
    if (!isIndexType(d.mediaType) && !isManifestType(d.mediaType)) continue;
    const [alg, hex] = d.digest.split(':') as [string, string];
    const raw = await readFile(join(dir, 'blobs', alg, hex));
    const doc = raw.length <= MAX_DOCUMENT ? (tryJson(raw) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] } | undefined) : undefined;
    if (!doc) {
      problem(`${d.digest}: not JSON`);
      continue;
    }
    for (const child of [...(doc.manifests ?? []), ...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) {
      queue.push({ d: child, where: d.digest });
    }
  }
}

async function readRegular(path: string, problem: (m: string) => void): Promise<Buffer | undefined> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) {
    problem(`${path}: missing`);
    return undefined;
  }
  if (!info.isFile()) {
    problem(`${path}: not a regular file`);
    return undefined;
  }
  return readFile(path);
}

function tryJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
}
