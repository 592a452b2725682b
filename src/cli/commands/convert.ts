import type { Argv, CommandModule } from 'yargs';
import { refNameOf } from '../../model/descriptor.js';
import { copy, type CopyResult } from '../../ops/copy.js';
import { existingIndex } from '../../store/open.js';
import { parseReference } from '../../store/reference.js';
import { withStore, withWriter } from '../context.js';
import { json, link, platform, wait, type ArgsOf } from '../options.js';
import { humanBytes, printJson } from '../output.js';

const builder = (y: Argv<object>) => y
  .positional('src', { type: 'string', demandOption: true, describe: 'source REF' })
  .positional('dest', { type: 'string', demandOption: true, describe: 'destination REF (oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG])' })
  .options({
    ...platform('only this os/arch[/variant] of an index'),
    'all-platforms': { type: 'boolean', describe: 'every platform of an index (the default)' },
    referrers: { type: 'boolean', default: true, describe: 'copy referrers (signatures, SBOMs) too, transitively; --no-referrers to leave them' },
    'oci-media-types': { type: 'boolean', describe: 'rewrite Docker media types to OCI ones (digests change)' },
    ...json(),
    ...link,
    ...wait,
  })
  .conflicts('platform', 'all-platforms');

type Args = ArgsOf<typeof builder>;

async function handler(args: Args): Promise<void> {
  const dest = parseReference(args.dest);
  await withStore(parseReference(args.src), async (store, ref) => {
    const tag = dest.selector && 'tag' in dest.selector ? dest.selector.tag : undefined;
    const result = await withWriter(dest, store, args, async (writer) => {
      return copy(store, writer, await existingIndex(writer), {
        selector: ref.selector,
        tag,
        platform: args.platform,
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
      for (const e of result.entries) process.stdout.write(`${e.digest}${refNameOf(e) ? ` ${refNameOf(e)}` : ''}\n`);
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
