/**
 * Concurrent writers: eight ocikit processes change one layout at the same time, 25 times each. No
 * change may be lost: every one is in the final index.json (or the manifest, for annotations), or the
 * process that made it failed loudly (exit 2, "layout is locked"); with --wait every one lands.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { checkLayout } from './helpers/layout-check.js';
import { assertCleanError, describeRun, hasCommand, runOcikit, type RunResult } from './helpers/ocikit-process.js';
import { layoutFixture, scratchDir } from './helpers/scratch.js';

const WORKERS = 8;
const CHANGES_PER_WORKER = 25;
const REF_NAME = 'org.opencontainers.image.ref.name';

const { dir: root, cleanup } = await scratchDir('concurrency');
test.after(cleanup);

interface Change {
  worker: number;
  n: number;
  kind: 'tag' | 'annotate';
  args: string[];
  result?: RunResult;
}

/** Each worker runs its changes one after another; the workers run side by side. */
async function runWorkers(plan: (worker: number, n: number) => Change): Promise<Change[]> {
  const changes: Change[] = [];
  await Promise.all(Array.from({ length: WORKERS }, async (_, worker) => {
    for (let n = 0; n < CHANGES_PER_WORKER; n++) {
      const change = plan(worker, n);
      change.result = await runOcikit(change.args, { timeoutMs: 180_000 });
      changes.push(change);
    }
  }));
  return changes;
}

interface Layout {
  tags: Set<string>;
  annotations: Map<string, string>;
}

/** The tags in index.json and the annotations of the one image they all name. */
async function readLayout(layout: string): Promise<Layout> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const digests = new Set(index.manifests.map((m) => m.digest));
  assert.equal(digests.size, 1, `every tag names the same (latest) manifest: ${[...digests].join(', ')}`);
  const [digest] = digests;
  const manifest = JSON.parse(await readFile(join(layout, 'blobs', 'sha256', digest!.slice(7)), 'utf8')) as { annotations?: Record<string, string> };
  return {
    tags: new Set(index.manifests.map((m) => m.annotations?.[REF_NAME]).filter((t): t is string => !!t)),
    annotations: new Map(Object.entries(manifest.annotations ?? {})),
  };
}

function assertLanded(change: Change, layout: Layout): void {
  const name = `w${change.worker}-${change.n}`;
  if (change.kind === 'tag') assert.ok(layout.tags.has(name), `tag ${name} succeeded (exit 0) but is missing from index.json`);
  else assert.equal(layout.annotations.get(`org.example.${name}`), '1', `annotation ${name} succeeded (exit 0) but is missing`);
}

async function freshLayout(name: string): Promise<string> {
  const layout = join(root, name);
  await cp(layoutFixture('app'), layout, { recursive: true });
  return layout;
}

test(`${WORKERS} processes tagging ${CHANGES_PER_WORKER} times each without --wait: every success lands, every loser says the layout is locked`, { timeout: 240_000 }, async (t) => {
  const layout = await freshLayout('no-wait');
  const changes = await runWorkers((worker, n) => ({ worker, n, kind: 'tag', args: ['tag', `${layout}:latest`, `w${worker}-${n}`] }));
  const final = await readLayout(layout);
  const won = changes.filter((c) => c.result!.code === 0);
  for (const c of changes) {
    if (c.result!.code === 0) assertLanded(c, final);
    else assertCleanError(c.result!, [2], /layout is locked/);
  }
  assert.equal(final.tags.size, won.length + 1, 'exactly the successful tags (and latest) are present: nothing lost, nothing extra');
  assert.ok(won.length > 0, 'some writers got through');
  assert.deepEqual((await checkLayout(layout)).problems, []);
  t.diagnostic(`${won.length} of ${changes.length} tags landed; ${changes.length - won.length} were refused with "layout is locked"`);
});

test(`${WORKERS} processes changing one layout ${CHANGES_PER_WORKER} times each with --wait: all ${WORKERS * CHANGES_PER_WORKER} changes land`, { timeout: 300_000 }, async (t) => {
  const layout = await freshLayout('wait');
  // Annotations rewrite the manifest (and every index.json entry naming it) while tags are added: a
  // read outside the lock would lose one or the other.
  const annotate = hasCommand('annotate');
  const changes = await runWorkers((worker, n) => (annotate && n % 2 === 1
    ? { worker, n, kind: 'annotate', args: ['annotate', '--wait', layout, '--set', `org.example.w${worker}-${n}=1`] }
    : { worker, n, kind: 'tag', args: ['tag', '--wait', `${layout}:latest`, `w${worker}-${n}`] }));
  for (const c of changes) assert.equal(c.result!.code, 0, describeRun(c.result!));
  const final = await readLayout(layout);
  for (const c of changes) assertLanded(c, final);
  const tags = changes.filter((c) => c.kind === 'tag').length;
  assert.equal(final.tags.size, tags + 1);
  assert.deepEqual((await checkLayout(layout)).problems, []);
  t.diagnostic(`${tags} tags${annotate ? ` and ${changes.length - tags} annotations` : ''} by ${WORKERS} concurrent processes, none lost`);
});

test('concurrent rewrites of one archive never lose an update: each lands or fails loudly', { timeout: 120_000 }, async () => {
  const archive = join(root, 'image.tar');
  const made = await runOcikit(['convert', layoutFixture('app'), `oci-archive:${archive}`]);
  assert.equal(made.code, 0, describeRun(made));
  const results = await Promise.all(Array.from({ length: 6 }, (_, i) => runOcikit(['tag', '--wait', `${archive}:latest`, `a${i}`])));
  const inspect = await runOcikit(['ls', '--json', archive]);
  assert.equal(inspect.code, 0, describeRun(inspect));
  const tags = new Set((JSON.parse(inspect.stdout) as Array<{ tag: string | null }>).map((e) => e.tag));
  results.forEach((r, i) => {
    if (r.code === 0) assert.ok(tags.has(`a${i}`), `tag a${i} reported success but is not in the archive`);
    else assertCleanError(r, [2], /(rewritten|replaced) by another process|layout is locked/);
  });
  assert.ok(results.some((r) => r.code === 0));
});

/** A pid that belonged to a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

test(`a stale lock taken over by ${WORKERS} queued writers at once loses no update`, { timeout: 240_000 }, async (t) => {
  // Judging a lock stale and removing it are two steps: unserialised, a second breaker removed the lock
  // the first one had just made, and two writers ran at once (about one round in five lost a tag).
  const ROUNDS = 16;
  for (let round = 0; round < ROUNDS; round++) {
    const layout = await freshLayout(`stale-${round}`);
    await writeFile(join(layout, '.ocikit-lock'), `${await deadPid()} ${hostname()}\n`);
    const results = await Promise.all(Array.from({ length: WORKERS }, (_, i) => runOcikit(['tag', '--wait', `${layout}:latest`, `s${i}`], { timeoutMs: 60_000 })));
    for (const r of results) assert.equal(r.code, 0, describeRun(r));
    const final = await readLayout(layout);
    assert.equal(final.tags.size, WORKERS + 1, `round ${round}: every tag lands (${[...final.tags].sort().join(', ')})`);
    assert.deepEqual((await readdir(layout)).filter((n) => n.startsWith('.ocikit')), [], 'no lock or temp file is left');
  }
  t.diagnostic(`${ROUNDS} rounds of ${WORKERS} writers taking over a dead process's lock, none lost`);
});
