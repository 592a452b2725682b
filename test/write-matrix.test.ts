/**
 * Every writing command × every kind of destination: whatever a command writes, every image and tag
 * already in the destination stays, ocikit's verify passes, and skopeo reads the same bystander image.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, cp } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { assertNoCrash, describeRun, runOcikit } from './helpers/ocikit-process.js';
import { archiveFixture, layoutFixture, scratchDir } from './helpers/scratch.js';

type Kind = 'oci' | 'oci-archive' | 'docker-archive' | 'legacy';

interface Entry { tag: string | null; digest: string }

/** A destination holding the app image and a bystander that no command in the matrix names. */
interface Destination {
  kind: Kind;
  path: string;
  transport: 'oci' | 'oci-archive' | 'docker-archive';
  /** The app image's name in it, and a new name a command writes. */
  app: string;
  fresh: string;
  /** Every entry present before the command, which must all stay (but the one the command moves). */
  before: Entry[];
  bystander: string;
}

const hasSkopeo = spawnSync('skopeo', ['--version']).status === 0;

async function ocikit(...args: string[]): Promise<string> {
  const r = await runOcikit(args);
  assertNoCrash(r);
  assert.equal(r.code, 0, describeRun(r));
  return r.stdout;
}

async function entries(ref: string): Promise<Entry[]> {
  return (JSON.parse(await ocikit('ls', ref, '--json')) as Entry[]).map(({ tag, digest }) => ({ tag, digest }));
}

async function destination(dir: string, kind: Kind): Promise<Destination> {
  const base = `oci:${layoutFixture('base')}:1.0`;
  let d: Omit<Destination, 'before'>;
  if (kind === 'oci') {
    const path = join(dir, 'dest');
    await cp(layoutFixture('app'), path, { recursive: true });
    d = { kind, path, transport: 'oci', app: 'latest', fresh: 'v2', bystander: 'keep' };
    await ocikit('copy', base, `oci:${path}:keep`);
  } else if (kind === 'oci-archive') {
    const path = join(dir, 'dest.tar');
    await ocikit('convert', `oci:${layoutFixture('app')}:latest`, `oci-archive:${path}:latest`);
    d = { kind, path, transport: 'oci-archive', app: 'latest', fresh: 'v2', bystander: 'keep' };
    await ocikit('copy', base, `oci-archive:${path}:keep`);
  } else if (kind === 'docker-archive') {
    const path = join(dir, 'dest.tar');
    await copyFile(archiveFixture('app.docker25.tar'), path);
    d = { kind, path, transport: 'docker-archive', app: 'example.com/app:latest', fresh: 'example.com/app:v2', bystander: 'example.com/keep:1.0' };
    await ocikit('copy', base, `docker-archive:${path}:example.com/keep:1.0`);
  } else {
    // A legacy docker save holds one image; the app is its own bystander for the cross-store writes.
    const path = join(dir, 'dest.tar');
    await copyFile(archiveFixture('app.docker.tar'), path);
    d = { kind, path, transport: 'docker-archive', app: 'example.com/app:latest', fresh: 'example.com/app:v2', bystander: 'example.com/app:latest' };
  }
  return { ...d, before: await entries(d.path) };
}

const ref = (d: Destination, tag: string) => `${d.transport}:${d.path}:${tag}`;
const sourceLayout = async (dir: string) => {
  const path = join(dir, 'src');
  await cp(layoutFixture('app'), path, { recursive: true });
  return path;
};
const newBase = `oci:${layoutFixture('base-v2')}:2.0`;
/** Docker-typed images cannot carry annotations: they are converted in the same run. */
const ociTypes = (d: Destination) => (d.transport === 'docker-archive' ? ['--oci-media-types'] : []);

/** What every row checks afterwards: the entries that were there stay, verify passes, skopeo agrees. */
async function assertKept(d: Destination, moved: string | undefined, written: string | undefined): Promise<void> {
  const after = await entries(d.path);
  for (const e of d.before) {
    if (e.tag === moved) continue;
    assert.ok(after.some((a) => a.tag === e.tag && a.digest === e.digest), `${d.kind}: ${e.tag ?? '(untagged)'} ${e.digest} was lost: now ${JSON.stringify(after)}`);
  }
  if (written) assert.ok(after.some((a) => a.tag === written), `${d.kind}: ${written} was not written: ${JSON.stringify(after)}`);
  const v = await runOcikit(['verify', d.path]);
  assert.equal(v.code, 0, describeRun(v));
  if (!hasSkopeo) return;
  const bystander = d.before.find((e) => e.tag === d.bystander);
  if (!bystander || moved === d.bystander) return;
  const raw = spawnSync('skopeo', ['--insecure-policy', 'inspect', '--raw', ref(d, d.bystander)], { encoding: 'utf8' });
  assert.equal(raw.status, 0, `skopeo inspect --raw ${ref(d, d.bystander)}: ${raw.stderr}`);
  const ours = JSON.parse(await ocikit('inspect', ref(d, d.bystander), '--json')) as unknown;
  const config = (JSON.parse(raw.stdout) as { config: { digest: string } }).config.digest;
  assert.ok(JSON.stringify(ours).includes(config), `${d.kind}: skopeo reads ${d.bystander} with config ${config}, ocikit another`);
}

type Row = { name: string; run: (d: Destination, dir: string) => Promise<{ moved?: string; written?: string }> };

/** Commands that change the destination in place. */
const inPlace: Row[] = [
  { name: 'tag', run: async (d) => (await ocikit('tag', ref(d, d.app), d.fresh), { written: d.fresh }) },
  {
    name: 'untag', run: async (d) => {
      await ocikit('tag', ref(d, d.app), d.fresh);
      await ocikit('untag', ref(d, d.fresh));
      return {};
    },
  },
  { name: 'annotate', run: async (d) => (await ocikit('annotate', ref(d, d.app), '--set', 'matrix.key=v', ...ociTypes(d)), { moved: d.app, written: d.app }) },
  {
    name: 'rebase', run: async (d) => {
      await ocikit('rebase', ref(d, d.app), '--new-base', newBase, '--base-name', 'example.com/base', ...ociTypes(d));
      return { moved: d.app, written: d.app };
    },
  },
];

/** Commands that write an image from another layout into the destination. */
const intoDestination: Row[] = [
  { name: 'convert', run: async (d, dir) => (await ocikit('convert', `oci:${await sourceLayout(dir)}:latest`, ref(d, d.fresh)), { written: d.fresh }) },
  { name: 'copy', run: async (d, dir) => (await ocikit('copy', `oci:${await sourceLayout(dir)}:latest`, ref(d, d.fresh)), { written: d.fresh }) },
  { name: 'annotate -o', run: async (d, dir) => (await ocikit('annotate', `oci:${await sourceLayout(dir)}:latest`, '--set', 'matrix.key=v', '-o', ref(d, d.fresh)), { written: d.fresh }) },
  {
    name: 'rebase -o', run: async (d, dir) => {
      await ocikit('rebase', `oci:${await sourceLayout(dir)}:latest`, '--new-base', newBase, '--base-name', 'example.com/base', '-o', ref(d, d.fresh));
      return { written: d.fresh };
    },
  },
];

/**
 * Rows that fail on main today, kept visible as todo until the engine's one merge and one naming rule land:
 * -o into an existing archive drops its entries, docker-archive names are listed as bare tags, rebase has
 * no --oci-media-types.
 */
const KNOWN_BROKEN = /^(annotate -o|rebase -o) into an existing (oci-archive|docker-archive|legacy)|docker-archive|legacy/;
const todo = (name: string) => (KNOWN_BROKEN.test(name) && !/^(untag|annotate) in place on docker-archive/.test(name) ? { todo: 'known data-loss and naming bugs' } : {});

async function scratch(t: TestContext): Promise<string> {
  const { dir, cleanup } = await scratchDir('matrix');
  t.after(cleanup);
  return dir;
}

for (const kind of ['oci', 'oci-archive', 'docker-archive', 'legacy'] as const) {
  for (const row of inPlace) {
    // A legacy docker save is rewritten in the Docker 25+ form by any change, which the docker-archive rows cover.
    if (kind === 'legacy' && row.name !== 'tag') continue;
    test(`${row.name} in place on ${kind} keeps every other entry`, todo(`${row.name} in place on ${kind}`), async (t) => {
      const d = await destination(await scratch(t), kind);
      const { moved, written } = await row.run(d, '');
      await assertKept(d, moved, written);
    });
  }
  for (const row of intoDestination) {
    test(`${row.name} into an existing ${kind} keeps every entry already there`, todo(`${row.name} into an existing ${kind}`), async (t) => {
      const dir = await scratch(t);
      const d = await destination(dir, kind);
      const { written } = await row.run(d, dir);
      await assertKept(d, undefined, written);
    });
  }
}

for (const row of intoDestination) {
  for (const transport of ['oci', 'oci-archive', 'docker-archive'] as const) {
    test(`${row.name} into a new ${transport} writes a verified store`, todo(`${row.name} into a new ${transport}`), async (t) => {
      const dir = await scratch(t);
      const path = join(dir, transport === 'oci' ? 'new' : 'new.tar');
      const fresh = transport === 'docker-archive' ? 'example.com/app:v2' : 'v2';
      const d: Destination = { kind: transport === 'oci' ? 'oci' : transport, path, transport, app: fresh, fresh, before: [], bystander: fresh };
      await row.run(d, dir);
      await assertKept(d, undefined, fresh);
    });
  }
}
