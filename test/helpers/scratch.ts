/** Temp directories, fixture copies and a seeded random generator shared by the robustness tests. */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { buildImage, makeLayer, tagged, writeLayout } from '../../testdata/builder.js';
import { TESTDATA } from './ocikit-process.js';

export const layoutFixture = (name: string): string => join(TESTDATA, 'layouts', name);
export const archiveFixture = (name: string): string => join(TESTDATA, 'archives', name);

/** A fresh directory under the system temp dir; `cleanup` removes it. */
export async function scratchDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `ocikit-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function copyLayout(name: string, dest: string): Promise<string> {
  await cp(layoutFixture(name), dest, { recursive: true });
  return dest;
}

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pseudoRandomBytes(length: number, seed: number): Buffer {
  const next = seededRandom(seed);
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i + 4 <= length; i += 4) out.writeUInt32LE(Math.floor(next() * 0x100000000), i);
  for (let i = length - (length % 4); i < length; i++) out[i] = Math.floor(next() * 256);
  return out;
}

/**
 * A layout whose image has several uncompressed layers of incompressible bytes, so copying it takes
 * long enough for a kill to land between and inside blob writes.
 */
export async function writeBigLayout(dir: string, layers = 4, layerBytes = 1536 * 1024): Promise<void> {
  const built = buildImage({
    layers: Array.from({ length: layers }, (_, i) => makeLayer([{ path: `data/${i}.bin`, content: pseudoRandomBytes(layerBytes, 1000 + i) }], 'none')),
    config: { Cmd: ['/bin/sh'] },
  });
  await writeLayout(dir, { manifests: [tagged(built.descriptor, 'big')], blobs: built.blobs });
}

/** Copies of the named fixture layouts in a temp dir removed after the test; returns a path resolver. */
export async function workspace(t: TestContext, prefix: string, ...layouts: string[]): Promise<(name: string) => string> {
  const { dir, cleanup } = await scratchDir(prefix);
  t.after(cleanup);
  for (const name of layouts) await copyLayout(name, join(dir, name));
  return (name) => join(dir, name);
}
