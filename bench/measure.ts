// Runs a shell command N times and reports median wall time and peak RSS.
// Wall time is taken around spawnSync; peak RSS comes from GNU time's %M
// (max over the command and its waited-for children, i.e. the largest single
// process of a pipeline, not their sum). Each run may have a `prepare` step
// (e.g. a fresh copy of a layout) that runs outside the timing.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface Command {
  /** Shell command, run with `bash -c` (pipefail on). */
  sh: string;
  /** Shell command run before every run (warm-up included), outside the timing. */
  prepare?: string;
  cwd?: string;
}
export type Measurement =
  | { ok: true; wall: number; rssMiB: number | null; runs: number[] }
  | { ok: false; error: string };
export interface MeasureOptions { runs: number; warmup: number; timeoutSec: number }

const GNU_TIME = '/usr/bin/time';
const hasGnuTime = fs.existsSync(GNU_TIME);

/** The most informative line of stderr: an error-looking line, else the first non-empty one. */
export function firstErrorLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('at ') && !l.startsWith('node:internal'));
  const line = lines.find((l) => /error|fatal|not found|no such|cannot|invalid|denied|failed/i.test(l)) ?? lines[0] ?? '';
  return line.replace(/^error:\s*/i, '').slice(0, 160);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function runOnce(cmd: Command, timeoutSec: number, tmp: string): { wall: number; rssKiB: number | null } | { error: string } {
  if (cmd.prepare) {
    const p = spawnSync('bash', ['-c', `set -eo pipefail; ${cmd.prepare}`], { cwd: cmd.cwd, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    if (p.status !== 0) return { error: `prepare failed: ${firstErrorLine(p.stderr ?? '')}` };
  }
  const timeFile = path.join(tmp, 'time');
  const errFile = path.join(tmp, 'stderr');
  const errFd = fs.openSync(errFile, 'w');
  const inner = ['timeout', '-k', '5', String(timeoutSec), 'bash', '-c', `set -o pipefail; ${cmd.sh}`];
  const argv = hasGnuTime ? [GNU_TIME, '-f', '%M', '-o', timeFile, ...inner] : inner;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: cmd.cwd, stdio: ['ignore', 'ignore', errFd] });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  fs.closeSync(errFd);
  if (r.error) return { error: r.error.message };
  if (r.status !== 0) {
    if (r.status === 124) return { error: `timed out after ${timeoutSec} s` };
    const fd = fs.openSync(errFile, 'r');
    const buf = Buffer.alloc(16384);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    fs.closeSync(fd);
    return { error: firstErrorLine(buf.subarray(0, n).toString('utf8')) || `exit status ${r.status}` };
  }
  let rssKiB: number | null = null;
  if (hasGnuTime) {
    const last = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop() ?? '';
    rssKiB = /^\d+$/.test(last) ? Number(last) : null;
  }
  return { wall, rssKiB };
}

/** Runs `warmup` unmeasured + `runs` measured times; stops at the first failure. */
export function measure(cmd: Command, opts: MeasureOptions): Measurement {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ocikit-bench-'));
  try {
    const walls: number[] = [];
    let rss: number | null = null;
    for (let i = 0; i < opts.warmup + opts.runs; i++) {
      const r = runOnce(cmd, opts.timeoutSec, tmp);
      if ('error' in r) return { ok: false, error: r.error };
      if (i < opts.warmup) continue;
      walls.push(r.wall);
      if (r.rssKiB !== null) rss = Math.max(rss ?? 0, r.rssKiB);
    }
    return { ok: true, wall: median(walls), rssMiB: rss === null ? null : rss / 1024, runs: walls };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
