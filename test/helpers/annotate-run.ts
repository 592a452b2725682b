/** annotate driven as the CLI drives it: the library in place with a writer aborted on failure, and the CLI from source. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { annotate, type AnnotateOptions, type AnnotateResult } from '../../src/ops/annotate.js';
import { openStore, openWriter } from '../../src/store/open.js';
import { parseReference } from '../../src/store/reference.js';
import { finish, REPO_ROOT, type RunResult } from './ocikit-process.js';

export async function annotateRef(text: string, options: AnnotateOptions): Promise<AnnotateResult> {
  const ref = parseReference(text);
  const store = await openStore(ref);
  if (options.dryRun) return annotate(store, undefined, { selector: ref.selector, ...options });
  const writer = await openWriter({ ...ref, selector: undefined }, { base: store });
  try {
    return await annotate(store, writer, { selector: ref.selector, ...options });
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/**
 * The CLI run from this tree's source (through tsx), for what the CLI itself decides and prints:
 * `runOcikit` runs the built bundle, which a change to src/ does not reach until `npm run build`.
 */
export function runSourceCli(args: string[]): Promise<RunResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src', 'cli', 'main.ts'), ...args], {
    cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  return finish(child, args);
}
