/**
 * The short fuzz run inside `npm test` (the long one is `npm run fuzz`): mutated fixtures through the
 * library in process (many cases) and through the CLI (fewer: each costs a few process starts).
 * Seeds are fixed so a CI failure reproduces; `OCIKIT_FUZZ_SEED` explores others.
 */
import { test } from 'node:test';
import fc from 'fast-check';
import { describeCase, fuzzCase, type FuzzCase, inCaseDir, loadCorpus, materialize, runCli, runLibrary } from './helpers/fuzz-cases.js';
import { scratchDir } from './helpers/scratch.js';

const SEED = Number(process.env.OCIKIT_FUZZ_SEED ?? 20240101);
const LIBRARY_RUNS = Number(process.env.OCIKIT_FUZZ_LIBRARY_RUNS ?? 200);
const CLI_RUNS = Number(process.env.OCIKIT_FUZZ_CLI_RUNS ?? 12);

const corpus = await loadCorpus();
const { dir: root, cleanup } = await scratchDir('fuzz');
test.after(cleanup);
let n = 0;

test(`library: ${LIBRARY_RUNS} mutated inputs through inspect, verify, convert and annotate fail only with reportable errors`, { timeout: 180_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(fuzzCase(corpus), (c) => inCaseDir(root, n++, async (dir) => {
      await runLibrary(await materialize(corpus, c, dir), dir);
    })),
    { numRuns: LIBRARY_RUNS, seed: SEED, reporter: (details) => reportFailure(details) },
  );
});

test(`CLI: ${CLI_RUNS} mutated inputs: exit 0, 1 or 2, one-line errors, no stack trace, nothing written outside the target`, { timeout: 180_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(fuzzCase(corpus), (c) => inCaseDir(root, n++, async (dir) => {
      await runCli(await materialize(corpus, c, dir), dir);
    })),
    { numRuns: CLI_RUNS, seed: SEED + 1, reporter: (details) => reportFailure(details) },
  );
});

function reportFailure(details: fc.RunDetails<[FuzzCase]>): void {
  if (!details.failed) return;
  const c = details.counterexample?.[0];
  throw new Error(`fuzz case failed (seed ${details.seed}, path ${details.counterexamplePath}): ${c ? describeCase(c, corpus) : '?'}\n${String(details.errorInstance)}`);
}
