import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { OcikitError } from '../../errors.js';
import { shortDigest } from '../../model/digest.js';
import { refNameOf } from '../../model/descriptor.js';
import type { Doc } from '../../model/document.js';
import type { ImageIndex } from '../../model/image-index.js';
import type { BoundaryMethod } from '../../ops/old-base.js';
import { planRebase, rebase, type PlatformReport, type RebaseOptions, type RebaseResult } from '../../ops/rebase.js';
import { DirStore, isLayoutDir } from '../../store/dir.js';
import { parseReference, type Reference } from '../../store/reference.js';
import type { Store } from '../../store/store.js';
import { withOtherStores, withStore, withWriter } from '../context.js';
import { baseLayouts, dryRun, json, link, output, platform, wait, type ArgsOf } from '../options.js';
import { humanBytes, printJson } from '../output.js';

const builder = (y: Argv<object>) => y
  .positional('image', { type: 'string', demandOption: true, describe: 'the image or index to rebase (REF)' })
  .options({
    'new-base': { type: 'string', describe: 'the new base (REF); default: the image\'s base.name looked up in --base-layout dirs' },
    'base-name': { type: 'string', describe: 'the new base\'s fully qualified name for base.name (REPOSITORY takes the new base\'s tag)' },
    'old-base': { type: 'string', describe: 'the base the image was built on (REF)' },
    'top-layer': { type: 'string', describe: 'diff_id of the old base\'s top layer (the old base itself is not needed)' },
    'base-layers': { type: 'number', describe: 'the image\'s bottom N layers are the old base\'s' },
    ...baseLayouts('layout or tarball to look up base.name/base.digest annotations in (repeatable)'),
    ...platform('rebase only this os/arch[/variant] of an index'),
    force: { type: 'boolean', describe: 'rebase even when the new base\'s os/architecture/variant/os.version differ' },
    ...dryRun('print the old and new layers of each platform; write nothing'),
    ...json(),
    ...output('write the result to DEST (REF) instead of in place'),
    ...link,
    ...wait,
  })
  .conflicts('old-base', ['top-layer', 'base-layers'])
  .conflicts('top-layer', 'base-layers');

type Args = ArgsOf<typeof builder>;

async function handler(args: Args): Promise<void> {
  await withOtherStores(async (open) => {
    await withStore(parseReference(args.image), async (store, ref) => {
      const options: RebaseOptions = {
        selector: ref.selector,
        newBase: args['new-base'] ? await open(args['new-base']) : undefined,
        baseName: args['base-name'],
        oldBase: args['old-base'] ? await open(args['old-base']) : undefined,
        topLayer: args['top-layer'],
        baseLayers: args['base-layers'],
        baseLayouts: await Promise.all((args['base-layout'] ?? []).map(async (dir) => (await open(dir)).store)),
        platform: args.platform,
        force: args.force,
      };
      if (args['dry-run']) {
        const plan = await planRebase(store, options);
        if (args.json) printJson({ dryRun: true, platforms: plan.platforms, warnings: plan.warnings, notes: plan.notes });
        else process.stdout.write(`${plan.platforms.map(dryRunText).join('')}${noteText(plan.notes)}nothing written (--dry-run)\n`);
        warn(plan.warnings);
        return;
      }
      const dest = args.output ? parseReference(args.output) : { ...ref, selector: undefined };
      if (dest.selector && 'digest' in dest.selector) throw new OcikitError(`${args.output}: an output is named by a tag, not a digest`);
      const tag = dest.selector && 'tag' in dest.selector ? dest.selector.tag : undefined;
      // Planned under the lock, so the index.json it rewrites is the one it read.
      const result = await withWriter(dest, store, args, async (writer) => {
        const output = args.output ? { tag, index: await destinationIndex(dest, store, ref) } : undefined;
        return rebase(store, writer, { ...options, output });
      });
      if (args.json) printJson(result);
      else process.stdout.write(resultText(result, args.output ?? args.image) + noteText(result.notes));
      warn(result.warnings);
      for (const r of result.staleReferrers) {
        warn([`${shortDigest(r.referrer)} (${r.via}) still refers to ${shortDigest(r.subject)}, which the rebase replaced`]);
      }
    });
  });
}

/** The destination's index.json, whose other entries a written result joins; none for a new tarball. */
async function destinationIndex(dest: Reference, source: Store, sourceRef: Reference): Promise<Doc<ImageIndex> | undefined> {
  if (resolve(dest.path) === resolve(sourceRef.path)) return source.readIndex();
  if (dest.kind !== undefined && dest.kind !== 'oci') return undefined;
  return (await isLayoutDir(dest.path)) ? new DirStore(dest.path).readIndex() : undefined;
}

const METHOD_TEXT: Record<BoundaryMethod, string> = {
  'old-base': '--old-base',
  'top-layer': '--top-layer',
  'base-layers': '--base-layers',
  annotation: 'the base.digest annotation',
  buildpacks: 'buildpacks runImage.topLayer',
};

function boundaryText(p: PlatformReport): string {
  const b = p.boundary;
  const detail = b.oldBase ? ` ${shortDigest(b.oldBase)}${b.by === 'diff_id' ? ', matched by diff_id' : ''}` : b.topLayer ? ` ${shortDigest(b.topLayer)}` : '';
  return `${b.layers} old base layer${b.layers === 1 ? '' : 's'} (by ${METHOD_TEXT[b.method]}${detail})`;
}

function newBaseText(p: PlatformReport): string {
  return `${p.newBase.name ? `${p.newBase.name} ` : ''}${shortDigest(p.newBase.digest)}`;
}

function dryRunText(p: PlatformReport): string {
  const layer = (l: PlatformReport['oldLayers'][number]) => `    ${l.digest}  ${humanBytes(l.size).padStart(10)}  ${l.from}\n`;
  return `${p.platform} ${shortDigest(p.manifest)} -> ${shortDigest(p.rebased)}: ${boundaryText(p)} replaced by ${newBaseText(p)}\n`
    + `  old layers:\n${p.oldLayers.map(layer).join('')}  new layers:\n${p.newLayers.map(layer).join('')}`;
}

function resultText(r: RebaseResult, where: string): string {
  const lines = r.platforms.map((p) => `rebased ${p.platform} ${shortDigest(p.manifest)} -> ${shortDigest(p.rebased)}: ${boundaryText(p)} replaced by ${newBaseText(p)}`);
  const tag = refNameOf(r.after);
  lines.push(`${r.after.digest}${tag ? ` ${tag}` : ''} in ${where}`);
  lines.push(`copied ${r.copied.blobs} blob${r.copied.blobs === 1 ? '' : 's'} (${humanBytes(r.copied.bytes)})`);
  return `${lines.join('\n')}\n`;
}

function noteText(notes: string[]): string {
  return notes.map((n) => `note: ${n}\n`).join('');
}

function warn(messages: string[]): void {
  for (const m of messages) process.stderr.write(`ocikit: warning: ${m}\n`);
}

export const rebaseCommand: CommandModule<object, Args> = {
  command: 'rebase <image>',
  describe: 'swap the base layers under an image (or every platform of an index) for a new base, keeping its own layers byte for byte',
  builder,
  handler,
};
