import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HashPool } from '../../src/hash/pool.js';

/** A pool of the real hashing worker that counts the requests its workers answered. */
export function countingPool(program?: URL): { threads: HashPool; answered: () => number } {
  const threads = program ? new HashPool(program) : new HashPool();
  let answered = 0;
  const run = threads.run.bind(threads);
  threads.run = (...args) => {
    const running = run(...args);
    running?.then(() => answered++, () => undefined);
    return running;
  };
  return { threads, answered: () => answered };
}

/** A worker program (an ES module, in `dir`) standing in for the hashing worker, to make one misbehave. */
export async function workerProgram(dir: string, source: string): Promise<URL> {
  const file = join(dir, 'worker.mjs');
  await writeFile(file, `import { parentPort } from 'node:worker_threads';\n${source}\n`);
  return pathToFileURL(file);
}
