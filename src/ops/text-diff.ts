/** A unified diff of two texts by lines (`---`/`+++` headers, `@@` hunks with `context` lines around). */
export function unifiedDiff(oldText: string, newText: string, oldName: string, newName: string, context = 3): string {
  const a = oldText.split('\n');
  const b = newText.split('\n');
  const ops = lineOps(a, b);
  const hunks = groupHunks(ops, context);
  if (hunks.length === 0) return '';
  const out = [`--- ${oldName}`, `+++ ${newName}`];
  for (const hunk of hunks) {
    const first = hunk[0]!;
    const oldCount = hunk.filter((o) => o.kind !== '+').length;
    const newCount = hunk.filter((o) => o.kind !== '-').length;
    out.push(`@@ -${first.oldLine + 1},${oldCount} +${first.newLine + 1},${newCount} @@`);
    for (const op of hunk) out.push(`${op.kind === '=' ? ' ' : op.kind}${op.text}`);
  }
  return `${out.join('\n')}\n`;
}

/** JSON documents diffed as pretty-printed JSON, so one-line documents give readable hunks. */
export function jsonDiff(oldRaw: Buffer, newRaw: Buffer, oldName: string, newName: string): string {
  const pretty = (raw: Buffer) => JSON.stringify(JSON.parse(raw.toString('utf8')), null, 2);
  return unifiedDiff(pretty(oldRaw), pretty(newRaw), oldName, newName);
}

interface LineOp {
  kind: '=' | '-' | '+';
  text: string;
  /** Position in the old and new texts where this op happens. */
  oldLine: number;
  newLine: number;
}

/** Longest common subsequence on the part between the common head and tail (documents differ little). */
function lineOps(a: string[], b: string[]): LineOp[] {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const midA = a.slice(head, a.length - tail);
  const midB = b.slice(head, b.length - tail);
  const ops: LineOp[] = [];
  for (let i = 0; i < head; i++) ops.push({ kind: '=', text: a[i]!, oldLine: i, newLine: i });
  ops.push(...middleOps(midA, midB, head, head));
  for (let i = 0; i < tail; i++) {
    const oi = a.length - tail + i;
    const ni = b.length - tail + i;
    ops.push({ kind: '=', text: a[oi]!, oldLine: oi, newLine: ni });
  }
  return ops;
}

function middleOps(a: string[], b: string[], oldBase: number, newBase: number): LineOp[] {
  if (a.length * b.length > 4_000_000) {
    // Too large for a table: show it as one replacement.
    return [...a.map((text, i) => ({ kind: '-' as const, text, oldLine: oldBase + i, newLine: newBase })),
      ...b.map((text, j) => ({ kind: '+' as const, text, oldLine: oldBase + a.length, newLine: newBase + j }))];
  }
  const lcs: Uint32Array[] = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const ops: LineOp[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      ops.push({ kind: '=', text: a[i]!, oldLine: oldBase + i, newLine: newBase + j });
      i++;
      j++;
    } else if (i < a.length && (j === b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      ops.push({ kind: '-', text: a[i]!, oldLine: oldBase + i, newLine: newBase + j });
      i++;
    } else {
      ops.push({ kind: '+', text: b[j]!, oldLine: oldBase + i, newLine: newBase + j });
      j++;
    }
  }
  return ops;
}

function groupHunks(ops: LineOp[], context: number): LineOp[][] {
  const changed = ops.map((o, i) => (o.kind === '=' ? -1 : i)).filter((i) => i >= 0);
  const hunks: LineOp[][] = [];
  let start = -1;
  let end = -1;
  for (const i of changed) {
    if (start >= 0 && i - context <= end + context) {
      end = i;
      continue;
    }
    if (start >= 0) hunks.push(ops.slice(Math.max(0, start - context), Math.min(ops.length, end + context + 1)));
    start = i;
    end = i;
  }
  if (start >= 0) hunks.push(ops.slice(Math.max(0, start - context), Math.min(ops.length, end + context + 1)));
  return hunks;
}
