import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { describeRun, runOcikit } from './helpers/ocikit-process.js';
import { layoutFixture, scratchDir } from './helpers/scratch.js';

const installed = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const needs = (t: TestContext, ...tools: string[]): boolean => {
  const missing = tools.filter((tool) => !installed(tool));
  if (missing.length) t.skip(`${missing.join(', ')} not installed`);
  return missing.length === 0;
};
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

interface Entry { digest: string; size: number; tags?: string[]; platform?: { os: string; architecture: string }; children?: Entry[] }

async function ocikitInspect(ref: string): Promise<Entry[]> {
  const r = await runOcikit(['inspect', '--json', ref]);
  assert.equal(r.code, 0, describeRun(r));
  return (JSON.parse(r.stdout) as { entries: Entry[] }).entries;
}

/** What `skopeo inspect --raw` says a reference's manifest is: its digest, size and child platforms. */
function skopeoRaw(ref: string): { digest: string; size: number; platforms: string[] } {
  const raw = execFileSync('skopeo', ['inspect', '--raw', ref]);
  const doc = JSON.parse(raw.toString('utf8')) as { manifests?: Array<{ platform?: { os: string; architecture: string } }> };
  return {
    digest: `sha256:${createHash('sha256').update(raw).digest('hex')}`,
    size: raw.length,
    platforms: (doc.manifests ?? []).map((m) => `${m.platform?.os}/${m.platform?.architecture}`),
  };
}

test('layouts and tarballs written by skopeo: inspect agrees with skopeo inspect --raw', async (t) => {
  if (!needs(t, 'skopeo')) return;
  const { dir, cleanup } = await scratchDir('interop');
  try {
    const targets = [`oci:${join(dir, 'layout')}:v1`, `oci-archive:${join(dir, 'image.tar')}:v1`];
    for (const target of targets) run('skopeo', ['copy', '-q', '--all', `oci:${layoutFixture('multi')}:multi`, target]);
    run('skopeo', ['copy', '-q', `oci:${layoutFixture('app')}:latest`, `docker-archive:${join(dir, 'docker.tar')}:example.com/app:v1`]);
    for (const target of targets) {
      const [entry] = await ocikitInspect(target);
      const expected = skopeoRaw(target);
      assert.equal(entry!.digest, expected.digest, target);
      assert.equal(entry!.size, expected.size, target);
      assert.deepEqual(entry!.tags, ['v1']);
      assert.deepEqual(entry!.children!.map((c) => `${c.platform?.os}/${c.platform?.architecture}`), expected.platforms);
    }
    const [docker] = await ocikitInspect(`docker-archive:${join(dir, 'docker.tar')}:example.com/app:v1`);
    const expected = skopeoRaw(`docker-archive:${join(dir, 'docker.tar')}`);
    // skopeo synthesizes the manifest of a docker-save tarball; the config and layer digests are what must agree
    const manifest = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `docker-archive:${join(dir, 'docker.tar')}`], { encoding: 'utf8' }));
    assert.ok(expected.size > 0);
    const ours = docker as unknown as { config: { digest: string }; layers: Array<{ digest: string }> };
    assert.equal(ours.config.digest, manifest.config.digest);
    assert.deepEqual(ours.layers.map((l) => l.digest), manifest.layers.map((l: { digest: string }) => l.digest));
  } finally {
    await cleanup();
  }
});

test('a layout written by umoci: inspect reads it, and convert round trips keep every layer digest', async (t) => {
  if (!needs(t, 'umoci', 'skopeo')) return;
  const { dir, cleanup } = await scratchDir('interop');
  try {
    const layout = join(dir, 'umoci');
    run('umoci', ['init', '--layout', layout]);
    run('umoci', ['new', '--image', `${layout}:t`]);
    const bundle = join(dir, 'bundle');
    run('umoci', ['unpack', '--rootless', '--image', `${layout}:t`, bundle]);
    await mkdir(join(bundle, 'rootfs/etc'), { recursive: true });
    await writeFile(join(bundle, 'rootfs/etc/hello'), 'from umoci\n');
    run('umoci', ['repack', '--image', `${layout}:t`, bundle]);
    const [entry] = await ocikitInspect(`oci:${layout}:t`);
    assert.equal(entry!.digest, skopeoRaw(`oci:${layout}:t`).digest);
    for (const target of [`oci-archive:${join(dir, 'a.tar')}`, `docker-archive:${join(dir, 'a.docker.tar')}:example.com/u:t`, `oci:${join(dir, 'back')}:t`]) {
      const r = await runOcikit(['convert', `oci:${layout}:t`, target]);
      assert.equal(r.code, 0, describeRun(r));
    }
    const layersOf = (ref: string) => (JSON.parse(execFileSync('skopeo', ['inspect', ref], { encoding: 'utf8' })) as { Layers: string[] }).Layers;
    assert.deepEqual(layersOf(`oci:${join(dir, 'back')}:t`), layersOf(`oci:${layout}:t`));
  } finally {
    await cleanup();
  }
});

test('what ocikit writes is read by skopeo, umoci and oci-image-tool', async (t) => {
  if (!needs(t, 'skopeo', 'umoci', 'oci-image-tool')) return;
  const { dir, cleanup } = await scratchDir('interop');
  try {
    const oci = join(dir, 'oci');
    const archive = join(dir, 'app.tar');
    const docker = join(dir, 'app.docker.tar');
    for (const target of [`oci:${oci}:latest`, `oci-archive:${archive}:latest`, `docker-archive:${docker}:example.com/app:latest`]) {
      const r = await runOcikit(['convert', `oci:${layoutFixture('app')}:latest`, target]);
      assert.equal(r.code, 0, describeRun(r));
    }
    await mkdir(join(dir, 'copies'));
    for (const [i, ref] of [`oci:${oci}:latest`, `oci-archive:${archive}:latest`, `docker-archive:${docker}`].entries()) {
      const info = JSON.parse(run('skopeo', ['inspect', ref])) as { Layers: string[]; Architecture: string };
      assert.equal(info.Architecture, 'amd64', ref);
      run('skopeo', ['copy', '-q', ref, `oci:${join(dir, 'copies', String(i))}:x`]);
    }
    assert.match(run('umoci', ['ls', '--layout', oci]), /^latest$/m);
    assert.match(run('umoci', ['stat', '--image', `${oci}:latest`]), /LAYER/);
    const bundle = join(dir, 'bundle');
    run('umoci', ['unpack', '--rootless', '--image', `${oci}:latest`, bundle]);
    assert.equal(spawnSync('test', ['-f', join(bundle, 'rootfs/app/main.sh')]).status, 0, 'app file unpacked');
    const validate = spawnSync('oci-image-tool', ['validate', '--type', 'image', oci], { encoding: 'utf8' });
    assert.equal(validate.status, 0, validate.stdout + validate.stderr);
  } finally {
    await cleanup();
  }
});
