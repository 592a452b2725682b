/**
 * Runs the built CLI (`node bin/ocikit.js`) as a child process, the way users run it, and checks the
 * error contract every failure must keep: one line, exit code 1 or 2, never an internal error or a stack.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const OCIKIT_BIN = join(REPO_ROOT, 'bin', 'ocikit.js');
export const TESTDATA = join(REPO_ROOT, 'testdata');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The command line, for assertion messages. */
  command: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Run as this user (tests run as root, which no file mode stops). */
  uid?: number;
  gid?: number;
  timeoutMs?: number;
}

/** Starts ocikit without waiting; the caller may kill it. */
export function startOcikit(args: string[], options: RunOptions = {}): ChildProcess {
  const spawnOptions: SpawnOptions = {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  };
  if (options.uid !== undefined) spawnOptions.uid = options.uid;
  if (options.gid !== undefined) spawnOptions.gid = options.gid;
  return spawn(process.execPath, [OCIKIT_BIN, ...args], spawnOptions);
}

/** Collects a started process's output and outcome. */
export function finish(child: ChildProcess, args: string[], timeoutMs = 60_000): Promise<RunResult> {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout?.on('data', (c: Buffer) => stdout.push(c));
  child.stderr?.on('data', (c: Buffer) => stderr.push(c));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ocikit ${args.join(' ')}: still running after ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({
        code, signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        command: `ocikit ${args.join(' ')}`,
      });
    });
  });
}

export function runOcikit(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return finish(startOcikit(args, options), args, options.timeoutMs);
}

let helpText: string | undefined;

/** Whether the built CLI has a command (other engineers land commands while these tests exist). */
export function hasCommand(name: string): boolean {
  helpText ??= spawnSync(process.execPath, [OCIKIT_BIN, '--help'], { encoding: 'utf8' }).stdout;
  return new RegExp(`^\\s+ocikit ${name}\\b`, 'm').test(helpText);
}

export function describeRun(r: RunResult): string {
  return `${r.command} → exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 2000)}`;
}

/** The stderr of a failure: one `ocikit: …` line, no internal error, no stack trace. */
export function assertCleanError(r: RunResult, codes: number[] = [1, 2], mentions?: RegExp): void {
  assert.ok(r.code !== null && codes.includes(r.code), `expected exit ${codes.join(' or ')}: ${describeRun(r)}`);
  assertNoCrash(r);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.ok(lines.length >= 1, `a failure says why on stderr: ${describeRun(r)}`);
  const errorLines = lines.filter((l) => l.startsWith('ocikit: ') && !l.startsWith('ocikit: warning'));
  assert.equal(errorLines.length, 1, `exactly one error line: ${describeRun(r)}`);
  if (mentions) assert.match(errorLines[0]!, mentions, describeRun(r));
}

/** Whatever the outcome: an exit code of the contract, no internal error, no stack trace. */
export function assertNoCrash(r: RunResult): void {
  assert.equal(r.signal, null, `killed by a signal: ${describeRun(r)}`);
  assert.ok(r.code === 0 || r.code === 1 || r.code === 2, `exit code outside 0/1/2: ${describeRun(r)}`);
  assert.doesNotMatch(r.stderr, /internal error/i, `internal error: ${describeRun(r)}`);
  assert.doesNotMatch(r.stderr, /^\s+at .+[:(]\d+:\d+\)?$/m, `stack trace: ${describeRun(r)}`);
  assert.doesNotMatch(r.stderr, /\b(TypeError|RangeError|ReferenceError|SyntaxError|AssertionError)\b/, `uncaught JS error: ${describeRun(r)}`);
}
