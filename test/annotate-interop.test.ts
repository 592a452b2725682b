import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { AnnotateResult } from '../src/ops/annotate.js';
import { openStore } from '../src/store/open.js';
import { sampleImages } from '../testdata/builder.js';
import { describeRun, hasCommand, runOcikit, type RunResult } from './helpers/ocikit-process.js';
import { archiveFixture, copyLayout, scratchDir } from './helpers/scratch.js';

const s = sampleImages();
const KEY = 'com.example.team';

function needs(t: TestContext, ...tools: string[]): boolean {
  const missing = tools.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
  if (missing.length) t.skip(`${missing.join(', ')} not installed`);
  return missing.length === 0;
}

function run(tool: string, args: string[]): string {
  const r = spawnSync(tool, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${tool} ${args.join(' ')} → ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function scratch(t: TestContext): Promise<string> {
  const { dir, cleanup } = await scratchDir('annotate-interop');
  t.after(cleanup);
  return dir;
}

async function annotateOk(args: string[]): Promise<AnnotateResult> {
  const r: RunResult = await runOcikit(['annotate', ...args, '--json']);
  assert.equal(r.code, 0, describeRun(r));
  return JSON.parse(r.stdout) as AnnotateResult;
}

function skopeoRaw(ref: string): { annotations?: Record<string, string>; mediaType?: string } {
  return JSON.parse(run('skopeo', ['inspect', '--raw', ref])) as { annotations?: Record<string, string> };
}

/** `ocikit verify` lands separately: when it is there, an annotated layout must pass it. */
async function verifyIfAvailable(dir: string): Promise<void> {
  if (!hasCommand('verify')) return;
  const r = await runOcikit(['verify', '--deep', dir]);
  assert.equal(r.code, 0, describeRun(r));
}

test('after annotate, skopeo shows the annotations, oci-image-tool validates, umoci stats', async (t) => {
  if (!needs(t, 'skopeo', 'umoci', 'oci-image-tool')) return;
  const dir = await copyLayout('app', join(await scratch(t), 'app'));
  await annotateOk([`oci:${dir}`, '--set', `${KEY}=core`, '--created', '2024-03-01T00:00:00Z']);
  assert.deepEqual(skopeoRaw(`oci:${dir}:latest`).annotations, { [KEY]: 'core', 'org.opencontainers.image.created': '2024-03-01T00:00:00Z' });
  assert.match(run('oci-image-tool', ['validate', '--type', 'image', dir]), /OK|Validation succeeded/);
  assert.match(run('umoci', ['stat', '--image', `${dir}:latest`]), /LAYER/);
  await verifyIfAvailable(dir);
});

test('multi-platform: skopeo still picks each platform, and each carries the annotation', async (t) => {
  if (!needs(t, 'skopeo')) return;
  const root = await scratch(t);
  const dir = await copyLayout('multi', join(root, 'multi'));
  await annotateOk([`oci:${dir}`, '--on', 'all', '--set', `${KEY}=both`]);
  assert.equal(skopeoRaw(`oci:${dir}:multi`).annotations?.[KEY], 'both', 'the index');
  for (const [arch, variant] of [['amd64', undefined], ['arm64', 'v8']] as const) {
    const out = join(root, `copy-${arch}`);
    run('skopeo', ['copy', '-q', '--override-os', 'linux', '--override-arch', arch, ...(variant ? ['--override-variant', variant] : []), `oci:${dir}:multi`, `oci:${out}:x`]);
    assert.equal(skopeoRaw(`oci:${out}:x`).annotations?.[KEY], 'both', arch);
  }
  await verifyIfAvailable(dir);
});

test('a layout written by skopeo copy', async (t) => {
  if (!needs(t, 'skopeo', 'oci-image-tool')) return;
  const dir = join(await scratch(t), 'skopeo');
  run('skopeo', ['copy', '-q', `oci-archive:${archiveFixture('app.oci.tar')}`, `oci:${dir}:app`]);
  await annotateOk([`oci:${dir}:app`, '--from-buildinfo']);
  assert.deepEqual(skopeoRaw(`oci:${dir}:app`).annotations, {
    'org.opencontainers.image.base.name': 'docker.io/example/base:1.0',
    'org.opencontainers.image.base.digest': s.base.descriptor.digest,
  });
  run('oci-image-tool', ['validate', '--type', 'image', dir]);
  await verifyIfAvailable(dir);
});

test('a layout written by umoci', async (t) => {
  if (!needs(t, 'umoci', 'skopeo')) return;
  const dir = join(await scratch(t), 'umoci');
  run('umoci', ['init', '--layout', dir]);
  run('umoci', ['new', '--image', `${dir}:t`]);
  run('umoci', ['config', '--image', `${dir}:t`, '--config.label', 'org.opencontainers.image.source=https://example.com/umoci']);
  await annotateOk([`oci:${dir}:t`, '--from-labels', 'org.opencontainers.']);
  assert.equal(skopeoRaw(`oci:${dir}:t`).annotations?.['org.opencontainers.image.source'], 'https://example.com/umoci');
  assert.match(run('umoci', ['stat', '--image', `${dir}:t`]), /LAYER/);
  await verifyIfAvailable(dir);
});

test('an oci-archive in place (rewritten atomically) and to a layout with -o', async (t) => {
  if (!needs(t, 'skopeo')) return;
  const root = await scratch(t);
  const tar = join(root, 'app.oci.tar');
  await copyFile(archiveFixture('app.oci.tar'), tar);
  const original = await openStore(tar);
  const oldBlobs = await Promise.all((await original.listBlobs()).map(async (b) => [b.digest, await original.readBlob(b.digest)] as const));
  const result = await annotateOk([tar, '--set', `${KEY}=archive`]);
  assert.equal(skopeoRaw(`oci-archive:${tar}`).annotations?.[KEY], 'archive');
  const rewritten = await openStore(tar);
  for (const [digest, bytes] of oldBlobs) assert.deepEqual(await rewritten.readBlob(digest), bytes, `${digest} kept byte for byte`);
  assert.equal((await rewritten.readIndex()).value.manifests[0]!.digest, result.newTarget);

  const out = join(root, 'out');
  const source = join(root, 'source.oci.tar');
  await copyFile(archiveFixture('app.oci.tar'), source);
  await annotateOk([`oci-archive:${source}`, '--set', `${KEY}=copy`, '-o', `oci:${out}`]);
  assert.equal(skopeoRaw(`oci:${out}:latest`).annotations?.[KEY], 'copy');
  assert.deepEqual(await readFile(source), await readFile(archiveFixture('app.oci.tar')), 'with -o the source tarball is untouched');
  await verifyIfAvailable(out);
});

test('docker-save tarballs: refused without --oci-media-types; converted to a layout with -o, or in place', async (t) => {
  if (!needs(t, 'skopeo', 'oci-image-tool')) return;
  const root = await scratch(t);
  const refused = await runOcikit(['annotate', archiveFixture('app.docker.tar'), '--set', `${KEY}=x`]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /--oci-media-types/);

  const out = join(root, 'from-docker');
  await annotateOk([archiveFixture('app.docker.tar'), '--set', `${KEY}=docker`, '--oci-media-types', '-o', `oci:${out}`]);
  const raw = skopeoRaw(`oci:${out}:example.com/app:latest`);
  assert.equal(raw.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(raw.annotations?.[KEY], 'docker');
  run('oci-image-tool', ['validate', '--type', 'image', out]);
  await verifyIfAvailable(out);

  for (const source of ['fixture', 'skopeo']) {
    const tar = join(root, `${source}.docker.tar`);
    if (source === 'fixture') await copyFile(archiveFixture('app.docker.tar'), tar);
    else run('skopeo', ['copy', '-q', `oci-archive:${archiveFixture('app.oci.tar')}`, `docker-archive:${tar}:example.com/app:v1`]);
    const result = await annotateOk([tar, '--set', `${KEY}=${source}`, '--oci-media-types']);
    assert.match(result.warnings.join('\n'), /manifest\.json .* do not see annotations/);
    run('skopeo', ['inspect', `docker-archive:${tar}`]);
    const store = await openStore(tar);
    const entry = (await store.readIndex()).value.manifests[0]!;
    assert.equal(entry.digest, result.newTarget);
    const manifest = JSON.parse((await store.readBlob(entry.digest)).toString()) as { annotations?: Record<string, string> };
    assert.equal(manifest.annotations?.[KEY], source, `${source}: the tarball's index.json leads to the annotated manifest`);
  }
});
