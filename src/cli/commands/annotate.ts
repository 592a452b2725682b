import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { OcikitError } from '../../errors.js';
import { shortDigest } from '../../model/digest.js';
import { annotate, type AnnotateOn, type AnnotateOptions, type AnnotateResult, type AnnotationChange } from '../../ops/annotate.js';
import { DirStore, isLayoutDir } from '../../store/dir.js';
import { parseReference } from '../../store/reference.js';
import type { Store } from '../../store/store.js';
import { withOtherStores, withStore, withWriter } from '../context.js';
import { baseLayouts, dryRun, json, output, platforms, wait, type ArgsOf } from '../options.js';
import { printJson } from '../output.js';

const builder = (y: Argv<object>) => y
  .positional('ref', { type: 'string', demandOption: true, describe: 'image or index to annotate (REF)' })
  .options({
    set: { type: 'string', array: true, describe: 'set KEY=VALUE (repeatable)' },
    unset: { type: 'string', array: true, describe: 'remove KEY (repeatable)' },
    'set-file': { type: 'string', array: true, describe: 'set KEY to the content of PATH (KEY=PATH; PATH @- or - reads stdin; one trailing newline dropped)' },
    on: { choices: ['manifest', 'index', 'descriptor', 'all'] as const satisfies readonly AnnotateOn[], default: 'manifest' as AnnotateOn, describe: 'where: the image manifest(s), the index, REF\'s descriptor, or all of them' },
    ...platforms('only these os/arch[/variant] of an index (repeatable or comma-separated)'),
    'from-labels': { type: 'string', array: true, describe: 'copy config labels (all, or those starting with a PREFIX; give REF first)' },
    'label-schema': { type: 'boolean', describe: 'map org.label-schema.* labels to their org.opencontainers.image.* keys' },
    base: { type: 'string', describe: 'base image REF on disk: prove it is the base, set base.name and base.digest' },
    'base-name': { type: 'string', describe: 'the base\'s fully qualified name (also picks among buildinfo sources)' },
    'base-digest': { choices: ['manifest', 'index'] as const, describe: 'base.digest is the base\'s platform manifest (default) or its index' },
    ...baseLayouts('layouts holding buildinfo base candidates (repeatable)'),
    'from-buildinfo': { type: 'boolean', describe: 'base.name/base.digest from BuildKit buildinfo and provenance attestations' },
    'from-buildpacks': { type: 'boolean', describe: 'base and source from buildpacks lifecycle/project metadata labels' },
    created: { type: 'string', describe: 'org.opencontainers.image.created: now (SOURCE_DATE_EPOCH when set), config, or an RFC 3339 time' },
    'oci-media-types': { type: 'boolean', describe: 'convert Docker media types to OCI ones (Docker manifests cannot carry annotations)' },
    'move-referrers': { type: 'boolean', describe: 're-point referrers (signatures, SBOMs) at the new digest' },
    force: { type: 'boolean', describe: 'set values that fail their key\'s format check' },
    ...dryRun('print a diff of each changed document; write nothing'),
    ...output('write to DEST (any format) instead of in place'),
    ...json(),
    ...wait,
  });

type Args = ArgsOf<typeof builder>;

async function handler(args: Args): Promise<void> {
  const { set, sources } = await explicitValues(args);
  await withStore(parseReference(args.ref), async (store, ref) => {
    await withOtherStores(async (open) => {
      const base = args.base ? await open(args.base) : undefined;
      const options: AnnotateOptions = {
        selector: ref.selector,
        on: args.on,
        platform: args.platform,
        set,
        setSources: sources,
        unset: args.unset,
        fromLabels: args['from-labels'] === undefined ? undefined : args['from-labels'].length ? args['from-labels'] : true,
        labelSchema: args['label-schema'],
        base: base && args.base ? { store: base.store, selector: base.selector, text: args.base, digest: args['base-digest'] } : undefined,
        baseName: args['base-name'],
        baseLayouts: await Promise.all((args['base-layout'] ?? []).map(async (text) => (await open(text)).store)),
        fromBuildinfo: args['from-buildinfo'],
        fromBuildpacks: args['from-buildpacks'],
        created: args.created,
        ociMediaTypes: args['oci-media-types'],
        moveReferrers: args['move-referrers'],
        force: args.force,
        dryRun: args['dry-run'],
      };
      if (args['base-digest'] && !args.base) throw new OcikitError('--base-digest needs --base');
      const result = args['dry-run'] ? await annotate(store, undefined, options) : await write(store, ref, args, options);
      if (args.json) printJson(result);
      else report(result, args.ref);
    });
  });
}

async function write(store: Store, ref: ReturnType<typeof parseReference>, args: Args, options: AnnotateOptions): Promise<AnnotateResult> {
  const dest = args.output ? parseReference(args.output) : { ...ref, selector: undefined };
  if (dest.selector && 'digest' in dest.selector) throw new OcikitError(`${args.output}: an output is named by a tag, not a digest`);
  const tag = dest.selector?.tag;
  const elsewhere = resolve(dest.path) !== resolve(store.path);
  return withWriter(dest, store, args, async (writer) => {
    const index = elsewhere && writer.kind === 'oci' && (await isLayoutDir(dest.path)) ? await new DirStore(dest.path).readIndex() : undefined;
    return annotate(store, writer, { ...options, output: args.output ? { tag, index } : undefined });
  });
}

/** `--set K=V` and `--set-file K=PATH` (stdin for `-`/`@-`), with where each value came from. */
async function explicitValues(args: Args): Promise<{ set: Record<string, string>; sources: Record<string, string> }> {
  const set: Record<string, string> = Object.create(null) as Record<string, string>;
  const sources: Record<string, string> = Object.create(null) as Record<string, string>;
  const assign = (key: string, value: string, source: string) => {
    if (Object.hasOwn(set, key) && set[key] !== value) throw new OcikitError(`${key} is set twice, to different values`);
    set[key] = value;
    sources[key] = source;
  };
  for (const text of args.set ?? []) {
    const [key, value] = splitAssignment(text, '--set');
    assign(key, value, '--set');
  }
  let stdinUsed = false;
  for (const text of args['set-file'] ?? []) {
    const [key, path] = splitAssignment(text, '--set-file');
    const stdin = path === '-' || path === '@-';
    if (stdin && stdinUsed) throw new OcikitError('--set-file: stdin can be read only once');
    stdinUsed ||= stdin;
    assign(key, decodeValue(stdin ? await readStdin() : await readFile(path), stdin ? 'stdin' : path), `--set-file ${stdin ? 'stdin' : path}`);
  }
  return { set: { ...set }, sources: { ...sources } };
}

function splitAssignment(text: string, flag: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new OcikitError(`${flag} ${JSON.stringify(text)}: expected KEY=${flag === '--set' ? 'VALUE' : 'PATH'}`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

function decodeValue(data: Buffer, where: string): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    throw new OcikitError(`--set-file ${where}: not UTF-8 text`);
  }
  return text.replace(/\r?\n$/, '');
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function report(result: AnnotateResult, ref: string): void {
  const out: string[] = [];
  if (!result.changed) out.push(`${ref}: nothing to change (every value is already in place)`);
  for (const c of result.changes) {
    const holder = c.holder?.replace(/^(\S+):([a-f0-9]{12})[a-f0-9]+/, '$1:$2');
    const what = c.role === 'descriptor' ? `descriptor at ${holder}` : `${c.role}${c.platform ? ` ${c.platform}` : ''}`;
    const digests = c.role === 'descriptor' ? shortDigest(c.digest) : `${shortDigest(c.digest)} -> ${shortDigest(c.newDigest)}`;
    out.push(`${what} ${digests}${c.newMediaType !== c.mediaType ? ` (now ${c.newMediaType})` : ''}`);
    for (const a of c.annotations) out.push(`  ${describeChange(a)}`);
  }
  const own = new Set(result.changes.map((c) => c.digest));
  for (const { from, to } of result.rewritten) if (!own.has(from)) out.push(`rewritten ${shortDigest(from)} -> ${shortDigest(to)} (holds a changed document)`);
  for (const r of result.referrers) {
    out.push(r.moved
      ? `moved referrer ${shortDigest(r.referrer)} (${r.convention}) from ${shortDigest(r.subject)} to ${shortDigest(r.newSubject)}`
      : `referrer ${shortDigest(r.referrer)} (${r.convention}) still points at the old ${shortDigest(r.subject)}; --move-referrers re-points it`);
  }
  if (result.copied.blobs) out.push(`copied ${result.copied.blobs} blob(s) to the destination`);
  if (result.changed && result.inPlace && !result.dryRun && result.rewritten.length) out.push('the old documents stay on disk, unreferenced, until `ocikit gc`');
  for (const note of result.notes) out.push(`note: ${note}`);
  for (const d of result.diffs) out.push(d.diff.trimEnd());
  if (result.dryRun) out.push('dry run: nothing was written');
  process.stdout.write(`${out.join('\n')}\n`);
  for (const w of result.warnings) process.stderr.write(`ocikit: warning: ${w}\n`);
}

function describeChange(a: AnnotationChange): string {
  const from = a.source ? `   <- ${a.source}` : '';
  if (a.to === undefined) return `- ${a.key} (was ${JSON.stringify(a.from)})`;
  if (a.from === undefined) return `+ ${a.key}=${JSON.stringify(a.to)}${from}`;
  return `~ ${a.key}: ${JSON.stringify(a.from)} -> ${JSON.stringify(a.to)}${from}`;
}

export const annotateCommand: CommandModule<object, Args> = {
  command: 'annotate <ref>',
  describe: 'set, remove and derive OCI annotations on disk; every parent digest kept consistent',
  builder,
  handler,
};
