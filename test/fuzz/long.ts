/**
 * `npm run fuzz`: the long fuzz run. 10,000 mutated fixtures through the library (inspect, verify,
 * convert, annotate), and every Nth one through the CLI as well, several cases at a time.
 *
 *   npm run fuzz -- [--runs 10000] [--seed N] [--cli-every 10] [--parallel CPUS] [--stop-on-failure]
 *
 * Every failure is printed with its seed and case index; `--seed S --only I` reruns one case.
 * Exits 1 when any case failed.
 */
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { describeCase, fuzzCase, inCaseDir, loadCorpus, materialize, runCli, runLibrary, type FuzzCase } from '../helpers/fuzz-cases.js';
import { scratchDir } from '../helpers/scratch.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    seed: { type: 'string' },
    'cli-every': { type: 'string', default: '10' },
    parallel: { type: 'string', default: String(Math.max(1, availableParallelism())) },
    only: { type: 'string' },
    'stop-on-failure': { type: 'boolean', default: false },
  },
});

const runs = Number(values.runs);
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
const cliEvery = Math.max(1, Number(values['cli-every']));
const parallel = Math.max(1, Number(values.parallel));

const corpus = await loadCorpus();
const cases: FuzzCase[] = fc.sample(fuzzCase(corpus), { numRuns: runs, seed });
const selected = values.only === undefined ? cases.map((c, i) => [i, c] as const) : [[Number(values.only), cases[Number(values.only)]!] as const];
const { dir: root, cleanup } = await scratchDir('fuzz-long');

// A library bug can surface as a rejection nobody awaits; it is a failure of the case running then.
let unhandled: unknown;
process.on('unhandledRejection', (err) => {
  unhandled = err;
});

const failures: string[] = [];
let done = 0;
let next = 0;
const started = Date.now();

async function runCase(home: string, i: number, c: FuzzCase): Promise<void> {
  try {
    await inCaseDir(home, i, async (dir) => {
      const input = await materialize(corpus, c, dir);
      await runLibrary(input, dir);
      if (i % cliEvery === 0) await runCli(input, dir);
    });
    if (unhandled !== undefined) throw unhandled;
  } catch (err) {
    unhandled = undefined;
    const text = `case ${i} (seed ${seed}): ${describeCase(c, corpus)}\n  ${String((err as Error)?.message ?? err).split('\n').slice(0, 8).join('\n  ')}`;
    failures.push(text);
    process.stdout.write(`\nFAIL ${text}\n`);
  }
  done++;
  if (done % 100 === 0 || done === selected.length) {
    const rate = done / ((Date.now() - started) / 1000);
    process.stdout.write(`${done}/${selected.length} cases, ${failures.length} failed, ${rate.toFixed(1)} cases/s\n`);
  }
}

/** Each worker has its own directory, so a case can check that nothing appeared beside its own. */
async function worker(k: number): Promise<void> {
  const home = join(root, `worker-${k}`);
  await mkdir(home);
  while (next < selected.length) {
    if (values['stop-on-failure'] && failures.length > 0) return;
    const [i, c] = selected[next++]!;
    await runCase(home, i, c);
  }
}

process.stdout.write(`fuzzing ${selected.length} cases (seed ${seed}, CLI every ${cliEvery}, ${parallel} at a time)\n`);
try {
  await Promise.all(Array.from({ length: parallel }, (_, k) => worker(k)));
} finally {
  await cleanup();
}
process.stdout.write(`${failures.length === 0 ? 'no failures' : `${failures.length} failures`} in ${done} cases (seed ${seed})\n`);
process.exitCode = failures.length === 0 ? 0 : 1;
