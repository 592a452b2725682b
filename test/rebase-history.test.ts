/** Rebase history when the old base is absent: the old base's trailing empty entries are not the image's. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { rebase, type RebaseOptions } from '../src/ops/rebase.js';
import { DirWriter } from '../src/store/dir.js';
import { openStore } from '../src/store/open.js';
import { blobFile, buildImage, makeLayer, tagged, writeLayout, type HistoryEntry } from '../testdata/builder.js';
import { describeRun } from './helpers/ocikit-process.js';
import { runSourceCli } from './helpers/annotate-run.js';
import { scratchDir } from './helpers/scratch.js';

const BUILDPACKS = 'io.buildpacks.lifecycle.metadata';

async function scratch(t: TestContext): Promise<(name: string) => string> {
  const { dir, cleanup } = await scratchDir('rebase-history');
  t.after(cleanup);
  return (name) => join(dir, name);
}

const step = (created_by: string, created: string, extra: Partial<HistoryEntry> = {}): HistoryEntry => ({ created, created_by, ...extra });
const cmd = (created: string) => step('umoci config --config.cmd /bin/sh', created, { empty_layer: true });

/** Two builds of one base: a new root file system and the same CMD, set at another time. */
function bases() {
  const v1 = buildImage({ layers: [makeLayer([{ path: 'os', content: 'v1\n' }])], history: [step('repack', '2024-01-01T00:00:00Z'), cmd('2024-01-01T00:00:01Z')] });
  const v2 = buildImage({ layers: [makeLayer([{ path: 'os', content: 'v2\n' }])], history: [step('repack', '2024-06-01T00:00:00Z'), cmd('2024-06-01T00:00:01Z')] });
  const appLayer = makeLayer([{ path: 'app', content: 'app\n' }]);
  const labels = { [BUILDPACKS]: JSON.stringify({ runImage: { topLayer: v1.layers[0]!.diffId } }) };
  const app = buildImage({
    layers: [...v1.layers, appLayer],
    config: { Labels: labels },
    history: [...v1.config.history!, step('COPY app /app', '2024-02-01T00:00:00Z'), step('ENV APP=1', '2024-02-01T00:00:01Z', { empty_layer: true })],
  });
  return { v1, v2, app };
}

async function rebasedHistory(dir: string, options: RebaseOptions): Promise<Array<string | undefined>> {
  const store = await openStore(`oci:${dir}`);
  const writer = await DirWriter.open(dir);
  const result = await rebase(store, writer, options);
  const manifest = JSON.parse(await readFile(blobFile(dir, result.after.digest), 'utf8')) as { config: { digest: string } };
  const config = JSON.parse(await readFile(blobFile(dir, manifest.config.digest), 'utf8')) as { history: HistoryEntry[] };
  return config.history.map((h) => `${h.created_by} ${h.created}`);
}

test('old base absent (--top-layer, --base-layers, buildpacks): its trailing CMD is not kept beside the new base\'s', async (t) => {
  const at = await scratch(t);
  const { v1, v2, app } = bases();
  await writeLayout(at('v2'), { manifests: [tagged(v2.descriptor, '2')], blobs: v2.blobs });
  const newBase = { store: await openStore(`oci:${at('v2')}`), name: 'example.com/base:2' };
  const expected = ['repack 2024-06-01T00:00:00Z', 'umoci config --config.cmd /bin/sh 2024-06-01T00:00:01Z', 'COPY app /app 2024-02-01T00:00:00Z', 'ENV APP=1 2024-02-01T00:00:01Z'];
  for (const [name, options] of [['top', { topLayer: v1.layers[0]!.diffId }], ['count', { baseLayers: 1 }], ['buildpacks', {}]] as const) {
    await writeLayout(at(name), { manifests: [tagged(app.descriptor, 'latest')], blobs: app.blobs });
    assert.deepEqual(await rebasedHistory(at(name), { newBase, ...options }), expected, name);
  }
});

test('an old base whose history is not the image\'s first entries (re-stamped): its tail is matched by instruction', async (t) => {
  const at = await scratch(t);
  const { v1, v2, app } = bases();
  const restamped = buildImage({ layers: v1.layers, history: [step('repack', '2030-01-01T00:00:00Z'), cmd('2030-01-01T00:00:01Z')] });
  await writeLayout(at('app'), { manifests: [tagged(app.descriptor, 'latest')], blobs: app.blobs });
  await writeLayout(at('v1'), { manifests: [tagged(restamped.descriptor, '1')], blobs: restamped.blobs });
  await writeLayout(at('v2'), { manifests: [tagged(v2.descriptor, '2')], blobs: v2.blobs });
  const history = await rebasedHistory(at('app'), { newBase: { store: await openStore(`oci:${at('v2')}`) }, oldBase: { store: await openStore(`oci:${at('v1')}`) } });
  assert.deepEqual(history.map((h) => h!.split(' 20')[0]), ['repack', 'umoci config --config.cmd /bin/sh', 'COPY app /app', 'ENV APP=1']);
});

const installed = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

function run(tool: string, args: string[]): void {
  const r = spawnSync(tool, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${tool} ${args.join(' ')} → ${r.status}\n${r.stdout}\n${r.stderr}`);
}

test('interop: umoci-built bases with a CMD set at different times; rebase --top-layer, then umoci unpack', async (t) => {
  const missing = ['umoci', 'skopeo'].filter((tool) => !installed(tool));
  if (missing.length) {
    t.skip(`${missing.join(', ')} not installed`);
    return;
  }
  const at = await scratch(t);
  const layout = at('u');
  run('umoci', ['init', '--layout', layout]);
  for (const [tag, created] of [['base1', '2024-01-01T00:00:00Z'], ['base2', '2024-06-01T00:00:00Z']] as const) {
    await writeFile(at(`${tag}.txt`), `${tag}\n`);
    run('umoci', ['new', '--image', `${layout}:${tag}`]);
    run('umoci', ['insert', '--image', `${layout}:${tag}`, '--history.created', created, at(`${tag}.txt`), '/etc/base.txt']);
    run('umoci', ['config', '--image', `${layout}:${tag}`, '--config.cmd', '/bin/sh', '--history.created', created]);
  }
  run('skopeo', ['--insecure-policy', 'copy', '-q', `oci:${layout}:base1`, `oci:${layout}:app`]);
  await writeFile(at('app.txt'), 'app\n');
  run('umoci', ['insert', '--image', `${layout}:app`, at('app.txt'), '/app.txt']);
  run('umoci', ['config', '--image', `${layout}:app`, '--config.env', 'APP=1']);
  const store = await openStore(`oci:${layout}`);
  const base1 = await store.readIndex();
  const base1Entry = base1.value.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === 'base1')!;
  const base1Manifest = JSON.parse((await store.readBlob(base1Entry.digest)).toString()) as { config: { digest: string } };
  const top = (JSON.parse((await store.readBlob(base1Manifest.config.digest)).toString()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids.at(-1)!;

  const r = await runSourceCli(['rebase', `oci:${layout}:app`, '--new-base', `oci:${layout}:base2`, '--top-layer', top, '--json']);
  assert.equal(r.code, 0, describeRun(r));
  const after = (JSON.parse(r.stdout) as { after: { digest: string } }).after.digest;
  const manifest = JSON.parse(await readFile(blobFile(layout, after), 'utf8')) as { config: { digest: string } };
  const history = (JSON.parse(await readFile(blobFile(layout, manifest.config.digest), 'utf8')) as { history: HistoryEntry[] }).history;
  const fromBases = history.filter((h) => h.created?.startsWith('2024-'));
  assert.deepEqual(fromBases.map((h) => `${h.created_by} ${h.created}`), ['umoci insert 2024-06-01T00:00:00Z', 'umoci config 2024-06-01T00:00:00Z'], `base2's entries only: ${JSON.stringify(history)}`);
  assert.equal(history.length, 4, 'then the app\'s insert and config');
  run('umoci', ['unpack', '--image', `${layout}:app`, at('bundle')]);
  assert.equal(await readFile(join(at('bundle'), 'rootfs', 'etc', 'base.txt'), 'utf8'), 'base2\n');
  assert.equal(await readFile(join(at('bundle'), 'rootfs', 'app.txt'), 'utf8'), 'app\n');
});
