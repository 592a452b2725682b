import type { Argv, CommandModule } from 'yargs';
import { OcikitError } from '../../errors.js';
import { shortDigest } from '../../model/digest.js';
import { refNameOf, type Descriptor } from '../../model/descriptor.js';
import { namesOf } from '../../model/image-name.js';
import { platformString } from '../../model/platform.js';
import { reachability } from '../../ops/reachability.js';
import { referrerTree } from '../../ops/referrers.js';
import { tag, untag } from '../../ops/tag.js';
import type { Store } from '../../store/store.js';
import { parseReference } from '../../store/reference.js';
import { withStore, withWriter } from '../context.js';
import { json, wait, type ArgsOf } from '../options.js';
import { printJson } from '../output.js';
import { renderReferrerTree } from '../referrer-tree.js';

const lsBuilder = (y: Argv<object>) => y.positional('layout', { type: 'string', demandOption: true })
  .options({ ...json(), referrers: { type: 'boolean', describe: 'show referrers (signatures, SBOMs) as a tree under their subjects' } });

export const lsCommand: CommandModule<object, ArgsOf<typeof lsBuilder>> = {
  command: 'ls <layout>',
  describe: 'list the tags and digests of a layout or tarball',
  builder: lsBuilder,
  handler: async (args) => {
    await withStore(parseReference(args.layout), async (store) => {
      if (args.referrers) return listReferrerTree(store, args.json);
      const entries = (await store.readIndex()).value.manifests.map((d) => ({
        tag: namesOf(d)[0] ?? null,
        digest: d.digest,
        mediaType: d.mediaType,
        size: d.size,
        platform: d.platform ? platformString(d.platform) : null,
      }));
      if (args.json) printJson(entries);
      else for (const e of entries) process.stdout.write(`${e.tag ?? '<none>'}\t${e.digest}\t${e.size}\t${e.mediaType}${e.platform ? `\t${e.platform}` : ''}\n`);
    });
  },
};

async function listReferrerTree(store: Store, json: boolean | undefined): Promise<void> {
  const reached = async (d: Descriptor) => {
    const root = { descriptor: d, role: 'root' as const, parent: undefined, jsonPath: '$', depth: 0 };
    return new Set((await reachability(store, [root], { followSubjects: false, scanConfigs: false })).blobs.keys());
  };
  const tree = await referrerTree(store, reached);
  if (json) printJson(tree);
  else process.stdout.write(renderReferrerTree(tree, ({ descriptor: d }) => `${refNameOf(d) ?? '<none>'}\t${d.digest}\t${d.size}\t${d.mediaType}${d.platform ? `\t${platformString(d.platform)}` : ''}`));
}

const tagBuilder = (y: Argv<object>) => y.positional('ref', { type: 'string', demandOption: true }).positional('tag', { type: 'string', demandOption: true })
  .options(wait);

export const tagCommand: CommandModule<object, ArgsOf<typeof tagBuilder>> = {
  command: 'tag <ref> <tag>',
  describe: 'point a tag (org.opencontainers.image.ref.name) at an image in a layout',
  builder: tagBuilder,
  handler: async (args) => {
    await withStore(parseReference(args.ref), async (store, ref) => {
      const entry = await withWriter({ ...ref, selector: undefined }, store, args, (w) => tag(store, w, ref.selector, args.tag));
      process.stdout.write(`${args.tag} -> ${shortDigest(entry.digest)}\n`);
    });
  },
};

const untagBuilder = (y: Argv<object>) => y.positional('ref', { type: 'string', demandOption: true, describe: 'LAYOUT:TAG' }).options(wait);

export const untagCommand: CommandModule<object, ArgsOf<typeof untagBuilder>> = {
  command: 'untag <ref>',
  describe: 'remove a tag from a layout (the image stays until gc)',
  builder: untagBuilder,
  handler: async (args) => {
    const parsed = parseReference(args.ref);
    if (!parsed.selector || !('tag' in parsed.selector)) throw new OcikitError('untag needs LAYOUT:TAG');
    const tagName = parsed.selector.tag;
    await withStore(parsed, async (store, ref) => {
      const removed = await withWriter({ ...ref, selector: undefined }, store, args, (w) => untag(store, w, tagName));
      process.stdout.write(`removed ${removed} entr${removed === 1 ? 'y' : 'ies'} tagged ${tagName}\n`);
    });
  },
};
