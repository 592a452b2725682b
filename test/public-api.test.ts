/**
 * The library as a user gets it: the built package imported by its name (`npm run build` first),
 * every operation run on copies of the fixtures, and wrong arguments refused with an OcikitError.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { copyLayout, scratchDir } from './helpers/scratch.js';

// By name, as a dependent would: Node resolves the package's own name through its `exports`.
const api = (await import('ocikit' as string)) as typeof import('../src/index.js');

test('inspect, verify, annotate, rebase, copy, tag and gc through the package entry', async (t) => {
  const { dir, cleanup } = await scratchDir('public-api');
  t.after(cleanup);
  for (const name of ['app', 'base', 'base-v2']) await copyLayout(name, join(dir, name));
  const app = await api.openLayout(`oci:${join(dir, 'app')}`);
  const base = await api.openLayout(`oci:${join(dir, 'base')}`);
  const baseV2 = await api.openLayout(api.parseReference(`oci:${join(dir, 'base-v2')}`));
  t.after(() => Promise.all([app, base, baseV2].map((s) => s.close())));

  const report = await api.inspect(app, { selector: { tag: 'latest' } });
  assert.deepEqual(report.entries.map((e) => [e.kind, e.tags]), [['manifest', ['latest']]]);

  const verified = await api.verify(app);
  assert.equal(verified.ok, true, JSON.stringify(verified.findings));
  assert.equal((await api.verify(`oci:${join(dir, 'base')}`)).ok, true, 'verify opens a reference itself');

  const annotated = await api.writeTo(`oci:${join(dir, 'app')}`, app, (writer) =>
    api.annotate(app, writer, { selector: { tag: 'latest' }, set: { 'com.example.team': 'platform' } }));
  assert.equal(annotated.changed, true);
  const after = await api.inspect(app, { selector: { tag: 'latest' } });
  assert.equal(after.entries[0]!.annotations?.['com.example.team'], 'platform');

  const rebased = await api.writeTo(`oci:${join(dir, 'app')}`, app, (writer) => api.rebase(app, writer, {
    selector: { tag: 'latest' },
    newBase: { store: baseV2, selector: { tag: '2.0' } },
    oldBase: { store: base, selector: { tag: '1.0' } },
  }));
  assert.equal(rebased.platforms.length, 1);
  assert.notEqual(rebased.after.digest, after.entries[0]!.digest, 'the rebased image is a new manifest');

  const archive = join(dir, 'app.tar');
  const copied = await api.writeTo(`oci-archive:${archive}:v1`, app, (writer) => api.copy(app, writer, { selector: { tag: 'latest' }, tag: 'v1' }));
  assert.deepEqual(copied.entries.map((e) => e.annotations?.[api.ImageAnnotation.refName]), ['v1']);
  const copy = await api.verify(`oci-archive:${archive}`);
  assert.equal(copy.ok, true, JSON.stringify(copy.findings));
  assert.deepEqual(Object.values(copy.images), ['v1']);

  const tagged = await api.writeTo(`oci:${join(dir, 'app')}`, app, (writer) => api.tag(app, writer, { tag: 'latest' }, 'stable'));
  assert.equal(tagged.digest, rebased.after.digest);
  const collected = await api.gc(`oci:${join(dir, 'app')}`);
  assert.ok(collected.removed.count > 0, 'the pre-annotate and pre-rebase documents and the old base layer go');
  assert.equal((await api.verify(app)).ok, true);
  assert.ok((await readdir(join(dir, 'app', 'blobs', 'sha256'))).length > 0);
});

test('a wrong argument at the public API is an OcikitError naming it, never a TypeError', async (t) => {
  const { dir, cleanup } = await scratchDir('public-api');
  t.after(cleanup);
  const app = await api.openLayout(await copyLayout('app', join(dir, 'app')));
  t.after(() => app.close());
  const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
    ['annotate(undefined, …)', () => api.annotate(undefined as never, undefined, { set: { a: 'b' } }), /^annotate: source: expected a store \(from openLayout\) \(got undefined\)$/],
    ['annotate without a writer', () => api.annotate(app, undefined, { set: { a: 'b' } }), /^annotate: writer: expected a store writer/],
    ['annotate set of numbers', () => api.annotate(app, undefined, { dryRun: true, set: { a: 1 } as never }), /^annotate: options\.set\.a: .*\(got number\)$/],
    ['verify(42)', () => api.verify(42 as never), /^verify: target: expected a store/],
    ['verify(\'not a store\')', () => api.verify('not a store'), /^not a store: no such file or directory$/],
    ['inspect({})', () => api.inspect({} as never), /^inspect: store: expected a store/],
    ['inspect platform string', () => api.inspect(app, { platform: 'linux/amd64' as never }), /^inspect: options\.platform: .*\(got string\)$/],
    ['copy(store, \'x\')', () => api.copy(app, 'x' as never), /^copy: writer: expected a store writer/],
    ['rebase(store, writer, { newBase: \'base\' })', async () => api.rebase(app, {} as never, { newBase: 'base' as never }), /^rebase: writer: /],
    ['tag with a numeric tag', () => api.tag(app, {} as never, undefined, 7 as never), /^tag: writer: /],
    ['gc(undefined)', () => api.gc(undefined as never), /^gc: layout: .*\(got undefined\)$/],
    ['openLayout(null)', () => api.openLayout(null as never), /^openLayout: ref: .*\(got null\)$/],
    ['openLayout(docker://…)', () => api.openLayout('docker://busybox'), /^unknown transport "docker"/],
  ];
  for (const [what, run, message] of cases) {
    await assert.rejects(run(), (err: unknown) => {
      assert.ok(err instanceof api.OcikitError, `${what}: ${(err as Error)?.stack ?? String(err)}`);
      assert.match(err.message, message, what);
      assert.equal(err.exitCode, 2, what);
      return true;
    });
  }
  assert.deepEqual((await api.inspect(app)).entries.length, 1, 'nothing changed');
});
