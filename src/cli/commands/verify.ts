import type { Argv, CommandModule } from 'yargs';
import { describeError, OcikitError } from '../../errors.js';
import { shortDigest } from '../../model/digest.js';
import { parseShard, RULES, verifyRef, type Finding, type VerifyReport } from '../../ops/verify.js';
import { discoverStores } from '../../store/discover.js';
import { setExit } from '../context.js';
import { json, maxLayerBytes, type ArgsOf } from '../options.js';
import { humanBytes, printJson, Progress } from '../output.js';

const builder = (y: Argv<object>) => y
  .positional('ref', { type: 'string', array: true, describe: 'layout, tarball, or image in one (a TAG verifies that image only)' })
  .options({
    deep: { type: 'boolean', describe: 'decompress every layer: diff_ids, tar structure, whiteouts' },
    ...json('machine-readable report'),
    strict: { type: 'boolean', describe: 'warnings fail too' },
    shard: { type: 'string', describe: 'K/N: check only this share of blob contents (documents always)' },
    jobs: { type: 'number', describe: 'threads hashing at once (default and at most: the cores)' },
    ...maxLayerBytes('stop decompressing a layer past this size (e.g. 64G)'),
    find: { type: 'string', array: true, describe: 'DIR: verify every layout directory and *.tar under DIR (links not followed)' },
    rules: { type: 'boolean', describe: 'list every rule id with its severity and exit' },
  });

export const verifyCommand: CommandModule<object, ArgsOf<typeof builder>> = {
  command: 'verify [ref..]',
  describe: 'prove layouts and tarballs intact and spec-conformant (exit 1 on any error)',
  builder,
  handler: async (args) => {
    if (args.rules) {
      for (const [id, rule] of Object.entries(RULES)) process.stdout.write(`${rule.severity.padEnd(8)}${id.padEnd(32)}${rule.description}\n`);
      return;
    }
    const refs = [...(args.ref ?? [])];
    for (const root of args.find ?? []) refs.push(...(await discoverStores(root)).map((d) => d.path));
    if (refs.length === 0) throw new OcikitError(args.find ? `verify --find ${args.find.join(' ')}: no layout directory or tarball found` : 'verify: name at least one layout or tarball');
    const estate = args.find !== undefined;
    const shard = args.shard === undefined ? undefined : parseShard(args.shard);
    if (args.jobs !== undefined && !(Number.isInteger(args.jobs) && args.jobs >= 1)) throw new OcikitError(`--jobs ${args.jobs}: expected a whole number ≥ 1`);
    const reports: Array<VerifyReport | RefError> = [];
    for (const [i, ref] of refs.entries()) {
      let progress: Progress | undefined;
      const label = refs.length > 1 ? `verify [${i + 1}/${refs.length}] ${ref}` : `verify ${ref}`;
      const report = await verifyRef(ref, {
        deep: args.deep, strict: args.strict, shard, jobs: args.jobs, maxLayerBytes: args['max-layer-bytes'],
        onProgress: (done, total) => (progress ??= new Progress(label, total, args.json)).update(done),
      }).catch((err: unknown) => refError(ref, err)).finally(() => progress?.done());
      reports.push(report);
      if ('error' in report) continue;
      if (!args.json) process.stdout.write(estate && report.ok ? `${summaryLine(report)}\n` : render(report));
      setExit(report.ok ? 0 : 1);
    }
    if (args.json) printJson(reports.length === 1 && !estate ? reports[0] : reports);
    else if (estate) process.stdout.write(estateSummary(reports));
  },
};

/** A ref that could not be verified at all; the other refs still are. */
interface RefError {
  ref: string;
  error: string;
}

function refError(ref: string, err: unknown): RefError {
  const internal = !(err instanceof OcikitError) && !(err as NodeJS.ErrnoException)?.code;
  const error = `${internal ? 'internal error: ' : ''}${describeError(err).split('\n')[0]}`;
  process.stderr.write(`ocikit: ${error}\n`);
  setExit(2);
  return { ref, error };
}

/** One line per finding, grouped by the index.json entry it sits under, then the summary. */
function render(report: VerifyReport): string {
  const groups = new Map<string, Finding[]>();
  for (const f of report.findings) {
    const root = f.chain[0];
    const key = root && root in report.images ? root : '';
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  const lines = [`${report.ref} (${report.kind})`];
  for (const [root, findings] of [...groups].sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : 0))) {
    lines.push(root ? `  image ${report.images[root] || '(untagged)'} ${shortDigest(root)}` : '  layout');
    for (const f of findings) lines.push(`    ${f.severity.padEnd(8)}${f.rule}  ${f.path}${f.jsonPath ? ` ${f.jsonPath}` : ''}: ${f.message}`);
  }
  lines.push(`  ${verdictLine(report)}`);
  return `${lines.join('\n')}\n`;
}

function verdictLine(report: VerifyReport): string {
  const s = report.summary;
  const counts = `${s.errors} error${s.errors === 1 ? '' : 's'}, ${s.warnings} warning${s.warnings === 1 ? '' : 's'}, ${s.infos} info${s.infos === 1 ? '' : 's'}`;
  const shard = s.shard === '1/1' ? '' : ` (shard ${s.shard})`;
  return `${report.ok ? 'ok' : 'FAILED'}: ${s.blobs} blobs, ${humanBytes(s.bytes)} in ${s.seconds.toFixed(2)} s (${s.mbPerSecond.toFixed(0)} MB/s)${shard}${s.deep ? ', deep' : ''}; ${counts}`;
}

/** An estate's passing input in one line; failing ones are printed in full. */
function summaryLine(report: VerifyReport): string {
  return `${report.ref} (${report.kind}) ${verdictLine(report)}`;
}

/** The estate's totals: inputs by verdict, blobs and bytes proven, wall time. */
function estateSummary(reports: Array<VerifyReport | RefError>): string {
  const done = reports.filter((r): r is VerifyReport => !('error' in r));
  const failed = done.filter((r) => !r.ok).length;
  const unreadable = reports.length - done.length;
  const blobs = done.reduce((n, r) => n + r.summary.blobs, 0);
  const bytes = done.reduce((n, r) => n + r.summary.bytes, 0);
  const seconds = done.reduce((n, r) => n + r.summary.seconds, 0);
  const verdict = failed + unreadable === 0 ? 'ok' : 'FAILED';
  return `${verdict}: ${reports.length} input${reports.length === 1 ? '' : 's'} (${done.length - failed} ok, ${failed} failed, ${unreadable} unreadable); ${blobs} blobs, ${humanBytes(bytes)} in ${seconds.toFixed(2)} s\n`;
}
