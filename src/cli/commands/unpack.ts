import type { Argv, CommandModule } from 'yargs';
import { createRuntimeBundle } from '../../ops/bundle.js';
import { unpack, type UnpackOptions, type UnpackResult } from '../../ops/unpack.js';
import { parseReference } from '../../store/reference.js';
import type { Store } from '../../store/store.js';
import { interruptible, withStore } from '../context.js';
import { json, maxLayerBytes, platform, type ArgsOf } from '../options.js';
import { printJson, Progress } from '../output.js';

const builder = (what: string) => (y: Argv<object>) => y
  .positional('ref', { type: 'string', demandOption: true, describe: 'the image: layout, tarball, or image in one' })
  .positional('dir', { type: 'string', demandOption: true, describe: `an empty or new directory for ${what}` })
  .options({
    ...platform('the image of this platform, when REF is an index (default: this machine\'s)'),
    rootless: { type: 'boolean', describe: 'files belong to the caller, not to the layers\' owners (always so when not root)' },
    ...maxLayerBytes('fail a layer that decompresses past this size (e.g. 64G)'),
    ...json('machine-readable summary'),
  });
const unpackBuilder = builder('the root filesystem');
type UnpackArgs = ArgsOf<typeof unpackBuilder>;

/** Both commands: open, run under Ctrl-C protection with progress, print the tally. */
async function run(args: UnpackArgs, label: string, op: (store: Store, dir: string, o: UnpackOptions) => Promise<UnpackResult>): Promise<UnpackResult> {
  const ref = parseReference(args.ref);
  let progress: Progress | undefined;
  const result = await interruptible((signal) => withStore(ref, (store) => op(store, args.dir, {
    selector: ref.selector, platform: args.platform, rootless: args.rootless, maxLayerBytes: args['max-layer-bytes'], signal,
    onProgress: (done, total) => (progress ??= new Progress(`${label} ${args.ref}`, total, args.json)).update(done),
  }))).finally(() => progress?.done());
  if (args.json) {
    printJson(result);
    return result;
  }
  const skipped = Object.entries(result.skipped).map(([kind, n]) => `${n} ${kind}${n === 1 ? '' : 's'}`).join(', ');
  process.stdout.write(`${args.dir}: ${result.layers} layers of ${result.image} (${result.platform}): ${result.files} files, ${result.directories} directories, ${result.symlinks} symlinks, ${result.hardlinks} hard links, ${result.whiteouts} whiteouts applied\n`);
  if (skipped) process.stdout.write(`  skipped (Node.js cannot make them): ${skipped}\n`);
  if (!result.owners) process.stdout.write('  owners: the caller\'s (not root, or --rootless)\n');
  return result;
}

export const unpackCommand: CommandModule<object, UnpackArgs> = {
  command: 'unpack <ref> <dir>',
  describe: 'apply an image\'s layers into DIR: its root filesystem, whiteouts applied, every layer checked as it streams',
  builder: unpackBuilder,
  handler: async (args) => {
    await run(args, 'unpack', unpack);
  },
};

export const bundleCommand: CommandModule<object, UnpackArgs> = {
  command: 'create-runtime-bundle <ref> <dir>',
  describe: 'an OCI runtime bundle: DIR/rootfs and DIR/config.json converted from the image config (runc/crun run it)',
  builder: builder('the bundle'),
  handler: async (args) => {
    await run(args, 'create-runtime-bundle', createRuntimeBundle);
  },
};
