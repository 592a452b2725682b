/** `create-runtime-bundle`: DIR/rootfs as unpack makes it, DIR/config.json converted as conversion.md says and as umoci does. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstat, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { buildImage, makeLayer, tagged, writeLayout, type TarFile } from '../testdata/builder.js';
import { runOcikit } from './helpers/ocikit-process.js';
import { layoutFixture, scratchDir } from './helpers/scratch.js';

const hasUmoci = spawnSync('umoci', ['--version']).status === 0;

async function scratch(t: TestContext): Promise<string> {
  const { dir, cleanup } = await scratchDir('bundle');
  t.after(cleanup);
  return dir;
}

type Json = Record<string, unknown>;

/** Paths where the two converters differ on purpose, each for a reason the README gives. */
const DELIBERATE = new Set([
  '$.ociVersion', // the runtime-spec version ocikit writes (1.0.2) against umoci 0.4's 1.0.0
  '$.hostname', // each tool's own name
  '$.process.terminal', // false: a bundle is run from scripts; a runtime asked for a terminal needs a console socket
  // umoci 0.4 lets Config.StopSignal win over a label of the same key; conversion.md says the label wins.
  '$.annotations.org.opencontainers.image.stopSignal',
]);

function differences(a: unknown, b: unknown, path = '$', out: string[] = []): string[] {
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const va = (a as Json)[key];
      const vb = (b as Json)[key];
      // umoci writes the implicit annotations with "" when the image has no such field; conversion.md sets a field's value.
      if (path === '$.annotations' && va === undefined && vb === '') continue;
      differences(va, vb, `${path}.${key}`, out);
    }
  } else if (!DELIBERATE.has(path) && JSON.stringify(a) !== JSON.stringify(b)) {
    out.push(`${path}: ocikit ${JSON.stringify(a)}, umoci ${JSON.stringify(b)}`);
  }
  return out;
}

async function imageLayout(dir: string, files: TarFile[], config: Json, labels?: Record<string, string>): Promise<string> {
  const image = buildImage({ layers: [makeLayer(files)], config: { ...config, ...(labels ? { Labels: labels } : {}) } });
  await writeLayout(dir, { manifests: [tagged(image.descriptor, 'img')], blobs: image.blobs });
  return dir;
}

const accounts: TarFile[] = [
  { path: 'etc', type: 'dir' },
  { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' },
  { path: 'etc/group', content: 'root:x:0:\napp:x:1000:\nstaff:x:50:app\naudio:x:29:app,other\n' },
];

test('create-runtime-bundle: config.json equals umoci\'s but for the stated differences', { skip: !hasUmoci && 'umoci not installed' }, async (t) => {
  const dir = await scratch(t);
  const rich = await imageLayout(join(dir, 'rich'), accounts, {
    Env: ['PATH=/app/bin:/usr/bin', 'LANG=C.UTF-8'], Entrypoint: ['/app/run'], Cmd: ['--serve'], WorkingDir: '/srv',
    User: 'app', StopSignal: 'SIGTERM', ExposedPorts: { '8080/tcp': {}, '9090/tcp': {} },
  }, { 'org.opencontainers.image.stopSignal': 'SIGQUIT', 'com.example.team': 'core' });
  for (const [name, layout, tag] of [['app', layoutFixture('app'), 'latest'], ['rich', rich, 'img']] as const) {
    const ours = join(dir, `${name}-ocikit`);
    const r = await runOcikit(['create-runtime-bundle', `oci:${layout}:${tag}`, ours]);
    assert.equal(r.code, 0, r.stderr);
    const theirs = join(dir, `${name}-umoci`);
    const u = spawnSync('umoci', ['unpack', '--image', `${layout}:${tag}`, theirs], { encoding: 'utf8' });
    assert.equal(u.status, 0, u.stderr);
    const a = JSON.parse(await readFile(join(ours, 'config.json'), 'utf8')) as Json;
    const b = JSON.parse(await readFile(join(theirs, 'config.json'), 'utf8')) as Json;
    assert.deepEqual(differences(a, b), [], name);
    assert.ok((await lstat(join(ours, 'rootfs'))).isDirectory());
  }
});

test('create-runtime-bundle: the conversion rules, each on its own', async (t) => {
  const dir = await scratch(t);
  const layout = await imageLayout(join(dir, 'l'), accounts, {
    Env: ['TERM=dumb', 'A=1'], Cmd: ['echo', 'hi'], User: 'app', ExposedPorts: { '80/tcp': {} },
  }, { 'org.opencontainers.image.os': 'plan9' });
  const out = join(dir, 'b');
  const r = await runOcikit(['create-runtime-bundle', layout, out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const spec = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as { process: Json; annotations: Json; root: Json };
  assert.deepEqual(spec.process.args, ['echo', 'hi']);
  assert.deepEqual(spec.process.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=dumb', 'A=1', 'HOME=/home/app'], 'a default never overrides the image');
  assert.equal(spec.annotations['org.opencontainers.image.stopSignal'], undefined, 'no annotation for a field the image lacks');
  assert.deepEqual(spec.process.user, { uid: 1000, gid: 1000, additionalGids: [50, 29] });
  assert.equal(spec.process.cwd, '/');
  assert.equal(spec.annotations['org.opencontainers.image.os'], 'plan9', 'Config.Labels win over implicit annotations');
  assert.equal(spec.annotations['org.opencontainers.image.exposedPorts'], '80/tcp');
  assert.deepEqual(spec.root, { path: 'rootfs' });
});

test('create-runtime-bundle: users by number, name:group, and a user that does not exist', async (t) => {
  const dir = await scratch(t);
  const cases: Array<[string, unknown]> = [
    ['1234', { uid: 1234, gid: 0 }],
    ['1234:99', { uid: 1234, gid: 99 }],
    ['app:staff', { uid: 1000, gid: 50 }],
    ['1000', { uid: 1000, gid: 1000 }],
  ];
  for (const [i, [user, expected]] of cases.entries()) {
    const layout = await imageLayout(join(dir, `l${i}`), accounts, { User: user });
    const out = join(dir, `b${i}`);
    const r = await runOcikit(['create-runtime-bundle', layout, out]);
    assert.equal(r.code, 0, `${user}: ${r.stderr}`);
    const spec = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as { process: { user: unknown } };
    assert.deepEqual(spec.process.user, expected, user);
  }
  const missing = await imageLayout(join(dir, 'missing'), accounts, { User: 'nobody' });
  const r = await runOcikit(['create-runtime-bundle', missing, join(dir, 'nb')]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /no user "nobody" in the image's etc\/passwd/);
  await assert.rejects(lstat(join(dir, 'nb')), 'a failed bundle leaves nothing behind');
});

test('create-runtime-bundle: an etc/passwd that links outside the rootfs is read inside it', async (t) => {
  const dir = await scratch(t);
  const outside = join(dir, 'host-etc');
  await mkdir(outside);
  await writeFile(join(outside, 'passwd'), 'app:x:4242:4242::/:/bin/sh\n');
  const files: TarFile[] = [
    { path: 'etc', type: 'dir' },
    { path: 'etc/passwd', type: 'symlink', linkname: `${'../'.repeat(12)}${outside.slice(1)}/passwd` },
    { path: `${outside.slice(1)}`, type: 'dir' },
    { path: `${outside.slice(1)}/passwd`, content: 'app:x:7:7::/:/bin/sh\n' },
  ];
  const layout = await imageLayout(join(dir, 'l'), files, { User: 'app' });
  const out = join(dir, 'b');
  const r = await runOcikit(['create-runtime-bundle', layout, out]);
  assert.equal(r.code, 0, r.stderr);
  const spec = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as { process: { user: unknown } };
  assert.deepEqual(spec.process.user, { uid: 7, gid: 7 });
});
