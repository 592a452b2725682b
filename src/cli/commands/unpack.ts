import type { Argv, CommandModule } from 'yargs';
import { unpack } from '../../ops/unpack.js';
import { interruptible, withStore } from '../context.js';
import { json, maxLayerBytes, platform, type ArgsOf } from '../options.js';
import { printJson, Progress } from '../output.js';
import { parseReference } from '../../store/reference.js';

const builder = (y: Argv<object>) => y
  .positional('ref', { type: 'string', demandOption: true, describe: 'the image: layout, tarball, or image in one' })
  .positional('dir', { type: 'string', demandOption: true, describe: 'an empty or new directory for the root filesystem' })
  .options({
    ...platform('the image of this platform, when REF is an index (default: this machine\'s)'),
    rootless: { type: 'boolean', describe: 'files belong to the caller, not to the layers\' owners (always so when not root)' },
    ...maxLayerBytes('fail a layer that decompresses past this size (e.g. 64G)'),
    ...json('machine-readable summary'),
  });

export const unpackCommand: CommandModule<object, ArgsOf<typeof builder>> = {
  command: 'unpack <ref> <dir>',
  describe: 'apply an image\'s layers into DIR: its root filesystem, whiteouts applied, every layer checked as it streams',
  builder,
  handler: async (args) => {
    const ref = parseReference(args.ref);
    let progress: Progress | undefined;
    const result = await interruptible((signal) => withStore(ref, (store) => unpack(store, args.dir, {
      selector: ref.selector, platform: args.platform, rootless: args.rootless, maxLayerBytes: args['max-layer-bytes'], signal,
      onProgress: (done, total) => (progress ??= new Progress(`unpack ${args.ref}`, total, args.json)).update(done),
    }))).finally(() => progress?.done());
    if (args.json) return printJson(result);
    const skipped = Object.entries(result.skipped).map(([kind, n]) => `${n} ${kind}${n === 1 ? '' : 's'}`).join(', ');
    process.stdout.write(`${args.dir}: ${result.layers} layers of ${result.image} (${result.platform}): ${result.files} files, ${result.directories} directories, ${result.symlinks} symlinks, ${result.hardlinks} hard links, ${result.whiteouts} whiteouts applied\n`);
    if (skipped) process.stdout.write(`  skipped (not made by an unprivileged Node.js process): ${skipped}\n`);
    if (!result.owners) process.stdout.write('  owners: the caller\'s (not root, or --rootless)\n');
  },
};
