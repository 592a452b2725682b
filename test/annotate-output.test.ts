/** annotate -o: the tag asked for, only the target (and its referrers) written, nothing else of DEST replaced. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { blobPath } from '../src/model/digest.js';
import type { AnnotateResult } from '../src/ops/annotate.js';
import { openStore } from '../src/store/open.js';
import { sampleImages, tagged, writeLayout } from '../testdata/builder.js';
import { describeRun, type RunResult } from './helpers/ocikit-process.js';
import { runSourceCli } from './helpers/annotate-run.js';
import { scratchDir } from './helpers/scratch.js';

const s = sampleImages();
const KEY = 'com.example.team';
const REF = 'org.opencontainers.image.ref.name';
const GC_LINE = /until `ocikit gc`/;

interface Entry { digest: string; annotations?: Record<string, string> }

async function scratch(t: TestContext): Promise<(name: string) => string> {
  const { dir, cleanup } = await scratchDir('annotate-output');
  t.after(cleanup);
  return (name) => join(dir, name);
}

async function ok(args: string[]): Promise<RunResult> {
  const r = await runSourceCli(args);
  assert.equal(r.code, 0, describeRun(r));
  return r;
}

async function entries(dir: string): Promise<Entry[]> {
  return (JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Entry[] }).manifests;
}

async function tags(dir: string): Promise<Record<string, string>> {
  return Object.fromEntries((await entries(dir)).flatMap((e) => (e.annotations?.[REF] ? [[e.annotations[REF], e.digest]] : [])));
}

async function annotationsOf(dir: string, digest: string): Promise<Record<string, string> | undefined> {
  return (JSON.parse(await readFile(join(dir, blobPath(digest)), 'utf8')) as { annotations?: Record<string, string> }).annotations;
}

/** A layout holding the app (tagged latest and pinned), the base (1.0) and the app's signature (untagged). */
async function appLayout(dir: string): Promise<void> {
  const { artifact } = s.artifact;
  await writeLayout(dir, {
    manifests: [tagged(s.app.descriptor, 'latest'), tagged(s.base.descriptor, '1.0'), tagged(s.app.descriptor, 'pinned')],
    blobs: [...s.app.blobs, ...s.base.blobs, ...artifact.blobs],
  });
}

test('-o into the same layout under another tag adds that tag; the source tag stays on the old manifest', async (t) => {
  const at = await scratch(t);
  await appLayout(at('l'));
  const first = await ok(['annotate', `oci:${at('l')}:latest`, '--set', `${KEY}=a`, '-o', `oci:${at('l')}:app2`, '--json']);
  const a = JSON.parse(first.stdout) as AnnotateResult;
  assert.equal(a.inPlace, false);
  const second = await ok(['annotate', `oci:${at('l')}:latest`, '--set', `${KEY}=b`, '-o', `oci:${at('l')}:app3`]);
  assert.doesNotMatch(second.stdout, GC_LINE, 'nothing was left unreferenced: the old tag still names the old manifest');
  const now = await tags(at('l'));
  assert.deepEqual(Object.keys(now).sort(), ['1.0', 'app2', 'app3', 'latest', 'pinned']);
  assert.equal(now.latest, s.app.descriptor.digest, 'the source tag is not moved');
  assert.equal(now.pinned, s.app.descriptor.digest);
  assert.equal(now.app2, a.newTarget);
  assert.deepEqual(await annotationsOf(at('l'), now.app2!), { [KEY]: 'a' });
  assert.deepEqual(await annotationsOf(at('l'), now.app3!), { [KEY]: 'b' }, 'the second -o did not replace the first');

  const inPlace = await ok(['annotate', `oci:${at('l')}:latest`, '--set', `${KEY}=c`, '-o', `oci:${at('l')}:latest`]);
  assert.match(inPlace.stdout, GC_LINE, 'the same tag is in place');
  assert.notEqual((await tags(at('l'))).latest, s.app.descriptor.digest);
});

test('-o to another layout writes the target alone; into an existing one, only the entry for its tag is replaced', async (t) => {
  const at = await scratch(t);
  await appLayout(at('src'));
  const fresh = await ok(['annotate', `oci:${at('src')}:latest`, '--set', `${KEY}=x`, '-o', `oci:${at('fresh')}`, '--json']);
  const result = JSON.parse(fresh.stdout) as AnnotateResult;
  assert.deepEqual((await entries(at('fresh'))).map((e) => [e.annotations?.[REF], e.digest]), [['latest', result.newTarget]]);
  const blobs = (await readdir(join(at('fresh'), 'blobs', 'sha256'))).sort();
  const expected = [result.newTarget, s.app.configBlob.descriptor.digest, ...s.app.layers.map((l) => l.descriptor.digest)].map((d) => d.slice(7)).sort();
  assert.deepEqual(blobs, expected, 'the base image, the signature and the old manifest stay behind');
  assert.doesNotMatch(fresh.stdout, GC_LINE);

  // DEST has its own 1.0 and latest: annotating src:latest replaces DEST's latest and nothing else
  await writeLayout(at('dest'), { manifests: [tagged(s.baseV2.descriptor, '1.0'), tagged(s.base.descriptor, 'latest')], blobs: [...s.baseV2.blobs, ...s.base.blobs] });
  await ok(['annotate', `oci:${at('src')}:latest`, '--set', `${KEY}=x`, '-o', `oci:${at('dest')}`]);
  assert.deepEqual(await tags(at('dest')), { '1.0': s.baseV2.descriptor.digest, latest: result.newTarget });
});

test('-o elsewhere takes the referrers that still name the output: moved ones with --move-referrers, none left dangling', async (t) => {
  const at = await scratch(t);
  const { image, artifact } = s.artifact;
  await writeLayout(at('src'), { manifests: [tagged(image.descriptor, 'latest'), artifact.descriptor, tagged(s.base.descriptor, '1.0')], blobs: [...image.blobs, ...artifact.blobs, ...s.base.blobs] });
  const entry = await ok(['annotate', `oci:${at('src')}:latest`, '--on', 'descriptor', '--set', `${KEY}=x`, '-o', `oci:${at('entry')}`]);
  assert.doesNotMatch(entry.stdout, GC_LINE);
  assert.deepEqual((await entries(at('entry'))).map((e) => e.digest), [image.descriptor.digest, artifact.descriptor.digest], 'the manifest is unchanged, so its signature still holds');

  await ok(['annotate', `oci:${at('src')}:latest`, '--set', `${KEY}=x`, '-o', `oci:${at('stale')}`]);
  assert.equal((await entries(at('stale'))).length, 1, 'a signature over the old digest is not carried to where that digest is not');

  const moved = JSON.parse((await ok(['annotate', `oci:${at('src')}:latest`, '--set', `${KEY}=x`, '--move-referrers', '-o', `oci:${at('moved')}`, '--json'])).stdout) as AnnotateResult;
  const list = await entries(at('moved'));
  assert.equal(list.length, 2);
  assert.equal(list[0]!.digest, moved.newTarget);
  const signature = JSON.parse(await readFile(join(at('moved'), blobPath(list[1]!.digest)), 'utf8')) as { subject: { digest: string } };
  assert.equal(signature.subject.digest, moved.newTarget);
});

test('-o to tarballs honours the tag: oci-archive:FILE:TAG, docker-archive:FILE:NAME:TAG', async (t) => {
  const at = await scratch(t);
  await appLayout(at('src'));
  await ok(['annotate', `oci:${at('src')}:latest`, '--set', `${KEY}=x`, '-o', `oci-archive:${at('x.tar')}:newtag`]);
  await ok(['annotate', `oci:${at('src')}:latest`, '--set', `${KEY}=x`, '-o', `docker-archive:${at('d.tar')}:example.com/app:v2`]);
  for (const [file, want] of [['x.tar', { [REF]: 'newtag' }], ['d.tar', { 'io.containerd.image.name': 'example.com/app:v2', [REF]: 'v2' }]] as const) {
    const store = await openStore(at(file));
    try {
      const list = (await store.readIndex()).value.manifests;
      assert.equal(list.length, 1, file);
      assert.deepEqual(list[0]!.annotations, want, file);
    } finally {
      await store.close();
    }
  }
});

const installed = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

function run(tool: string, args: string[]): string {
  const r = spawnSync(tool, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${tool} ${args.join(' ')} → ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test('interop: on an umoci-built, skopeo-copied layout, -o :annotated leaves the old tag as it was', async (t) => {
  const missing = ['umoci', 'skopeo', 'oci-image-tool'].filter((tool) => !installed(tool));
  if (missing.length) {
    t.skip(`${missing.join(', ')} not installed`);
    return;
  }
  const at = await scratch(t);
  run('umoci', ['init', '--layout', at('u')]);
  run('umoci', ['new', '--image', `${at('u')}:app`]);
  await writeFile(at('hello'), 'hello\n');
  run('umoci', ['insert', '--image', `${at('u')}:app`, at('hello'), '/hello']);
  run('umoci', ['config', '--image', `${at('u')}:app`, '--config.cmd', '/bin/true']);
  run('skopeo', ['--insecure-policy', 'copy', '-q', `oci:${at('u')}:app`, `oci:${at('sk')}:app`]);
  const before = run('skopeo', ['inspect', '--raw', `oci:${at('sk')}:app`]);
  // oci-image-tool matches --ref by prefix: no tag may start with another
  await ok(['annotate', `oci:${at('sk')}:app`, '--set', `${KEY}=x`, '-o', `oci:${at('sk')}:annotated`]);
  assert.equal(run('skopeo', ['inspect', '--raw', `oci:${at('sk')}:app`]), before, 'the source tag names the same bytes');
  assert.deepEqual((JSON.parse(run('skopeo', ['inspect', '--raw', `oci:${at('sk')}:annotated`])) as { annotations?: object }).annotations, { [KEY]: 'x' });
  assert.deepEqual(Object.keys(await tags(at('sk'))).sort(), ['annotated', 'app']);
  for (const ref of ['app', 'annotated']) run('oci-image-tool', ['validate', '--type', 'image', '--ref', `name=${ref}`, at('sk')]);
});
