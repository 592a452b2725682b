import type { CommandModule } from 'yargs';
import { shortDigest } from '../../model/digest.js';
import { gc, type GcResult } from '../../ops/gc.js';
import { parseReference } from '../../store/reference.js';
import { humanBytes, printJson } from '../output.js';

interface Args {
  layout: string;
  'dry-run'?: boolean;
  json?: boolean;
  wait?: boolean;
}

export const gcCommand: CommandModule<object, Args> = {
  command: 'gc <layout>',
  describe: 'delete blobs nothing in index.json reaches (referrers and extension descriptors count) and stale temp files',
  builder: (y) => y.positional('layout', { type: 'string', demandOption: true, describe: 'layout directory (oci:DIR or DIR)' })
    .option('dry-run', { type: 'boolean', describe: 'report what would be deleted; delete nothing' })
    .option('json', { type: 'boolean' })
    .option('wait', { type: 'boolean', describe: 'wait for a lock held by another ocikit process' }) as never,
  handler: async (args) => {
    const result = await gc(parseReference(args.layout).path, { dryRun: args['dry-run'], wait: args.wait });
    if (args.json) printJson(result);
    else process.stdout.write(report(result));
  },
};

function report(r: GcResult): string {
  const verb = r.dryRun ? 'would remove' : 'removed';
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  const lines = [
    `${verb} ${count(r.removed.count, 'blob')} (${humanBytes(r.removed.bytes)}) and ${count(r.temps.count, 'stale temp file')} (${humanBytes(r.temps.bytes)}); `
      + `kept ${count(r.kept.count, 'blob')} (${humanBytes(r.kept.bytes)})`,
  ];
  if (r.dryRun) for (const d of r.removed.digests) lines.push(`  would remove ${d}`);
  for (const e of r.extensionOnly) {
    lines.push(`kept only because of an extension descriptor: ${shortDigest(e.digest)} (${humanBytes(e.size)}, ${e.mediaType}) at ${e.where}`);
  }
  if (r.ignored.length) lines.push(`left alone (not blobs): ${r.ignored.slice(0, 10).join(', ')}${r.ignored.length > 10 ? `, … (${r.ignored.length})` : ''}`);
  return `${lines.join('\n')}\n`;
}
