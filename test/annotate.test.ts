import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { blobPath, digestOf } from '../src/model/digest.js';
import type { AnnotateOptions, AnnotateResult } from '../src/ops/annotate.js';
import { loadImage } from '../src/ops/image.js';
import { imagesOf, resolveTarget } from '../src/ops/resolve.js';
import { openStore } from '../src/store/open.js';
import { hexOf, sampleImages, tagged, writeLayout } from '../testdata/builder.js';
import { assertCleanError, describeRun, runOcikit } from './helpers/ocikit-process.js';
import { referrerLayout, artifact, SIGNATURE_TYPE } from './helpers/referrer-layout.js';
import { annotateRef } from './helpers/annotate-run.js';
import { scratchDir, workspace } from './helpers/scratch.js';
import { diffTrees, snapshotTree, type TreeSnapshot } from './helpers/tree-snapshot.js';

const s = sampleImages();
const KEY = 'com.example.team';

/** The library entry point in place on a layout directory, as the CLI drives it. */
function annotateDir(dir: string, options: AnnotateOptions & { ref?: string } = {}): Promise<AnnotateResult> {
  return annotateRef(`oci:${dir}${options.ref ? `:${options.ref}` : ''}`, options);
}

async function readJson<T = Json>(dir: string, digestOrIndex: string): Promise<T> {
  const file = digestOrIndex === 'index.json' ? join(dir, 'index.json') : join(dir, blobPath(digestOrIndex));
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

interface Json {
  mediaType?: string;
  manifests?: Array<{ digest: string; mediaType: string; size: number; annotations?: Record<string, string>; platform?: { architecture: string } }>;
  config?: { mediaType: string; digest: string };
  layers?: Array<{ mediaType: string; digest: string }>;
  subject?: { digest: string };
  annotations?: Record<string, string>;
}

/** Files that differ: only index.json may change; everything else is unchanged or newly added. */
function changedFiles(before: TreeSnapshot, after: TreeSnapshot): { changed: string[]; added: string[]; removed: string[] } {
  const diffs = diffTrees(before, after);
  return {
    changed: diffs.filter((d) => d.startsWith('changed ')).map((d) => d.slice(8)),
    added: diffs.filter((d) => d.startsWith('added ')).map((d) => d.slice(6)),
    removed: diffs.filter((d) => d.startsWith('removed ')).map((d) => d.slice(8)),
  };
}

test('set on an image manifest: a new manifest, index.json re-pointed, every other byte kept', async (t) => {
  const at = await workspace(t, 'annotate', 'app');
  const dir = at('app');
  const before = await snapshotTree(dir);
  const oldRaw = await readFile(join(dir, blobPath(s.app.descriptor.digest)));
  const result = await annotateDir(dir, { set: { [KEY]: 'core', 'org.opencontainers.image.version': '1.2.3' } });

  assert.equal(result.changes.length, 1);
  assert.equal(result.changes[0]!.role, 'manifest');
  assert.notEqual(result.newTarget, s.app.descriptor.digest);
  const files = changedFiles(before, await snapshotTree(dir));
  assert.deepEqual(files.changed, ['index.json'], 'only index.json is rewritten in place');
  assert.deepEqual(files.removed, [], 'the old manifest stays until gc');
  assert.deepEqual(files.added, [blobPath(result.newTarget)], 'the one new file is the new manifest');

  const index = await readJson(dir, 'index.json');
  const entry = index.manifests![0]!;
  assert.equal(entry.digest, result.newTarget);
  assert.deepEqual(entry.annotations, { 'org.opencontainers.image.ref.name': 'latest' }, 'the entry keeps its tag and no more');
  assert.deepEqual(entry.platform, s.app.descriptor.platform);
  const newRaw = await readFile(join(dir, blobPath(result.newTarget)));
  assert.equal(entry.size, newRaw.length);
  const manifest = JSON.parse(newRaw.toString()) as Json;
  assert.deepEqual(manifest.annotations, { [KEY]: 'core', 'org.opencontainers.image.version': '1.2.3' });
  assert.deepEqual(Object.keys(manifest), [...Object.keys(JSON.parse(oldRaw.toString()) as object), 'annotations'], 'key order kept');
  assert.equal(newRaw.includes('\n'), oldRaw.includes('\n'), 'compact stays compact');
});

test('metadata only: annotating in place never reads a layer (it works with every layer blob removed)', async (t) => {
  const at = await workspace(t, 'annotate', 'app', 'base');
  const { rm } = await import('node:fs/promises');
  for (const layer of s.app.layers) await rm(join(at('app'), blobPath(layer.descriptor.digest)));
  const result = await annotateDir(at('app'), {
    set: { [KEY]: 'x' }, fromBuildinfo: true, fromBuildpacks: true, labelSchema: true, fromLabels: ['org.opencontainers.'],
    base: { store: await openStore(at('base')), text: 'base', name: 'example.com/base' },
  });
  assert.equal((await readJson(at('app'), result.newTarget)).annotations?.[KEY], 'x');
});

test('unset removes keys, and the annotations field when it empties; values already in place write nothing', async (t) => {
  const at = await workspace(t, 'annotate', 'app');
  const dir = at('app');
  await annotateDir(dir, { set: { [KEY]: 'core', 'com.example.other': 'x' } });
  const afterSet = await snapshotTree(dir);
  const again = await annotateDir(dir, { set: { [KEY]: 'core' } });
  assert.equal(again.changed, false);
  assert.deepEqual(diffTrees(afterSet, await snapshotTree(dir)), [], 'nothing to change: nothing written');

  const one = await annotateDir(dir, { unset: [KEY] });
  assert.deepEqual((await readJson(dir, one.newTarget)).annotations, { 'com.example.other': 'x' });
  const none = await annotateDir(dir, { unset: ['com.example.other', 'com.example.absent'] });
  const manifest = await readJson(dir, none.newTarget);
  assert.equal('annotations' in manifest, false);
  assert.equal(none.newTarget, s.app.descriptor.digest, 'removing what was added gives back the original bytes');
});

test('changed documents keep key order, indentation and unknown fields', async (t) => {
  const at = await workspace(t, 'annotate', 'app');
  const dir = at('app');
  const { schemaVersion, ...rest } = s.app.manifest;
  const value = { schemaVersion, 'io.example.unknown': { kept: [1, 2] }, ...rest, annotations: { 'z.example.last': 'z', [KEY]: 'old' } };
  const raw = Buffer.from(`${JSON.stringify(value, null, 4)}\n`);
  await writeFile(join(dir, blobPath(digestOf(raw))), raw);
  await writeLayout(dir, { manifests: [tagged({ ...s.app.descriptor, digest: digestOf(raw), size: raw.length }, 'latest')], blobs: [] });

  const result = await annotateDir(dir, { set: { [KEY]: 'new', 'a.example.first': 'a' } });
  const text = await readFile(join(dir, blobPath(result.newTarget)), 'utf8');
  assert.ok(text.startsWith('{\n    "schemaVersion"') && text.endsWith('}\n'), 'indentation and trailing newline kept');
  const parsed = JSON.parse(text) as Record<string, unknown>;
  assert.deepEqual(Object.keys(parsed), Object.keys(value));
  assert.deepEqual(parsed['io.example.unknown'], { kept: [1, 2] });
  assert.deepEqual(Object.keys(parsed.annotations as object), ['z.example.last', KEY, 'a.example.first'], 'existing keys stay in place, new ones go last');
});

test('multi-platform: --on manifest changes both platform manifests and the index; each platform still resolves', async (t) => {
  const at = await workspace(t, 'annotate', 'multi');
  const dir = at('multi');
  const before = await snapshotTree(dir);
  const result = await annotateDir(dir, { set: { [KEY]: 'core' } });
  assert.deepEqual(result.changes.map((c) => `${c.role} ${c.platform}`).sort(), ['manifest linux/amd64', 'manifest linux/arm64/v8']);
  const rewritten = new Map(result.rewritten.map((r) => [r.from, r.to]));
  assert.ok(rewritten.has(s.multi.index.descriptor.digest), 'the index holding them is rewritten once');
  assert.equal(result.rewritten.length, 3);
  const files = changedFiles(before, await snapshotTree(dir));
  assert.deepEqual(files.changed, ['index.json']);
  assert.equal(files.added.length, 3);

  const store = await openStore(dir);
  const target = await resolveTarget(store, { tag: 'multi' });
  assert.equal(target.descriptor.digest, rewritten.get(s.multi.index.descriptor.digest));
  for (const platform of [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }]) {
    const [image] = await imagesOf(store, target, platform);
    const loaded = await loadImage(store, image!.descriptor);
    assert.equal(loaded.manifest.value.annotations?.[KEY], 'core', `${platform.architecture} carries the annotation`);
    assert.ok(loaded.manifest.value.layers.length === 2);
  }
  const index = await readJson(dir, target.descriptor.digest);
  const attestation = index.manifests!.find((m) => m.annotations?.['vnd.docker.reference.type']);
  assert.equal(attestation!.digest, s.multi.attestation.descriptor.digest, 'the attestation manifest itself is untouched');
  assert.equal(index.annotations, undefined, '--on manifest leaves the index document without annotations');
});

test('--platform restricts the change to one platform; the other manifest descriptor is byte-identical', async (t) => {
  const at = await workspace(t, 'annotate', 'multi');
  const dir = at('multi');
  const result = await annotateDir(dir, { set: { [KEY]: 'arm' }, platform: { os: 'linux', architecture: 'arm64' } });
  assert.deepEqual(result.changes.map((c) => c.platform), ['linux/arm64/v8']);
  const index = await readJson(dir, result.newTarget);
  const old = s.multi.index.index.manifests;
  assert.deepEqual(index.manifests![0], old[0], 'amd64 entry unchanged');
  assert.notEqual(index.manifests![1]!.digest, old[1]!.digest);
  assert.deepEqual(index.manifests![1]!.platform, old[1]!.platform, 'platform kept on the rewritten entry');
});

test('--platform takes several platforms, refuses one the index lacks, and with --on descriptor marks their entries', async (t) => {
  const at = await workspace(t, 'annotate', 'multi');
  const dir = at('multi');
  const both = await runOcikit(['annotate', `oci:${dir}`, '--platform', 'linux/amd64,linux/arm64', '--set', `${KEY}=x`, '--json']);
  assert.equal(both.code, 0, describeRun(both));
  assert.equal((JSON.parse(both.stdout) as AnnotateResult).changes.length, 2);
  assertCleanError(await runOcikit(['annotate', `oci:${dir}`, '--platform', 'linux/s390x', '--set', `${KEY}=x`]), [2], /no linux\/s390x image/);

  const entries = await annotateDir(dir, { on: 'descriptor', platform: [{ os: 'linux', architecture: 'arm64' }], set: { [KEY]: 'entry' } });
  assert.deepEqual(entries.changes.map((c) => [c.role, c.platform]), [['descriptor', 'linux/arm64/v8']]);
  const index = await readJson(dir, entries.newTarget);
  assert.equal(index.manifests![1]!.annotations?.[KEY], 'entry');
  assert.equal(index.manifests![0]!.annotations?.[KEY], undefined);
  assert.equal(index.manifests![1]!.digest, entries.changes[0]!.digest, 'the manifest itself is unchanged: only its entry');
});

test('--on index annotates the index document only; --on descriptor only the index.json entry', async (t) => {
  const at = await workspace(t, 'annotate', 'multi', 'app');
  const multi = at('multi');
  const before = await snapshotTree(multi);
  const onIndex = await annotateDir(multi, { on: 'index', set: { [KEY]: 'idx' } });
  assert.deepEqual(onIndex.changes.map((c) => c.role), ['index']);
  assert.equal(onIndex.rewritten.length, 1);
  assert.deepEqual((await readJson(multi, onIndex.newTarget)).annotations, { [KEY]: 'idx' });
  assert.deepEqual(changedFiles(before, await snapshotTree(multi)).added, [blobPath(onIndex.newTarget)], 'platform manifests untouched');

  const app = at('app');
  const appBefore = await snapshotTree(app);
  const onDescriptor = await annotateDir(app, { on: 'descriptor', set: { [KEY]: 'entry' } });
  assert.deepEqual(onDescriptor.changes.map((c) => [c.role, c.holder]), [['descriptor', 'index.json $.manifests[0]']]);
  assert.deepEqual(diffTrees(appBefore, await snapshotTree(app)), ['changed index.json'], 'no new blob: only the entry changed');
  const entry = (await readJson(app, 'index.json')).manifests![0]!;
  assert.equal(entry.digest, s.app.descriptor.digest);
  assert.deepEqual(entry.annotations, { 'org.opencontainers.image.ref.name': 'latest', [KEY]: 'entry' });
});

test('--on index refuses an image manifest', async (t) => {
  const at = await workspace(t, 'annotate', 'app');
  await assert.rejects(annotateDir(at('app'), { on: 'index', set: { [KEY]: 'x' } }), /--on index: .* is an image manifest/);
});

test('--on all on a nested index: image, inner and outer index, and the entry; parents rewritten bottom-up once', async (t) => {
  const at = await workspace(t, 'annotate', 'nested');
  const dir = at('nested');
  const result = await annotateDir(dir, { on: 'all', set: { [KEY]: 'all' } });
  assert.deepEqual(result.changes.map((c) => c.role).sort(), ['descriptor', 'index', 'index', 'manifest']);
  const outer = await readJson(dir, result.newTarget);
  const inner = await readJson(dir, outer.manifests![0]!.digest);
  const image = await readJson(dir, inner.manifests![0]!.digest);
  for (const doc of [outer, inner, image]) assert.equal(doc.annotations?.[KEY], 'all');
  assert.equal(inner.manifests![0]!.digest, result.rewritten.find((r) => r.from === s.nested.image.descriptor.digest)!.to);
  assert.equal((await readJson(dir, 'index.json')).manifests![0]!.annotations?.[KEY], 'all');
});

test('a nested target named by digest: --on descriptor annotates its entry in the index holding it', async (t) => {
  const at = await workspace(t, 'annotate', 'nested');
  const dir = at('nested');
  const result = await annotateDir(dir, { ref: `@${s.nested.image.descriptor.digest}`, on: 'descriptor', set: { [KEY]: 'child' } });
  assert.equal(result.changes.length, 1);
  assert.match(result.changes[0]!.holder!, new RegExp(`^${s.nested.inner.descriptor.digest} \\$\\.manifests\\[0\\]$`));
  const outer = await readJson(dir, (await readJson(dir, 'index.json')).manifests![0]!.digest);
  const inner = await readJson(dir, outer.manifests![0]!.digest);
  assert.equal(inner.manifests![0]!.digest, s.nested.image.descriptor.digest, 'the image itself is unchanged');
  assert.equal(inner.manifests![0]!.annotations?.[KEY], 'child');
});

test('Docker media types are refused, naming --oci-media-types, and converted in the same run with it', async (t) => {
  const at = await workspace(t, 'annotate', 'docker-types');
  const dir = at('docker-types');
  const before = await snapshotTree(dir);
  const refused = await runOcikit(['annotate', `oci:${dir}`, '--set', `${KEY}=x`]);
  assertCleanError(refused, [2], /Docker manifest .*--oci-media-types/);
  assert.deepEqual(diffTrees(before, await snapshotTree(dir)), [], 'refused: nothing written');

  const r = await runOcikit(['annotate', `oci:${dir}`, '--set', `${KEY}=x`, '--oci-media-types', '--json']);
  assert.equal(r.code, 0, describeRun(r));
  const result = JSON.parse(r.stdout) as AnnotateResult;
  assert.equal(result.changes[0]!.newMediaType, 'application/vnd.oci.image.manifest.v1+json');
  const manifest = await readJson(dir, result.newTarget);
  assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(manifest.config!.mediaType, 'application/vnd.oci.image.config.v1+json');
  assert.deepEqual(manifest.layers!.map((l) => l.mediaType), ['application/vnd.oci.image.layer.v1.tar+gzip']);
  assert.deepEqual(manifest.layers!.map((l) => l.digest), s.docker.layers.map((l) => l.descriptor.digest), 'layer blobs are the same');
  assert.equal(manifest.annotations?.[KEY], 'x');
  assert.equal((await readJson(dir, 'index.json')).manifests![0]!.mediaType, 'application/vnd.oci.image.manifest.v1+json');
});

test('--dry-run prints a diff of each changed document and writes nothing', async (t) => {
  const at = await workspace(t, 'annotate', 'multi');
  const dir = at('multi');
  const before = await snapshotTree(dir);
  const r = await runOcikit(['annotate', `oci:${dir}`, '--on', 'all', '--set', `${KEY}=dry`, '--dry-run']);
  assert.equal(r.code, 0, describeRun(r));
  assert.deepEqual(diffTrees(before, await snapshotTree(dir)), [], 'a dry run writes nothing');
  assert.match(r.stdout, /^--- a\/blobs\/sha256\/[a-f0-9]{64} \(manifest linux\/amd64\)$/m);
  assert.match(r.stdout, /^--- a\/index\.json$/m);
  assert.equal(r.stdout.match(/^\+\s+"com\.example\.team": "dry"/gm)?.length, 4, 'two manifests, the index and the index.json entry, each shows the new key');
  assert.match(r.stdout, /dry run: nothing was written/);
});

test('referrers: reported dangling by default, re-pointed with --move-referrers (subject field)', async (t) => {
  const at = await workspace(t, 'annotate', 'artifact');
  const dir = at('artifact');
  const signature = s.artifact.artifact.descriptor.digest;
  const stay = await annotateDir(dir, { dryRun: true, ref: 'latest', set: { [KEY]: 'x' } });
  assert.deepEqual(stay.danglingReferrers.map((r) => [r.referrer, r.subject, r.convention]), [[signature, s.artifact.image.descriptor.digest, 'subject']]);

  const moved = await annotateDir(dir, { ref: 'latest', set: { [KEY]: 'x' }, moveReferrers: true });
  assert.deepEqual(moved.danglingReferrers, []);
  assert.equal(moved.referrers[0]!.moved, true);
  assert.match(moved.warnings.join('\n'), /signatures made over the old digests no longer verify/);
  const index = await readJson(dir, 'index.json');
  const newSignature = moved.rewritten.find((r) => r.from === signature)!.to;
  assert.equal(index.manifests![1]!.digest, newSignature);
  assert.deepEqual(index.manifests![1]!.annotations, { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' });
  assert.equal((await readJson(dir, newSignature)).subject!.digest, moved.newTarget);
});

test('referrers in every index.json convention: fallback tag, cosign tag, containerd annotation', async (t) => {
  const { dir: root, cleanup } = await scratchDir('annotate-ref');
  t.after(cleanup);
  const layout = referrerLayout();
  const cosign = artifact(undefined, SIGNATURE_TYPE, '{"cosign":"style"}');
  const cosignTag = `sha256-${hexOf(layout.image.descriptor.digest)}.sig`;
  const manifests = [...layout.manifests, tagged(cosign.descriptor, cosignTag)];
  for (const name of ['stay', 'move']) await writeLayout(join(root, name), { manifests, blobs: [...layout.blobs, ...cosign.blobs] });

  const stay = await annotateDir(join(root, 'stay'), { ref: 'latest', set: { [KEY]: 'x' } });
  const conventions = (r: AnnotateResult) => r.referrers.map((l) => l.convention).sort();
  assert.deepEqual(conventions(stay), ['cosign-tag', 'fallback-tag', 'subject', 'subject']);
  assert.equal(stay.danglingReferrers.length, 4);
  const stayIndex = await readJson(join(root, 'stay'), 'index.json');
  assert.ok(stayIndex.manifests!.some((m) => m.annotations?.['org.opencontainers.image.ref.name'] === cosignTag), 'tags left as they were');

  const dir = join(root, 'move');
  const moved = await annotateDir(dir, { ref: 'latest', set: { [KEY]: 'x' }, moveReferrers: true });
  assert.deepEqual(moved.danglingReferrers, []);
  assert.deepEqual(conventions(moved), ['containerd-annotation', 'cosign-tag', 'fallback-tag', 'subject', 'subject', 'subject'], 'the SBOM moved, so the signature on it follows');
  const newHex = hexOf(moved.newTarget);
  const index = await readJson(dir, 'index.json');
  const tags = index.manifests!.map((m) => m.annotations?.['org.opencontainers.image.ref.name']);
  assert.ok(tags.includes(`sha256-${newHex}`) && tags.includes(`sha256-${newHex}.sig`), `fallback and cosign tags renamed: ${tags.join(', ')}`);
  const newSbom = moved.rewritten.find((r) => r.from === layout.sbom.descriptor.digest)!.to;
  const sbomSig = index.manifests!.find((m) => m.digest !== layout.sbomSignature.descriptor.digest && m.annotations?.['io.containerd.manifest.subject']);
  assert.equal(sbomSig!.annotations!['io.containerd.manifest.subject'], newSbom);
  const other = index.manifests!.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'other')!;
  assert.equal(other.digest, layout.other.descriptor.digest, 'an unrelated image and its referrer are untouched');
});

test('BuildKit attestations in the index follow their image only with --move-referrers', async (t) => {
  const at = await workspace(t, 'annotate', 'multi');
  const dir = at('multi');
  const amd64 = s.multi.amd64.descriptor.digest;
  const stay = await annotateDir(dir, { dryRun: true, set: { [KEY]: 'x' }, platform: { os: 'linux', architecture: 'amd64' } });
  assert.deepEqual(stay.danglingReferrers.map((r) => [r.convention, r.subject]), [['attestation', amd64]]);
  const moved = await annotateDir(dir, { set: { [KEY]: 'x' }, platform: { os: 'linux', architecture: 'amd64' }, moveReferrers: true });
  const index = await readJson(dir, moved.newTarget);
  const newAmd64 = moved.rewritten.find((r) => r.from === amd64)!.to;
  assert.equal(index.manifests![2]!.annotations!['vnd.docker.reference.digest'], newAmd64);
  assert.equal(index.manifests![2]!.digest, s.multi.attestation.descriptor.digest);
});

test('value checks: known keys\' formats are errors unless --force; key style is a warning', async (t) => {
  const at = await workspace(t, 'annotate', 'app');
  const dir = at('app');
  const before = await snapshotTree(dir);
  for (const [key, value, mention] of [
    ['org.opencontainers.image.created', 'yesterday', /RFC 3339/],
    ['org.opencontainers.image.source', 'not a url', /URL/],
    ['org.opencontainers.image.base.digest', 'sha256:abc', /digest/],
    ['org.opencontainers.image.licenses', 'MIT License', /SPDX/],
    ['org.opencontainers.image.ref.name', 'bad name!', /ref\.name grammar/],
  ] as const) {
    const r = await runOcikit(['annotate', `oci:${dir}`, '--set', `${key}=${value}`]);
    assertCleanError(r, [2], mention);
    assert.match(r.stderr, /--force/);
  }
  assert.deepEqual(diffTrees(before, await snapshotTree(dir)), []);

  const forced = await runOcikit(['annotate', `oci:${dir}`, '--set', 'org.opencontainers.image.created=yesterday', '--set', 'maintainer=me', '--force']);
  assert.equal(forced.code, 0, describeRun(forced));
  assert.match(forced.stderr, /warning: .*created="yesterday" is not an RFC 3339/);
  assert.match(forced.stderr, /warning: maintainer: annotation keys should use reverse domain notation/);
  const ok = await runOcikit(['annotate', `oci:${dir}`, '--set', 'org.opencontainers.image.created=2024-02-29T12:00:00+01:00', '--set', 'org.opencontainers.image.licenses=(MIT OR Apache-2.0) AND BSD-3-Clause']);
  assert.equal(ok.code, 0, describeRun(ok));
  assert.equal(ok.stderr, '');
});

test('--set-file reads a value from a file or stdin; -o writes elsewhere and leaves the source alone', async (t) => {
  const at = await workspace(t, 'annotate', 'app');
  const dir = at('app');
  const { dir: out, cleanup } = await scratchDir('annotate-out');
  t.after(cleanup);
  const file = join(out, 'description.txt');
  await writeFile(file, 'A long description\nover two lines\n');
  const before = await snapshotTree(dir);
  const dest = join(out, 'dest');
  const r = await runOcikit(['annotate', `oci:${dir}`, '--set-file', `org.opencontainers.image.description=${file}`, '-o', `oci:${dest}`, '--json']);
  assert.equal(r.code, 0, describeRun(r));
  assert.deepEqual(diffTrees(before, await snapshotTree(dir)), [], 'the source is untouched');
  const result = JSON.parse(r.stdout) as AnnotateResult;
  assert.equal((await readJson(dest, result.newTarget)).annotations!['org.opencontainers.image.description'], 'A long description\nover two lines');
  assert.equal(result.copied.blobs, 4, 'config and three layers carried over');
  for (const blob of [s.app.configBlob, ...s.app.layers]) {
    assert.deepEqual(await readFile(join(dest, blobPath(blob.descriptor.digest))), blob.bytes);
  }

  const { spawnSync } = await import('node:child_process');
  const { OCIKIT_BIN } = await import('./helpers/ocikit-process.js');
  const viaStdin = spawnSync(process.execPath, [OCIKIT_BIN, 'annotate', `oci:${dest}`, '--set-file', `${KEY}=@-`, '--json'], { input: 'from stdin\n', encoding: 'utf8' });
  assert.equal(viaStdin.status, 0, viaStdin.stderr);
  const second = JSON.parse(viaStdin.stdout) as AnnotateResult;
  assert.equal((await readJson(dest, second.newTarget)).annotations![KEY], 'from stdin');
});

test('-o into an existing layout keeps its other entries', async (t) => {
  const at = await workspace(t, 'annotate', 'app', 'base');
  const r = await runOcikit(['annotate', `oci:${at('app')}`, '--set', `${KEY}=x`, '-o', `oci:${at('base')}`]);
  assert.equal(r.code, 0, describeRun(r));
  const tags = (await readJson(at('base'), 'index.json')).manifests!.map((m) => m.annotations?.['org.opencontainers.image.ref.name']);
  assert.deepEqual(tags, ['1.0', 'latest']);
});

test('the target must exist and unset/set may not clash', async (t) => {
  const at = await workspace(t, 'annotate', 'app');
  assertCleanError(await runOcikit(['annotate', `oci:${at('app')}:nope`, '--set', `${KEY}=x`]), [2], /no image tagged nope/);
  assertCleanError(await runOcikit(['annotate', `oci:${at('app')}`, '--set', `${KEY}=x`, '--unset', KEY]), [2], /both set and unset/);
  assertCleanError(await runOcikit(['annotate', `oci:${at('app')}`, '--set', 'novalue']), [2], /expected KEY=VALUE/);
});

test('annotating by tag moves that tag only: other tags of the same image keep the old manifest', async (t) => {
  const at = await workspace(t, 'annotate-tags');
  const dir = at('one');
  await writeLayout(dir, { manifests: [tagged(s.app.descriptor, 'latest'), tagged(s.app.descriptor, 'pinned')], blobs: s.app.blobs });
  const result = await annotateDir(dir, { ref: 'latest', set: { [KEY]: 'v' } });
  const byTag = Object.fromEntries((await readJson(dir, 'index.json')).manifests!.map((d) => [d.annotations!['org.opencontainers.image.ref.name'], d.digest]));
  assert.deepEqual(byTag, { latest: result.newTarget, pinned: s.app.descriptor.digest });

  const untagged = at('all');
  await writeLayout(untagged, { manifests: [tagged(s.app.descriptor, 'latest'), tagged(s.app.descriptor, 'pinned')], blobs: s.app.blobs });
  const all = await annotateDir(untagged, { set: { [KEY]: 'v' } });
  const digests = (await readJson(untagged, 'index.json')).manifests!.map((d) => d.digest);
  assert.deepEqual(digests, [all.newTarget, all.newTarget], 'with no tag named, every entry of the one image moves');
});
