import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Descriptor } from '../src/model/descriptor.js';
import type { CopyResult } from '../src/ops/copy.js';
import type { ReferrerTreeNode } from '../src/ops/referrers.js';
import { openStore } from '../src/store/open.js';
import { blobFile, buildIndex, corruptBlob, hexOf, tagged, writeLayout } from '../testdata/builder.js';
import { checkLayout } from './helpers/layout-check.js';
import { assertCleanError, describeRun, runOcikit } from './helpers/ocikit-process.js';
import { artifact, imageWithExtension, SBOM_TYPE, SIGNATURE_TYPE, smallImage, writeReferrerLayout, type ReferrerLayout } from './helpers/referrer-layout.js';
import { copyLayout, layoutFixture, scratchDir } from './helpers/scratch.js';
import { assertTreeUnchanged, snapshotTree } from './helpers/tree-snapshot.js';

async function copyJson(...args: string[]): Promise<CopyResult> {
  const r = await runOcikit(['copy', '--json', ...args]);
  assert.equal(r.code, 0, describeRun(r));
  return JSON.parse(r.stdout) as CopyResult;
}

async function referrerTreeOf(ref: string): Promise<ReferrerTreeNode[]> {
  const r = await runOcikit(['ls', '--referrers', '--json', ref]);
  assert.equal(r.code, 0, describeRun(r));
  return JSON.parse(r.stdout) as ReferrerTreeNode[];
}

/** The `subject` digest each referrer document names, read from the store itself. */
async function subjectFields(ref: string): Promise<Map<string, string | undefined>> {
  const store = await openStore(ref);
  try {
    const out = new Map<string, string | undefined>();
    for (const d of (await store.readIndex()).value.manifests) {
      const doc = JSON.parse((await store.readBlob(d.digest)).toString('utf8')) as { subject?: Descriptor };
      out.set(d.digest, doc.subject?.digest);
    }
    return out;
  } finally {
    await store.close();
  }
}

/** The shape every copy of `latest` must keep: the signature and the SBOM under the image, the SBOM's signature under the SBOM. */
async function assertReferrersKept(ref: string, refs: ReferrerLayout): Promise<void> {
  const tree = await referrerTreeOf(ref);
  assert.equal(tree.length, 1, `${ref}: only the image at the top, every referrer under it: ${JSON.stringify(tree)}`);
  const [top] = tree;
  assert.equal(top!.descriptor.digest, refs.image.descriptor.digest);
  const under = new Map(top!.referrers.map((r) => [r.descriptor.digest, r]));
  assert.deepEqual([...under.keys()].sort(), [refs.signature.descriptor.digest, refs.sbom.descriptor.digest].sort(), ref);
  assert.deepEqual(under.get(refs.sbom.descriptor.digest)!.referrers.map((r) => r.descriptor.digest), [refs.sbomSignature.descriptor.digest], ref);
  const subjects = await subjectFields(ref);
  assert.equal(subjects.get(refs.signature.descriptor.digest), refs.image.descriptor.digest, `${ref}: the signature still points at the image`);
  assert.equal(subjects.get(refs.sbom.descriptor.digest), refs.image.descriptor.digest, `${ref}: the SBOM still points at the image`);
  assert.equal(subjects.get(refs.sbomSignature.descriptor.digest), refs.sbom.descriptor.digest, `${ref}: the SBOM's signature still points at the SBOM`);
  assert.ok(!subjects.has(refs.otherSignature.descriptor.digest), `${ref}: another image's signature is not copied`);
}

test('copy keeps a signature, an SBOM and a signature on the SBOM: layout → new layout → oci-archive → layout', async (t) => {
  const { dir, cleanup } = await scratchDir('copy-referrers');
  t.after(cleanup);
  const refs = await writeReferrerLayout(join(dir, 'src'));
  const dest = join(dir, 'dest');
  const archive = join(dir, 'signed.oci.tar');
  const back = join(dir, 'back');

  const first = await copyJson(`oci:${join(dir, 'src')}:latest`, `oci:${dest}`);
  assert.deepEqual(first.referrers.map((r) => [r.digest, r.subject, r.from]).sort(), [
    [refs.signature.descriptor.digest, refs.image.descriptor.digest, 'subject'],
    [refs.sbom.descriptor.digest, refs.image.descriptor.digest, 'fallback-tag'],
    [refs.sbomSignature.descriptor.digest, refs.sbom.descriptor.digest, 'containerd-annotation'],
  ].sort());
  await assertReferrersKept(`oci:${dest}`, refs);
  const destIndex = JSON.parse(await readFile(join(dest, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  assert.deepEqual(destIndex.manifests.map((d) => d.annotations?.['org.opencontainers.image.ref.name'] ?? null), ['latest', null, null, null],
    'referrers are untagged index.json entries in the destination (no fallback tag)');

  await copyJson(`oci:${dest}:latest`, `oci-archive:${archive}`);
  await assertReferrersKept(`oci-archive:${archive}`, refs);
  await copyJson(`oci-archive:${archive}:latest`, `oci:${back}`);
  await assertReferrersKept(`oci:${back}`, refs);
  assert.deepEqual((await checkLayout(back)).problems, []);
  for (const built of [refs.image, refs.signature, refs.sbom, refs.sbomSignature]) {
    for (const b of built.blobs) assert.ok(existsSync(blobFile(back, b.descriptor.digest)), `${b.descriptor.mediaType} blob made the round trip`);
  }

  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const human = await runOcikit(['ls', '--referrers', back]);
  assert.match(human.stdout, new RegExp(`^latest\\t${refs.image.descriptor.digest}\\t`));
  assert.match(human.stdout, new RegExp(`\\n(├|└)── ${refs.sbom.descriptor.digest}\\t${escape(SBOM_TYPE)}`));
  assert.match(human.stdout, new RegExp(`\\n {4}└── ${refs.sbomSignature.descriptor.digest}\\t${escape(SIGNATURE_TYPE)}`));
});

test('--no-referrers copies the image alone', async (t) => {
  const { dir, cleanup } = await scratchDir('copy-no-referrers');
  t.after(cleanup);
  const refs = await writeReferrerLayout(join(dir, 'src'));
  const result = await copyJson('--no-referrers', `oci:${join(dir, 'src')}:latest`, `oci:${join(dir, 'dest')}`);
  assert.deepEqual(result.referrers, []);
  const index = JSON.parse(await readFile(join(dir, 'dest', 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  assert.deepEqual(index.manifests.map((d) => d.digest), [refs.image.descriptor.digest]);
  assert.ok(!existsSync(blobFile(join(dir, 'dest'), refs.signature.descriptor.digest)));
});

test('a whole layout is copied with every referrer as an untagged entry, one whose subject is absent too', async (t) => {
  const { dir, cleanup } = await scratchDir('copy-whole');
  t.after(cleanup);
  const image = smallImage('whole');
  const sbom = artifact(image.descriptor, SBOM_TYPE, '{"spdxVersion":"SPDX-2.3","name":"whole"}');
  const fallback = buildIndex({ manifests: [sbom.descriptor], children: sbom.blobs });
  const stray = artifact(smallImage('elsewhere').descriptor, SIGNATURE_TYPE, '{"signature":"subject not here"}');
  const src = join(dir, 'src');
  await writeLayout(src, {
    manifests: [tagged(image.descriptor, 'v1'), tagged(fallback.descriptor, `sha256-${hexOf(image.descriptor.digest)}`), stray.descriptor],
    blobs: [...image.blobs, ...fallback.blobs, ...stray.blobs],
  });
  const dest = join(dir, 'dest');
  await copyJson(`oci:${src}`, `oci:${dest}`);
  const index = JSON.parse(await readFile(join(dest, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  assert.deepEqual(index.manifests.map((d) => d.digest).sort(), [image.descriptor.digest, sbom.descriptor.digest, stray.descriptor.digest].sort());
  assert.ok(!index.manifests.some((d) => d.annotations?.['org.opencontainers.image.ref.name']?.startsWith('sha256-')), 'no fallback tag in the destination');
  for (const b of [...image.blobs, ...sbom.blobs, ...stray.blobs]) assert.ok(existsSync(blobFile(dest, b.descriptor.digest)));
  assert.ok(!existsSync(blobFile(dest, fallback.descriptor.digest)), 'the fallback-tag index itself is not needed');
});

test('blobs the destination already holds are not copied again', async (t) => {
  const { dir, cleanup } = await scratchDir('copy-existing');
  t.after(cleanup);
  const dest = join(dir, 'dest');
  const base = await copyJson(`oci:${layoutFixture('base')}:1.0`, `oci:${dest}`);
  assert.equal(base.existing, 0);
  const baseManifest = JSON.parse(await readFile(blobFile(dest, base.entries[0]!.digest), 'utf8')) as { layers: Descriptor[] };
  const sharedLayer = blobFile(dest, baseManifest.layers[0]!.digest);
  const before = await stat(sharedLayer);

  const app = await copyJson(`oci:${layoutFixture('app')}:latest`, `oci:${dest}`);
  assert.equal(app.existing, 2, 'the two base layers were already there');
  assert.equal(app.blobs, 3, 'only the app manifest, config and layer were written');
  const after = await stat(sharedLayer);
  assert.equal(after.ino, before.ino);
  assert.equal(after.mtimeMs, before.mtimeMs);

  const again = await copyJson(`oci:${layoutFixture('app')}:latest`, `oci:${dest}`);
  assert.equal(again.blobs, 0);
  assert.equal(again.existing, 5);
  const index = JSON.parse(await readFile(join(dest, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  assert.equal(index.manifests.length, 2, 'the same tag is not listed twice');
});

test('a blob that does not match its digest aborts the copy; the destination index.json and blobs stay as they were', async (t) => {
  const { dir, cleanup } = await scratchDir('copy-mismatch');
  t.after(cleanup);
  const src = await copyLayout('app', join(dir, 'src'));
  const dest = join(dir, 'dest');
  await copyJson(`oci:${layoutFixture('base')}:1.0`, `oci:${dest}`);
  const manifestDigest = (JSON.parse(await readFile(join(src, 'index.json'), 'utf8')) as { manifests: Descriptor[] }).manifests[0]!.digest;
  const appLayer = (JSON.parse(await readFile(blobFile(src, manifestDigest), 'utf8')) as { layers: Descriptor[] }).layers[2]!.digest;
  await corruptBlob(src, appLayer);
  const snapshot = await snapshotTree(dest);
  const r = await runOcikit(['copy', `oci:${src}:latest`, `oci:${dest}`]);
  assertCleanError(r, [1], /content digest|declared size/);
  await assertTreeUnchanged(dest, snapshot, 'a failed copy');

  const archive = join(dir, 'never.tar');
  const toArchive = await runOcikit(['copy', `oci:${src}:latest`, `oci-archive:${archive}`]);
  assertCleanError(toArchive, [1]);
  assert.ok(!existsSync(archive), 'no archive is left behind');
});

test('--platform picks one manifest of an index; all platforms by default; both flags together are refused', async (t) => {
  const { dir, cleanup } = await scratchDir('copy-platform');
  t.after(cleanup);
  const src = layoutFixture('multi');
  const index = JSON.parse(await readFile(join(src, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const inner = JSON.parse(await readFile(blobFile(src, index.manifests[0]!.digest), 'utf8')) as { manifests: Descriptor[] };
  const [amd64, arm64] = inner.manifests;

  const one = join(dir, 'arm64');
  const picked = await copyJson('--platform', 'linux/arm64', `oci:${src}:multi`, `oci:${one}`);
  assert.equal(picked.entries.length, 1);
  assert.equal(picked.entries[0]!.digest, arm64!.digest);
  assert.equal(picked.entries[0]!.annotations?.['org.opencontainers.image.ref.name'], 'multi');
  assert.ok(!existsSync(blobFile(one, amd64!.digest)), 'the amd64 manifest is left out');
  assert.deepEqual((await checkLayout(one)).problems, []);

  const all = join(dir, 'all');
  const everything = await copyJson('--all-platforms', `oci:${src}:multi`, `oci:${all}`);
  const byDefault = await copyJson(`oci:${src}:multi`, `oci:${join(dir, 'default')}`);
  assert.equal(everything.entries[0]!.digest, index.manifests[0]!.digest);
  assert.equal(everything.blobs, 11, 'index, two images, attestation: every blob');
  assert.equal(byDefault.blobs, everything.blobs);

  const both = await runOcikit(['copy', '--platform', 'linux/arm64', '--all-platforms', `oci:${src}:multi`, `oci:${join(dir, 'x')}`]);
  assertCleanError(both, [2], /mutually exclusive/);
});

test('a blob only an extension descriptor names is copied, to a layout and through an archive', async (t) => {
  const { dir, cleanup } = await scratchDir('copy-extension');
  t.after(cleanup);
  const built = imageWithExtension();
  const src = join(dir, 'src');
  await writeLayout(src, { manifests: [tagged(built.manifest.descriptor, 'latest')], blobs: built.blobs });
  await copyJson(`oci:${src}:latest`, `oci-archive:${join(dir, 'x.tar')}`);
  await copyJson(`oci-archive:${join(dir, 'x.tar')}:latest`, `oci:${join(dir, 'back')}`);
  assert.ok(existsSync(blobFile(join(dir, 'back'), built.extension.descriptor.digest)));
});

test('docker-archive has no place for referrers: they are left out with a warning, manifest.json lists the image only', async (t) => {
  const { dir, cleanup } = await scratchDir('copy-docker');
  t.after(cleanup);
  await writeReferrerLayout(join(dir, 'src'));
  const out = join(dir, 'signed.docker.tar');
  const r = await runOcikit(['copy', `oci:${join(dir, 'src')}:latest`, `docker-archive:${out}:example/signed:1`]);
  assert.equal(r.code, 0, describeRun(r));
  assert.match(r.stderr, /^warning: 3 referrers not copied: docker-archive/m);
  const store = await openStore(`docker-archive:${out}`);
  try {
    assert.equal((await store.readIndex()).value.manifests.length, 1);
  } finally {
    await store.close();
  }
});

test('a signature on one platform manifest of an index travels with that platform only, and shows under the index', async (t) => {
  const { dir, cleanup } = await scratchDir('copy-platform-referrer');
  t.after(cleanup);
  const src = await copyLayout('multi', join(dir, 'src'));
  const index = JSON.parse(await readFile(join(src, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const inner = JSON.parse(await readFile(blobFile(src, index.manifests[0]!.digest), 'utf8')) as { manifests: Descriptor[] };
  const arm64 = inner.manifests[1]!;
  const signature = artifact(arm64, SIGNATURE_TYPE, '{"signature":"on the arm64 image"}');
  await writeLayout(src, { manifests: [...index.manifests, signature.descriptor], blobs: signature.blobs });

  const tree = await referrerTreeOf(src);
  assert.equal(tree.length, 1);
  assert.deepEqual(tree[0]!.referrers.map((r) => [r.descriptor.digest, r.subject]), [[signature.descriptor.digest, arm64.digest]]);
  const human = await runOcikit(['ls', '--referrers', src]);
  assert.match(human.stdout, new RegExp(`└── ${signature.descriptor.digest}\\t\\S+ on ${arm64.digest.slice(0, 19)} \\(subject\\)`));

  const withIt = await copyJson('--platform', 'linux/arm64', `oci:${src}:multi`, `oci:${join(dir, 'arm64')}`);
  assert.deepEqual(withIt.referrers.map((r) => r.digest), [signature.descriptor.digest]);
  const without = await copyJson('--platform', 'linux/amd64', `oci:${src}:multi`, `oci:${join(dir, 'amd64')}`);
  assert.deepEqual(without.referrers, []);
  const whole = await copyJson(`oci:${src}:multi`, `oci:${join(dir, 'all')}`);
  assert.deepEqual(whole.referrers.map((r) => r.subject), [arm64.digest]);
});

test('an unreadable entry elsewhere in the source does not stop copying one image; it is reported', async (t) => {
  const { dir, cleanup } = await scratchDir('copy-unreadable');
  t.after(cleanup);
  const src = join(dir, 'src');
  const refs = await writeReferrerLayout(src);
  await corruptBlob(src, refs.other.descriptor.digest);
  const r = await runOcikit(['copy', `oci:${src}:latest`, `oci:${join(dir, 'dest')}`]);
  assert.equal(r.code, 0, describeRun(r));
  assert.match(r.stderr, /^warning: not checked for referrers: index\.json \$\.manifests\[4\]: /m);
  await assertReferrersKept(`oci:${join(dir, 'dest')}`, refs);
  const whole = await runOcikit(['copy', `oci:${src}`, `oci:${join(dir, 'whole')}`]);
  assertCleanError(whole, [1, 2], /content digest|not valid JSON/);
});
