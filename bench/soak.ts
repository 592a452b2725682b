/**
 * Long kill -9 soak: the crash-safety harness of test/crash-safety.test.ts, for as long as you like.
 *
 *   node --import tsx bench/soak.ts [--trials 500] [--seed N] [--parallel 2] [--only tag,gc] [--layers 8] [--layer-mib 4]
 *
 * Every writing command the built CLI has is run on a fresh copy of a fixture and killed with SIGKILL
 * at a seeded moment; the target must then be exactly the old or the new state and sound, and the
 * next write must take over the lock and remove the temp files. A bigger source image (--layers,
 * --layer-mib) stretches the write phase so more kills land inside it. Exits 1 on any failure and
 * prints the scenario, seed and trial to rerun it.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { killPlans, killTrial, referenceRun, scenarios, writePhaseOf, type TrialOutcome } from '../test/helpers/kill-harness.js';
import { describeRun, runOcikit } from '../test/helpers/ocikit-process.js';
import { layoutFixture, scratchDir, writeBigLayout } from '../test/helpers/scratch.js';

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '500' },
    seed: { type: 'string' },
    parallel: { type: 'string', default: '2' },
    only: { type: 'string' },
    layers: { type: 'string', default: '8' },
    'layer-mib': { type: 'string', default: '4' },
    'verify-every': { type: 'string', default: '10' },
  },
});

const trials = Number(values.trials);
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
const parallel = Math.max(1, Number(values.parallel));
const verifyEvery = Math.max(1, Number(values['verify-every']));
const only = values.only?.split(',').map((s) => s.trim());

const { dir: root, cleanup } = await scratchDir('soak');
let failed = 0;
try {
  const bigLayout = join(root, 'big');
  await writeBigLayout(bigLayout, Number(values.layers), Number(values['layer-mib']) * 1024 * 1024);
  const bigArchive = join(root, 'big.tar');
  const made = await runOcikit(['convert', bigLayout, `oci-archive:${bigArchive}`]);
  if (made.code !== 0) throw new Error(describeRun(made));

  const all = scenarios({ layout: layoutFixture, bigLayout, bigArchive }).filter((s) => !only || only.some((o) => s.name.includes(o)));
  process.stdout.write(`soak: ${all.length} scenarios × ${trials} trials, seed ${seed}, ${parallel} at a time\n`);
  for (const [k, s] of all.entries()) {
    const ws = join(root, `s${k}`);
    await mkdir(ws, { recursive: true });
    const ref = await referenceRun(s, ws, 3);
    const plans = killPlans(trials, seed + k);
    const outcomes: TrialOutcome[] = [];
    let next = 0;
    const worker = async () => {
      while (next < plans.length) {
        const i = next++;
        try {
          outcomes.push(await killTrial(s, ref, join(ws, `t${i}`), plans[i]!, i % verifyEvery === 0));
        } catch (err) {
          failed++;
          process.stdout.write(`\nFAIL ${s.name} trial ${i} (seed ${seed + k}, kill ${JSON.stringify(plans[i])}): ${String((err as Error).message).split('\n').slice(0, 6).join('\n  ')}\n`);
        }
        await import('node:fs/promises').then((fs) => fs.rm(join(ws, `t${i}`), { recursive: true, force: true }));
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    const killed = outcomes.filter((o) => o.killed);
    const count = (state: string) => killed.filter((o) => o.state === state).length;
    process.stdout.write(`${s.name}: write phase ${writePhaseOf(ref).toFixed(0)} ms; ${killed.length}/${outcomes.length} killed `
      + `(${count('old')} old, ${count('new')} new), ${outcomes.filter((o) => o.leftovers.length > 0).length} recovered from leftovers\n`);
  }
} finally {
  await cleanup();
}
process.stdout.write(failed === 0 ? 'soak: no failures\n' : `soak: ${failed} failures\n`);
process.exitCode = failed === 0 ? 0 : 1;
