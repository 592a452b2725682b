import { shortDigest } from '../model/digest.js';
import type { ReferrerTreeNode } from '../ops/referrers.js';

/** `ls --referrers`: each referrer indented under what it refers to, with box-drawing branches. */
export function renderReferrerTree(nodes: ReferrerTreeNode[], line: (node: ReferrerTreeNode) => string): string {
  const out: string[] = [];
  const visit = (node: ReferrerTreeNode, prefix: string, last: boolean, top: boolean): void => {
    out.push(top ? line(node) : `${prefix}${last ? '└── ' : '├── '}${referrerLine(node)}`);
    const below = top ? '' : `${prefix}${last ? '    ' : '│   '}`;
    node.referrers.forEach((child, i) => visit(child, below, i === node.referrers.length - 1, false));
  };
  for (const node of nodes) visit(node, '', true, true);
  return out.length ? `${out.join('\n')}\n` : '';
}

function referrerLine(node: ReferrerTreeNode): string {
  const d = node.descriptor;
  const type = d.artifactType ?? d.mediaType;
  const on = node.subject ? ` on ${shortDigest(node.subject)}` : '';
  return `${d.digest}\t${type}${on} (${node.convention})`;
}
