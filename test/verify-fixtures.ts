/** Helpers for the verify tests: broken variants of the sample images, each built in a temp dir. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { verifyRef, type VerifyOptions, type VerifyReport } from '../src/ops/verify.js';
import { blobPath } from '../src/model/digest.js';
import type { Descriptor } from '../src/model/descriptor.js';
import { CONTAINERD_IMAGE_NAME } from '../src/model/keys.js';
import {
  blob, buildImage, layoutFiles, makeLayer, makeTar, tagged, tarBuffer, treeEntries, writeLayout, type Blob, type BuiltImage, type ImageSpec, type LayoutSpec,
} from '../testdata/builder.js';

export async function tempDir(t: TestContext, prefix = 'ocikit-verify-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A layout holding `manifests` and `blobs`, written under a fresh temp dir. */
export async function layout(t: TestContext, spec: LayoutSpec): Promise<string> {
  const dir = join(await tempDir(t), 'layout');
  await writeLayout(dir, spec);
  await mkdir(join(dir, 'blobs'), { recursive: true }); // an empty layout still has blobs/
  return dir;
}

export function imageSpec(image: { descriptor: Descriptor; blobs: Blob[] }, tag = 'latest'): LayoutSpec {
  return { manifests: [tagged(image.descriptor, tag)], blobs: image.blobs };
}

export async function imageLayout(t: TestContext, image: { descriptor: Descriptor; blobs: Blob[] }, extra: Partial<LayoutSpec> = {}): Promise<string> {
  return layout(t, { ...imageSpec(image), ...extra });
}

export async function check(ref: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  return verifyRef(ref, options);
}

export function rulesOf(report: VerifyReport, severity?: string): string[] {
  return [...new Set(report.findings.filter((f) => !severity || f.severity === severity).map((f) => f.rule))].sort();
}

export function errorsOf(report: VerifyReport): string[] {
  return rulesOf(report, 'error');
}

/** A small image with one gzip layer; `spec` overrides anything. */
export function smallImage(spec: Partial<ImageSpec> = {}): BuiltImage {
  const layer = makeLayer([
    { path: 'etc', type: 'dir' },
    { path: 'etc/hello.txt', content: 'hello\n' },
  ]);
  return buildImage({ layers: [layer], config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] }, ...spec });
}

/**
 * The image with its manifest JSON changed by `mutate` (for defects buildImage cannot express);
 * `text` may rewrite the serialized bytes (duplicate keys).
 */
export function withManifest(
  image: BuiltImage, mutate: (m: Record<string, unknown>) => void, text: (json: string) => string = (s) => s,
): { descriptor: Descriptor; blobs: Blob[] } {
  const manifest = structuredClone(image.manifest) as unknown as Record<string, unknown>;
  mutate(manifest);
  const bytes = Buffer.from(text(JSON.stringify(manifest)));
  const b = blob(bytes, image.descriptor.mediaType, image.descriptor.platform ? { platform: image.descriptor.platform } : {});
  return { descriptor: b.descriptor, blobs: [b, image.configBlob, ...image.layers] };
}

const BLOCK = 512;

/** Recomputes a tar header's checksum after its bytes were changed. */
export function sealHeader(block: Buffer): Buffer {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block.subarray(0, BLOCK)) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

/** `tar` (ustar, from makeTar) with the name field of entry `n` set to raw bytes, such as names that are not UTF-8. */
export function renameTarEntry(tar: Buffer, n: number, name: Buffer): Buffer {
  const out = Buffer.from(tar);
  let at = 0;
  for (let i = 0; i < n; i++) at += BLOCK + Math.ceil(parseInt(out.toString('latin1', at + 124, at + 135), 8) / BLOCK) * BLOCK;
  const header = out.subarray(at, at + BLOCK);
  header.fill(0, 0, 100);
  name.copy(header, 0);
  sealHeader(header);
  return out;
}

/**
 * An old-GNU sparse entry ('S') whose map of `segments` data runs overflows the header's 4 slots into
 * extension blocks (21 slots each), followed by a plain file `after` and the end marker.
 */
export function gnuSparseTar(name: string, segments: number, after = 'after.txt'): Buffer {
  const runs = Array.from({ length: segments }, (_, i) => ({ offset: i * 65536, size: 512 }));
  const field = (block: Buffer, value: number, start: number, width: number) => block.write(`${value.toString(8).padStart(width - 1, '0')}\0`, start, width, 'latin1');
  const header = Buffer.alloc(BLOCK);
  header.write(name, 0, 100, 'utf8');
  field(header, 0o644, 100, 8);
  field(header, 0, 108, 8);
  field(header, 0, 116, 8);
  field(header, runs.length * 512, 124, 12); // the data stored, not the realsize
  field(header, 0, 136, 12);
  header.write('S', 156, 'latin1');
  header.write('ustar  \0', 257, 'latin1');
  const slot = (block: Buffer, at: number, run: { offset: number; size: number }) => {
    field(block, run.offset, at, 12);
    field(block, run.size, at + 12, 12);
  };
  runs.slice(0, 4).forEach((run, i) => slot(header, 386 + i * 24, run));
  header[482] = runs.length > 4 ? 1 : 0;
  field(header, runs.at(-1)!.offset + 512, 483, 12);
  const extensions: Buffer[] = [];
  for (let i = 4; i < runs.length; i += 21) {
    const block = Buffer.alloc(BLOCK);
    runs.slice(i, i + 21).forEach((run, j) => slot(block, j * 24, run));
    block[504] = i + 21 < runs.length ? 1 : 0;
    extensions.push(block);
  }
  const data = Buffer.alloc(runs.length * 512, 'd');
  return Buffer.concat([sealHeader(header), ...extensions, data, makeTar([{ path: after, content: 'x' }])]);
}

export interface SaveEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

/**
 * What Docker 25+ (containerd image store) saves: a full OCI layout whose index.json lists the image,
 * plus a manifest.json naming the same blobs; `edit` changes the manifest.json entries.
 */
export function dockerSave25WithIndex(image: BuiltImage, repoTag: string, edit: (entries: SaveEntry[]) => void = () => undefined): Map<string, Buffer> {
  const descriptor = { ...tagged(image.descriptor, repoTag.slice(repoTag.lastIndexOf(':') + 1)) };
  descriptor.annotations = { ...descriptor.annotations, [CONTAINERD_IMAGE_NAME]: repoTag };
  const files = layoutFiles({ manifests: [descriptor], blobs: image.blobs });
  const entries: SaveEntry[] = [{ Config: blobPath(image.configBlob.descriptor.digest), RepoTags: [repoTag], Layers: image.layers.map((l) => blobPath(l.descriptor.digest)) }];
  edit(entries);
  files.set('manifest.json', Buffer.from(JSON.stringify(entries)));
  return files;
}

/** A tarball of `files` (path → bytes) under a fresh temp dir. */
export async function tarFile(t: TestContext, files: Map<string, Buffer>, name = 'image.tar'): Promise<string> {
  const path = join(await tempDir(t), name);
  await writeFile(path, await tarBuffer(treeEntries(files)));
  return path;
}

/** gzip members of zeros, concatenated (gunzip reads them as one stream): `gib` GiB from a few MB. */
export function gzipBomb(gib: number): Buffer {
  const member = gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
  return Buffer.concat(Array.from({ length: gib * 16 }, () => member));
}

/** A zstd frame of RLE blocks (4 bytes for each 128 KiB of zeros): `gib` GiB from `gib` × 32 KiB. */
export function zstdRleBomb(gib: number): Buffer {
  const BLOCK_BYTES = 128 * 1024;
  const blocks = gib * 8192;
  const out = Buffer.alloc(6 + blocks * 4);
  out.writeUInt32LE(0xfd2fb528, 0);
  out[4] = 0x00; // no content size, not single-segment, no checksum, no dictionary
  out[5] = 0x38; // window 2^(10+7) = 128 KiB
  for (let i = 0; i < blocks; i++) {
    const header = (BLOCK_BYTES << 3) | (1 << 1) | (i === blocks - 1 ? 1 : 0); // RLE block
    out.writeUIntLE(header, 6 + i * 4, 3);
    out[6 + i * 4 + 3] = 0;
  }
  return out;
}
