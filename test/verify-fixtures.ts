/** Helpers for the verify tests: broken variants of the sample images, each built in a temp dir. */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { verifyRef, type VerifyOptions, type VerifyReport } from '../src/ops/verify.js';
import type { Descriptor } from '../src/model/descriptor.js';
import {
  blob, buildImage, makeLayer, tagged, writeLayout, type Blob, type BuiltImage, type ImageSpec, type LayoutSpec,
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
