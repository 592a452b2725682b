/**
 * Kills a writing ocikit command with SIGKILL at chosen moments and judges what it leaves behind.
 * Used by test/crash-safety.test.ts (a few hundred trials) and bench/soak.ts (as many as you like).
 *
 * Most of a short command's life is Node starting up, so kill moments are placed relative to the first
 * file-system event in the directory the command writes to (its lock, temp file or staging directory),
 * spread over the measured write phase; some are placed relative to the spawn, to cover start-up too.
 */
import assert from 'node:assert/strict';
import { watch } from 'node:fs';
import { cp, lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { checkLayout, TEMP_PREFIX } from './layout-check.js';
import { describeRun, finish, hasCommand, runOcikit, startOcikit, type RunResult } from './ocikit-process.js';
import { seededRandom } from './scratch.js';
import { diffTrees, snapshotTree, type TreeSnapshot } from './tree-snapshot.js';

/** What a scenario changes, which decides what "exactly the old or exactly the new state" means. */
export type TargetKind = 'layout-in-place' | 'layout-new' | 'file-in-place' | 'file-new';

export interface Scenario {
  name: string;
  /** The command that must exist in the built CLI (annotate, rebase, gc land separately). */
  command: string;
  kind: TargetKind;
  /** Prepares a fresh workspace (inputs and, for in-place scenarios, the target). */
  setup(ws: string): Promise<void>;
  args(ws: string): string[];
  target(ws: string): string;
  /** A write that must succeed afterwards and clean up what the killed run left; default: the same command. */
  recover?(ws: string): string[];
}

/** The target's state before the command and after a run that was not killed. */
export interface Reference {
  old: TargetState;
  new: TargetState;
  /**
   * Ms from spawn to the first write event, and from there to exit, of recent unkilled runs. Trials
   * keep adding to them, so kill moments follow the machine's load instead of one calibration.
   */
  startups: number[];
  writePhases: number[];
}

const recentMedian = (samples: number[]): number => median(samples.slice(-7));
export const startupOf = (ref: Reference): number => recentMedian(ref.startups);
export const writePhaseOf = (ref: Reference): number => Math.max(recentMedian(ref.writePhases), 5);

/** index.json bytes for layouts changed in place, a whole-tree snapshot for new layouts, file bytes for tarballs. */
type TargetState = { absent: true } | { index: Buffer; blobs: TreeSnapshot } | { tree: TreeSnapshot } | { bytes: Buffer };

export interface TrialOutcome {
  killed: boolean;
  /** 'old', 'new', or (new layouts and files only) 'absent'. */
  state: 'old' | 'new';
  /** Temp files, staging directories or a lock the killed run left behind. */
  leftovers: string[];
}

// ---------------------------------------------------------------------------
// Reference runs
// ---------------------------------------------------------------------------

export async function referenceRun(s: Scenario, ws: string, runs = 2): Promise<Reference> {
  const startups: number[] = [];
  const phases: number[] = [];
  let before: TargetState | undefined;
  let after: TargetState | undefined;
  for (let i = 0; i < runs; i++) {
    const dir = join(ws, `ref-${i}`);
    await mkdir(dir, { recursive: true });
    await s.setup(dir);
    before = await captureState(s.kind, s.target(dir));
    const started = performance.now();
    let firstEvent: number | undefined;
    const watcher = watch(watchDirOf(s, dir), () => (firstEvent ??= performance.now()));
    const r = await runOcikit(s.args(dir));
    const ended = performance.now();
    watcher.close();
    assert.equal(r.code, 0, `reference run of ${s.name}: ${describeRun(r)}`);
    after = await captureState(s.kind, s.target(dir));
    startups.push((firstEvent ?? ended) - started);
    phases.push(ended - (firstEvent ?? ended));
  }
  return { old: before!, new: after!, startups, writePhases: phases };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** Where the first sign of writing shows: the layout itself when changed in place, else the output's directory. */
function watchDirOf(s: Scenario, ws: string): string {
  return s.kind === 'layout-in-place' ? s.target(ws) : dirname(s.target(ws));
}

async function captureState(kind: TargetKind, target: string): Promise<TargetState> {
  const info = await lstat(target).catch(() => undefined);
  if (!info) return { absent: true };
  if (kind === 'layout-in-place') return { index: await readFile(join(target, 'index.json')), blobs: await snapshotTree(join(target, 'blobs')) };
  if (kind === 'layout-new') return { tree: await snapshotTree(target) };
  return { bytes: await readFile(target) };
}

// ---------------------------------------------------------------------------
// Trials
// ---------------------------------------------------------------------------

export interface KillPlan {
  /** Kill after this fraction of the write phase (from the first write event), or of start-up when `fromSpawn`. */
  fraction: number;
  fromSpawn: boolean;
}

/**
 * Deterministic kill moments: four in five spread over the write phase (stretched by half, to reach
 * past the commit), one in five around the end of start-up.
 */
export function killPlans(count: number, seed: number): KillPlan[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, (_, i) => (i % 5 === 4
    ? { fromSpawn: true, fraction: 0.6 + random() * 0.6 }
    : { fromSpawn: false, fraction: random() * 1.5 }));
}

/** Runs the command in a fresh workspace, kills it as planned, and checks what is left. */
export async function killTrial(s: Scenario, ref: Reference, ws: string, plan: KillPlan, verifyCli: boolean): Promise<TrialOutcome> {
  await mkdir(ws, { recursive: true });
  await s.setup(ws);
  const delayMs = plan.fraction * (plan.fromSpawn ? startupOf(ref) : writePhaseOf(ref));
  const started = performance.now();
  let firstEvent: number | undefined;
  const child = startOcikit(s.args(ws));
  const result = finish(child, s.args(ws));
  let timer: NodeJS.Timeout | undefined;
  const kill = () => {
    timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
  };
  const watcher = watch(watchDirOf(s, ws), () => (firstEvent ??= performance.now()));
  if (plan.fromSpawn) kill();
  else watcher.once('change', kill);
  const r = await result;
  const ended = performance.now();
  watcher.close();
  clearTimeout(timer);
  const killed = r.signal === 'SIGKILL';
  if (!killed) {
    assert.equal(r.code, 0, `${s.name}: an unkilled run must succeed: ${describeRun(r)}`);
    ref.startups.push((firstEvent ?? ended) - started);
    ref.writePhases.push(ended - (firstEvent ?? ended));
  }
  const outcome = await judgeTarget(s, ref, ws, killed);
  if (verifyCli && outcome.state === 'new' && s.kind.startsWith('layout')) await assertVerifies(s.target(ws));
  if (verifyCli && outcome.state === 'old' && s.kind === 'layout-in-place') await assertVerifies(s.target(ws));
  if (outcome.leftovers.length > 0) await assertRecovers(s, ref, ws);
  return outcome;
}

async function judgeTarget(s: Scenario, ref: Reference, ws: string, killed: boolean): Promise<TrialOutcome> {
  const target = s.target(ws);
  const leftovers = await leftoversOf(s, ws);
  const state = await matchState(s, ref, target);
  if (s.kind.startsWith('layout')) {
    const exists = await lstat(target).then(() => true, () => false);
    if (exists) {
      const report = await checkLayout(target);
      assert.deepEqual(report.problems, [], `${s.name}: the layout is damaged after a kill: ${report.problems.join('; ')}`);
    }
  }
  return { killed, state, leftovers };
}

/** Exactly the old or exactly the new state; anything else fails. */
async function matchState(s: Scenario, ref: Reference, target: string): Promise<'old' | 'new'> {
  const now = await captureState(s.kind, target);
  if (sameState(now, ref.new, s.kind)) return 'new';
  if (sameState(now, ref.old, s.kind)) return 'old';
  assert.fail(`${s.name}: ${target} is neither the old nor the new state: ${describeState(now, ref)}`);
}

function sameState(a: TargetState, b: TargetState, kind: TargetKind): boolean {
  if ('absent' in a || 'absent' in b) return 'absent' in a && 'absent' in b;
  if ('index' in a && 'index' in b) {
    // In place, new blobs may be left unreferenced by a kill before commit, but no old blob may go,
    // unless the command is the one that deletes them (gc deletes only what nothing reaches).
    return a.index.equals(b.index) && (kind !== 'layout-in-place' || oldBlobsKept(b.blobs, a.blobs));
  }
  if ('tree' in a && 'tree' in b) return diffTrees(b.tree, a.tree).length === 0;
  if ('bytes' in a && 'bytes' in b) return a.bytes.equals(b.bytes);
  return false;
}

/** Every blob of `expected` is still there with the same bytes (others may have been added). */
function oldBlobsKept(expected: TreeSnapshot, actual: TreeSnapshot): boolean {
  for (const [name, entry] of expected) {
    if (basename(name).startsWith(TEMP_PREFIX)) continue;
    const now = actual.get(name);
    if (!now || now.content !== entry.content) return false;
  }
  return true;
}

function describeState(now: TargetState, ref: Reference): string {
  if ('absent' in now) return 'absent';
  if ('index' in now && 'index' in ref.old && 'index' in ref.new) {
    return `index.json ${now.index.equals(ref.old.index) ? 'old' : now.index.equals(ref.new.index) ? 'new' : `other: ${now.index.toString().slice(0, 300)}`}; `
      + `blobs vs old: ${diffTrees(ref.old.blobs, now.blobs).slice(0, 5).join(', ')}; vs new: ${diffTrees(ref.new.blobs, now.blobs).slice(0, 5).join(', ')}`;
  }
  if ('tree' in now && 'tree' in ref.new) return `differs from the new layout: ${diffTrees(ref.new.tree, now.tree).slice(0, 10).join(', ')}`;
  if ('bytes' in now) return `${now.bytes.length} bytes`;
  return 'unexpected';
}

/** Temp files, staging directories and locks in the target and beside it. */
async function leftoversOf(s: Scenario, ws: string): Promise<string[]> {
  const target = s.target(ws);
  const found: string[] = [];
  const scan = async (dir: string) => {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (name.startsWith(TEMP_PREFIX) || name.endsWith('.ocikit-lock')) found.push(join(dir, name));
    }
  };
  await scan(dirname(target));
  if (s.kind.startsWith('layout')) {
    await scan(target);
    for (const alg of await readdir(join(target, 'blobs')).catch(() => [] as string[])) await scan(join(target, 'blobs', alg));
  }
  return found;
}

/** The next write succeeds (a stale lock is taken over) and removes what the killed run left. */
async function assertRecovers(s: Scenario, ref: Reference, ws: string): Promise<void> {
  const args = s.recover?.(ws) ?? s.args(ws);
  const r = await runOcikit(args);
  assert.equal(r.code, 0, `${s.name}: the write after a kill must succeed: ${describeRun(r)}`);
  const left = await leftoversOf(s, ws);
  assert.deepEqual(left, [], `${s.name}: the write after a kill left stale files`);
  if (!s.recover) assert.equal(await matchState(s, ref, s.target(ws)), 'new', `${s.name}: re-running the command gives the new state`);
  if (s.kind.startsWith('layout')) {
    const report = await checkLayout(s.target(ws));
    assert.deepEqual(report.problems, [], `${s.name}: after recovery: ${report.problems.join('; ')}`);
  }
}

/** `ocikit verify` agrees the layout is sound (once that command exists). */
async function assertVerifies(layout: string): Promise<RunResult | undefined> {
  if (!hasCommand('verify')) return undefined;
  const r = await runOcikit(['verify', layout]);
  assert.equal(r.code, 0, `ocikit verify after a kill: ${describeRun(r)}`);
  return r;
}

// ---------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------

export interface ScenarioInputs {
  /** Read-only fixture layouts and the big source layout (never written by any scenario). */
  layout(name: string): string;
  bigLayout: string;
  bigArchive: string;
}

export function scenarios(inputs: ScenarioInputs): Scenario[] {
  const copyLayout = (name: string) => async (ws: string) => {
    await cp(inputs.layout(name), join(ws, 'layout'), { recursive: true });
  };
  const layout = (ws: string) => join(ws, 'layout');
  const tagRecover = (ws: string) => ['tag', `${layout(ws)}:latest`, 'recovered'];
  const all: Scenario[] = [
    { name: 'tag', command: 'tag', kind: 'layout-in-place', setup: copyLayout('app'), args: (ws) => ['tag', `${layout(ws)}:latest`, 'v2'], target: layout },
    {
      name: 'untag', command: 'untag', kind: 'layout-in-place',
      async setup(ws) {
        // A second tag on the same image, so the layout still names an image after the untag.
        await copyLayout('app')(ws);
        const index = JSON.parse(await readFile(join(layout(ws), 'index.json'), 'utf8')) as { manifests: Array<Record<string, unknown>> };
        index.manifests.push({ ...index.manifests[0], annotations: { 'org.opencontainers.image.ref.name': 'old' } });
        await writeFile(join(layout(ws), 'index.json'), JSON.stringify(index));
      },
      args: (ws) => ['untag', `${layout(ws)}:old`], target: layout, recover: tagRecover,
    },
    {
      name: 'annotate', command: 'annotate', kind: 'layout-in-place', setup: copyLayout('app'),
      args: (ws) => ['annotate', layout(ws), '--set', 'org.example.crash=1'], target: layout, recover: tagRecover,
    },
    {
      name: 'rebase', command: 'rebase', kind: 'layout-in-place', setup: copyLayout('app'),
      args: (ws) => ['rebase', layout(ws), '--old-base', inputs.layout('base'), '--new-base', inputs.layout('base-v2')], target: layout, recover: tagRecover,
    },
    {
      name: 'gc', command: 'gc', kind: 'layout-in-place',
      async setup(ws) {
        // Garbage worth deleting: the big image's blobs, unreferenced in the app layout.
        await cp(inputs.layout('app'), layout(ws), { recursive: true });
        await cp(join(inputs.bigLayout, 'blobs'), join(layout(ws), 'blobs'), { recursive: true });
      },
      args: (ws) => ['gc', layout(ws)], target: layout, recover: tagRecover,
    },
    {
      name: 'convert into an existing layout', command: 'convert', kind: 'layout-in-place', setup: copyLayout('app'),
      args: (ws) => ['convert', inputs.bigLayout, `oci:${layout(ws)}`], target: layout, recover: tagRecover,
    },
    {
      name: 'convert to a new layout', command: 'convert', kind: 'layout-new', setup: async () => {},
      args: (ws) => ['convert', inputs.bigLayout, `oci:${join(ws, 'new-layout')}`], target: (ws) => join(ws, 'new-layout'),
    },
    {
      name: 'convert to oci-archive', command: 'convert', kind: 'file-new', setup: async () => {},
      args: (ws) => ['convert', inputs.bigLayout, `oci-archive:${join(ws, 'out.tar')}`], target: (ws) => join(ws, 'out.tar'),
    },
    {
      name: 'convert to docker-archive', command: 'convert', kind: 'file-new', setup: async () => {},
      args: (ws) => ['convert', inputs.bigLayout, `docker-archive:${join(ws, 'out.docker.tar')}`], target: (ws) => join(ws, 'out.docker.tar'),
    },
    {
      name: 'tag inside an oci-archive (rewritten in place)', command: 'tag', kind: 'file-in-place',
      async setup(ws) {
        await cp(inputs.bigArchive, join(ws, 'image.tar'));
      },
      args: (ws) => ['tag', `${join(ws, 'image.tar')}:big`, 'v2'], target: (ws) => join(ws, 'image.tar'),
    },
  ];
  return all.filter((s) => hasCommand(s.command));
}
