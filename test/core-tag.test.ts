/** tag and untag on docker-archives change the RepoTags docker load sees (manifest.json), not only index.json. */
import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ArchiveStore } from '../src/store/archive.js';
import { describeRun, runOcikit } from './helpers/ocikit-process.js';
import { archiveFixture, scratchDir } from './helpers/scratch.js';

async function repoTagsOf(archive: string): Promise<Array<string[] | null>> {
  const store = await ArchiveStore.open(archive);
  const raw = (await store.readTopFile('manifest.json'))!;
  return (JSON.parse(raw.toString('utf8')) as Array<{ RepoTags: string[] | null }>).map((e) => e.RepoTags);
}

async function ocikit(...args: string[]): Promise<void> {
  const r = await runOcikit(args);
  assert.equal(r.code, 0, describeRun(r));
}

for (const fixture of ['app.docker25.tar', 'app.docker.tar']) {
  test(`tag and untag on ${fixture} add and remove RepoTags`, async (t) => {
    const { dir, cleanup } = await scratchDir('core-tag');
    t.after(cleanup);
    const archive = join(dir, 'd.tar');
    await copyFile(archiveFixture(fixture), archive);
    await ocikit('tag', archive, 'extra:v2');
    assert.deepEqual(await repoTagsOf(archive), [['example.com/app:latest', 'extra:v2']]);
    await ocikit('tag', `${archive}:extra:v2`, 'example.com/other:1');
    assert.deepEqual(await repoTagsOf(archive), [['example.com/app:latest', 'extra:v2', 'example.com/other:1']]);
    await ocikit('untag', `${archive}:example.com/app:latest`);
    assert.deepEqual(await repoTagsOf(archive), [['extra:v2', 'example.com/other:1']]);
    await ocikit('untag', `docker-archive:${archive}:extra:v2`);
    assert.deepEqual(await repoTagsOf(archive), [['example.com/other:1']]);
    const inspect = await runOcikit(['inspect', '--json', `${archive}:example.com/other:1`]);
    assert.equal(inspect.code, 0, describeRun(inspect));
  });
}
