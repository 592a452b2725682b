import type { Argv, CommandModule } from 'yargs';
import { platformString } from '../../model/platform.js';
import { inspect, type InspectNode } from '../../ops/inspect.js';
import { parseReference } from '../../store/reference.js';
import { withStore } from '../context.js';
import { json, platform, type ArgsOf } from '../options.js';
import { humanBytes, printJson } from '../output.js';

const builder = (y: Argv<object>) => y
  .positional('ref', { type: 'string', demandOption: true, describe: 'image, index, layout or tarball' })
  .options({ ...json(), ...platform('only this os/arch[/variant]') });

export const inspectCommand: CommandModule<object, ArgsOf<typeof builder>> = {
  command: 'inspect <ref>',
  describe: 'show what is inside: index tree, platforms, tags, sizes, annotations, labels',
  builder,
  handler: async (args) => {
    await withStore(parseReference(args.ref), async (store, ref) => {
      const report = await inspect(store, { selector: ref.selector, platform: args.platform });
      if (args.json) printJson(report);
      else process.stdout.write(`${store.kind}:${store.path}\n${report.entries.map((e, i) => render(e, '', i === report.entries.length - 1)).join('')}`);
    });
  },
};

function render(node: InspectNode, indent: string, last: boolean): string {
  const branch = `${indent}${last ? '└─ ' : '├─ '}`;
  const inner = `${indent}${last ? '   ' : '│  '}`;
  const head = [
    node.kind === 'other' ? node.mediaType : node.kind,
    node.digest,
    humanBytes(node.totalSize ?? node.size),
    node.platform ? platformString(node.platform) : '',
    node.tags?.length ? `tags: ${node.tags.join(', ')}` : '',
    node.artifactType ? `artifactType: ${node.artifactType}` : '',
    node.subject ? `subject: ${node.subject}` : '',
  ].filter(Boolean).join('  ');
  const lines = [`${branch}${head}\n`];
  for (const [k, v] of Object.entries(node.annotations ?? {})) lines.push(`${inner}  @ ${k}=${v}\n`);
  if (node.config) {
    const c = node.config;
    lines.push(`${inner}  config ${c.digest} ${humanBytes(c.size)} ${[c.os, c.architecture, c.variant].filter(Boolean).join('/')}${c.created ? ` created ${c.created}` : ''}\n`);
    for (const [k, v] of Object.entries(c.labels ?? {})) lines.push(`${inner}    label ${k}=${v.length > 100 ? `${v.slice(0, 97)}...` : v}\n`);
  }
  for (const l of node.layers ?? []) lines.push(`${inner}  layer  ${l.digest} ${humanBytes(l.size)} ${l.mediaType}\n`);
  const children = node.children ?? [];
  children.forEach((c, i) => lines.push(render(c, inner, i === children.length - 1)));
  return lines.join('');
}
