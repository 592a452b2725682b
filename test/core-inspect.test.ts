/** inspect on the built CLI: one entry per image whatever the number of tags, --platform that matches nothing, a closed pipe. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { jsonBlob, tagged, writeLayout } from '../testdata/builder.js';
import { assertCleanError, describeRun, OCIKIT_BIN, runOcikit } from './helpers/ocikit-process.js';
import { smallImage } from './helpers/referrer-layout.js';
import { layoutFixture, scratchDir } from './helpers/scratch.js';

test('two tags on one image: one entry that shows both tags', async (t) => {
  const { dir, cleanup } = await scratchDir('core-inspect');
  t.after(cleanup);
  const image = smallImage('twice');
  await writeLayout(dir, { manifests: [tagged(image.descriptor, 'a'), tagged(image.descriptor, 'b')], blobs: image.blobs });
  const r = await runOcikit(['inspect', '--json', dir]);
  assert.equal(r.code, 0, describeRun(r));
  const entries = (JSON.parse(r.stdout) as { entries: Array<{ digest: string; tags: string[] }> }).entries;
  assert.deepEqual(entries.map((e) => [e.digest, e.tags]), [[image.descriptor.digest, ['a', 'b']]]);
  const text = await runOcikit(['inspect', dir]);
  assert.equal(text.stdout.split('\n').filter((l) => l.includes(image.descriptor.digest)).length, 1, text.stdout);
});

test('inspect --platform that matches nothing is an error (exit 2), as for copy', async () => {
  for (const layout of ['multi', 'nested', 'base']) {
    const r = await runOcikit(['inspect', '--platform', 'linux/s390x', layoutFixture(layout)]);
    assertCleanError(r, [2], /no linux\/s390x image/);
    assert.equal(r.stdout, '', 'no empty tree is printed');
  }
  const ok = await runOcikit(['inspect', '--platform', 'linux/arm64', layoutFixture('multi')]);
  assert.equal(ok.code, 0, describeRun(ok));
  assert.match(ok.stdout, /linux\/arm64/);
  assert.doesNotMatch(ok.stdout, /linux\/amd64/);
});

test('inspect --json into a pipe closed early (| head -1) exits quietly', async (t) => {
  const { dir, cleanup } = await scratchDir('core-inspect');
  t.after(cleanup);
  // Far more output than a pipe buffers, so the writes after head exits fail with EPIPE.
  const image = smallImage('many');
  const manifests = Array.from({ length: 400 }, (_, i) => jsonBlob({ ...image.manifest, annotations: { n: String(i) } }, image.descriptor.mediaType));
  await writeLayout(dir, { manifests: manifests.map((m, i) => tagged(m.descriptor, `t${i}`)), blobs: [...manifests, ...image.blobs] });
  const r = spawnSync('bash', ['-c', `"${process.execPath}" "${OCIKIT_BIN}" inspect --json "${dir}" | head -1 >/dev/null; echo "code=\${PIPESTATUS[0]}"`], { encoding: 'utf8' });
  assert.equal(r.stderr, '', 'nothing on stderr');
  assert.equal(r.stdout.trim(), 'code=0');
});
