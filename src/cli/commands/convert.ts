import type { Argv, CommandModule } from 'yargs';
import { copy, type CopyResult } from '../../ops/copy.js';
import { existingIndex } from '../../store/open.js';
import { parsePlatform } from '../../ops/resolve.js';
import { parseReference } from '../../store/reference.js';
import { withStore, withWriter } from '../context.js';
import { humanBytes, printJson } from '../output.js';

interface Args {
  src: string;
  dest: string;
  platform?: string;
  'all-platforms'?: boolean;
  referrers?: boolean;
  'oci-media-types'?: boolean;
  json?: boolean;
  wait?: boolean;
  link?: boolean;
}

const builder = (y: Argv<object>): Argv<Args> => y
  .positional('src', { type: 'string', demandOption: true, describe: 'source REF' })
  .positional('dest', { type: 'string', demandOption: true, describe: 'destination REF (oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG])' })
  .option('platform', { type: 'string', describe: 'only this os/arch[/variant] of an index' })
  .option('all-platforms', { type: 'boolean', describe: 'every platform of an index (the default)' })
  .conflicts('platform', 'all-platforms')
  .option('referrers', { type: 'boolean', default: true, describe: 'copy referrers (signatures, SBOMs) too, transitively; --no-referrers to leave them' })
  .option('oci-media-types', { type: 'boolean', describe: 'rewrite Docker media types to OCI ones (digests change)' })
  .option('json', { type: 'boolean' })
  .option('link', { type: 'boolean', describe: 'into a layout directory: hard-link blobs from a layout on the same file system instead of copying them (both then share the files)' })
  .option('wait', { type: 'boolean', describe: 'wait for a lock held by another ocikit process' }) as never as Argv<Args>;

async function handler(args: Args): Promise<void> {
  const dest = parseReference(args.dest);
  await withStore(args.src, async (store, ref) => {
    const tag = dest.selector && 'tag' in dest.selector ? dest.selector.tag : undefined;
    const result = await withWriter(dest, store, args, async (writer) => {
      return copy(store, writer, await existingIndex(writer), {
        selector: ref.selector,
        tag,
        platform: args.platform ? parsePlatform(args.platform) : undefined,
        referrers: args.referrers,
        ociMediaTypes: args['oci-media-types'],
      });
    });
    warnAbout(result);
    if (args.json) printJson({ ...result, converted: Object.fromEntries(result.converted) });
    else {
      const already = result.existing ? `; ${result.existing} already there` : '';
      process.stdout.write(`copied ${result.blobs} blobs (${humanBytes(result.bytes)}) to ${writerLabel(dest.kind, dest.path)}${already}\n`);
      for (const r of result.referrers) process.stdout.write(`referrer ${r.digest}${r.artifactType ? ` ${r.artifactType}` : ''} -> ${r.subject}\n`);
      for (const [from, to] of result.converted) process.stdout.write(`converted to OCI media types: ${from} -> ${to}\n`);
      for (const e of result.entries) process.stdout.write(`${e.digest}${e.annotations?.['org.opencontainers.image.ref.name'] ? ` ${e.annotations['org.opencontainers.image.ref.name']}` : ''}\n`);
    }
  });
}

function warnAbout(result: CopyResult): void {
  const warn = (text: string) => process.stderr.write(`warning: ${text}\n`);
  if (result.referrersSkipped) warn(`${result.referrersSkipped} referrers not copied: docker-archive has no place for them (use oci-archive)`);
  for (const d of result.danglingReferrers) warn(`referrer ${d.referrer} still names ${d.subject}, which --oci-media-types rewrote`);
  for (const d of result.absentExtensionBlobs) warn(`${d} is named by an extension descriptor but absent from the source`);
  for (const e of result.uncheckedEntries) warn(`not checked for referrers: ${e}`);
  for (const w of result.warnings) warn(w);
}

function writerLabel(kind: string | undefined, path: string): string {
  return kind ? `${kind}:${path}` : path;
}

export const convertCommand: CommandModule<object, Args> = {
  command: 'convert <src> <dest>',
  describe: 'convert between OCI layout, OCI archive and docker-save tarball; every blob verified while copied',
  builder,
  handler,
};

export const copyCommand: CommandModule<object, Args> = {
  command: 'copy <src> <dest>',
  describe: 'copy an image or index (every reachable blob) into another layout or tarball',
  builder,
  handler,
};
