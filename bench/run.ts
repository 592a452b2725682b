// Benchmark suite: ocikit vs. peer tools and physical limits.
//
//   npm run bench [-- --size 1G] [--only verify,gc] [--runs 5] [--warmup 1] [--out DIR] [--timeout 900]
//                   [--ocikit bin/ocikit.js]
//
// Generates (or reuses) the data set, measures every row, prints a markdown
// table and writes bench/results/latest.{md,json}.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { argValue, DEFAULT_OUT, DEFAULT_SIZE, formatSize, generate, parseSize, type DataInfo } from './generate.js';
import { measure, type Command, type Measurement } from './measure.js';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.dirname(BENCH);
const RESULTS = path.join(BENCH, 'results');

// ---------------------------------------------------------------- options

const argv = process.argv.slice(2);
const sizeArg = argValue(argv, '--size') ?? DEFAULT_SIZE;
const opts = {
  size: parseSize(sizeArg),
  out: path.resolve(argValue(argv, '--out') ?? DEFAULT_OUT),
  runs: Number(argValue(argv, '--runs') ?? 5),
  warmup: Number(argValue(argv, '--warmup') ?? 1),
  timeoutSec: Number(argValue(argv, '--timeout') ?? 900),
  ocikit: path.resolve(argValue(argv, '--ocikit') ?? path.join(REPO, 'bin', 'ocikit.js')),
  only: argValue(argv, '--only')?.split(',').map((s) => s.trim()).filter(Boolean),
};

// ---------------------------------------------------------------- row definitions

/** One side of a comparison: a shell command, the tools it needs, an optional untimed prepare step. */
interface Side extends Command { label: string; needs: string[] }
interface Target { max: number; unit: 'ratio' | 's' }
interface Row { group: string; op: string; ocikit: Side; against: Side | null; target?: Target }

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const D = (p: string) => q(path.join(opts.out, p));
const SCRATCH = path.join(opts.out, 'scratch');
const S = (p: string) => q(path.join(SCRATCH, p));
// The untimed prepare step syncs: on ext4 a timed fsync would otherwise also flush the copy it just made.
const fresh = (src: string, dst: string) => `rm -rf ${S(dst)} && cp -a ${D(src)} ${S(dst)} && sync`;
const clean = (dst: string) => `rm -rf ${S(dst)} && sync`;
const blobsOf = (info: DataInfo, layout: string) =>
  (info.layouts[layout]?.layers ?? []).map((l) => q(path.join(opts.out, layout, l))).join(' ');

const ocikit = (args: string, prepare?: string): Side =>
  ({ label: `ocikit ${args.split(' ')[0]}`, sh: `node ${q(opts.ocikit)} ${args} >/dev/null`, prepare, needs: [], cwd: REPO });
const peer = (label: string, sh: string, needs: string[], prepare?: string): Side => ({ label, sh, prepare, needs, cwd: REPO });
const ratio = (max: number): Target => ({ max, unit: 'ratio' });
const SKOPEO = 'skopeo --insecure-policy';
const ANN = '--set bench.key=v';

function rows(info: DataInfo): Row[] {
  const verify = ocikit(`verify ${D('image')}`);
  const verifySmall = ocikit(`verify ${D('small-blobs')}`);
  const deepGz = ocikit(`verify ${D('image')} --deep`);
  const deepZstd = ocikit(`verify ${D('image-zstd')} --deep`);
  const inspect = ocikit(`inspect oci-archive:${D('image.oci.tar')}:latest`);
  const annotate = ocikit(`annotate oci:${S('ann')}:latest ${ANN}`, fresh('image', 'ann'));
  const annotateTiny = ocikit(`annotate oci:${S('ann-tiny')}:latest ${ANN}`, fresh('tiny', 'ann-tiny'));
  const annotateArchive = ocikit(`annotate oci-archive:${D('image.oci.tar')}:latest ${ANN} -o oci-archive:${S('ann.oci.tar')}:latest`, clean('ann.oci.tar'));
  // In place: what rebase must copy is the new base's blobs, the same bytes the cp limit copies.
  const rebase = ocikit(`rebase oci:${S('rebase')}:latest --new-base oci:${D('newbase')}:latest --base-layers 3`, fresh('image', 'rebase'));
  const rebaseLink = ocikit(`rebase oci:${S('rebase')}:latest --new-base oci:${D('newbase')}:latest --base-layers 3 --link`, fresh('image', 'rebase'));
  const toOciArchive = ocikit(`convert oci:${D('image')}:latest oci-archive:${S('conv.oci.tar')}:latest`, clean('conv.oci.tar'));
  const toDockerArchive = ocikit(`convert oci:${D('image')}:latest docker-archive:${S('conv.docker.tar')}:bench/image:latest`, clean('conv.docker.tar'));
  const gcSmall = ocikit(`gc ${S('gc-small')}`, fresh('small-blobs', 'gc-small'));
  const gcImage = ocikit(`gc ${S('gc-image')}`, fresh('image', 'gc-image'));
  const unpackImage = ocikit(`unpack oci:${D('image')}:latest ${S('unpack')}`, clean('unpack'));
  // The floor: each layer decompressed and extracted in order by the fastest tools, nothing checked.
  const layersInOrder = (info.layouts['image']?.layers ?? []).map((l) => q(path.join(opts.out, 'image', l)));
  const tarExtract = peer('pigz -dc | tar -x, layer by layer (limit)',
    `mkdir -p ${S('tarx')} && for l in ${layersInOrder.join(' ')}; do pigz -dc "$l" | tar -x -C ${S('tarx')}; done`, ['pigz', 'tar'], clean('tarx'));

  const tarDir = peer('tar -cf of the dir (limit)', `tar -cf ${S('dir.tar')} -C ${D('image')} .`, ['tar'], clean('dir.tar'));
  const umociGc = (src: string) => peer('umoci gc', `umoci gc --layout ${S('umoci-gc')}`, ['umoci'], fresh(src, 'umoci-gc'));
  // Node's own share: start-up, one worker, every blob hashed once and nothing else (bench/node-hasher.cjs).
  const nodeHasher = (layout: string) =>
    peer(`bare Node hasher of ${layout}/ blobs, main + 1 worker`, `node ${q(path.join(BENCH, 'node-hasher.cjs'))} ${D(layout)}`, ['node']);
  const deepLimit = (layout: string, tool: string) =>
    peer(`${tool} -dc | openssl dgst, 2 at a time (limit)`,
      `printf '%s\\n' ${blobsOf(info, layout)} | xargs -P2 -I{} sh -c '${tool} -dc {} | openssl dgst -sha256' >/dev/null`, [tool, 'openssl']);

  return [
    { group: 'verify', op: 'verify image/', ocikit: verify, target: ratio(1.2),
      against: peer('openssl dgst, xargs -P2 (limit)', `ls ${D('image/blobs/sha256')}/* | xargs -P2 -n1 openssl dgst -sha256 >/dev/null`, ['openssl']) },
    { group: 'verify', op: 'verify image/', ocikit: verify, against: nodeHasher('image') },
    { group: 'verify', op: 'verify image/', ocikit: verify,
      against: peer('sha256sum, xargs -P2', `ls ${D('image/blobs/sha256')}/* | xargs -P2 -n1 sha256sum >/dev/null`, ['sha256sum']) },
    { group: 'verify', op: 'verify image/', ocikit: verify,
      // 1.0.0-rc1 reports `--type imageLayout` as unimplemented; `--type image` on a directory validates the layout.
      against: peer('oci-image-tool validate', `oci-image-tool validate --type image ${D('image')} >/dev/null`, ['oci-image-tool']) },
    { group: 'verify', op: 'verify image/', ocikit: verify,
      against: peer('skopeo copy oci: → oci:', `${SKOPEO} copy -q oci:${D('image')}:latest oci:${S('skopeo-copy')}:latest`, ['skopeo'], clean('skopeo-copy')) },
    { group: 'verify', op: 'verify small-blobs/', ocikit: verifySmall,
      against: peer('sha256sum, xargs -P2', `ls ${D('small-blobs/blobs/sha256')} | sed 's|^|${path.join(opts.out, 'small-blobs/blobs/sha256')}/|' | xargs -P2 -n1000 sha256sum >/dev/null`, ['sha256sum']) },
    { group: 'verify', op: 'verify --deep image/ (gzip)', ocikit: deepGz, target: ratio(0.8), against: deepLimit('image', 'pigz') },
    { group: 'verify', op: 'verify --deep image-zstd/', ocikit: deepZstd, target: ratio(0.8), against: deepLimit('image-zstd', 'zstd') },

    { group: 'inspect', op: 'inspect oci-archive', ocikit: inspect, target: ratio(0.1),
      against: peer('sha256sum of the tar', `sha256sum ${D('image.oci.tar')} >/dev/null`, ['sha256sum']) },
    { group: 'inspect', op: 'inspect oci-archive', ocikit: inspect,
      against: peer('skopeo inspect --raw', `${SKOPEO} inspect --raw oci-archive:${D('image.oci.tar')}:latest >/dev/null`, ['skopeo']) },

    { group: 'annotate', op: 'annotate in place, image/', ocikit: annotate,
      against: peer('umoci config --manifest.annotation', `umoci config --image ${S('umoci-ann')}:latest --manifest.annotation bench.key=v`, ['umoci'], fresh('image', 'umoci-ann')) },
    { group: 'annotate', op: 'annotate in place, image/', ocikit: annotate, target: ratio(2),
      against: peer('node -e 0 (startup floor)', 'node -e 0', ['node']) },
    { group: 'annotate', op: 'annotate in place, image/', ocikit: annotate, target: ratio(1.2),
      against: { ...annotateTiny, label: 'ocikit annotate on tiny/ (flat in layer bytes)' } },
    { group: 'annotate', op: 'annotate oci-archive → oci-archive', ocikit: annotateArchive, target: ratio(1.3),
      against: peer('cp of the tar (limit)', `cp ${D('image.oci.tar')} ${S('cp.oci.tar')}`, ['cp'], clean('cp.oci.tar')) },
    // ocikit fsyncs every file it writes before it becomes visible; cp leaves the bytes in the page cache.
    { group: 'annotate', op: 'annotate oci-archive → oci-archive', ocikit: annotateArchive, target: ratio(1.3),
      against: peer('cp of the tar + fsync (durable limit)', `dd if=${D('image.oci.tar')} of=${S('cp.oci.tar')} bs=4M conv=fsync status=none`, ['dd'], clean('cp.oci.tar')) },

    { group: 'rebase', op: 'rebase onto newbase/, in place', ocikit: rebase, target: ratio(1.2),
      against: peer('cp -r of newbase blobs (limit)', `cp -r ${D('newbase/blobs')} ${S('cp-blobs')}`, ['cp'], clean('cp-blobs')) },
    { group: 'rebase', op: 'rebase onto newbase/, in place', ocikit: rebase, target: ratio(1.2),
      against: peer('cp -r of newbase blobs + sync (durable limit)', `cp -r ${D('newbase/blobs')} ${S('cp-blobs')} && sync -f ${S('cp-blobs')}`, ['cp', 'sync'], clean('cp-blobs')) },
    // --link shares the new base's files: what is left is checking their digests, which no copy does.
    { group: 'rebase', op: 'rebase --link onto newbase/, in place', ocikit: { ...rebaseLink, label: 'ocikit rebase --link' }, target: ratio(1.2),
      against: peer('cp -r of newbase blobs + sync (durable limit)', `cp -r ${D('newbase/blobs')} ${S('cp-blobs')} && sync -f ${S('cp-blobs')}`, ['cp', 'sync'], clean('cp-blobs')) },
    { group: 'rebase', op: 'rebase --link onto newbase/, in place', ocikit: { ...rebaseLink, label: 'ocikit rebase --link' }, against: nodeHasher('newbase') },
    { group: 'rebase', op: 'rebase --link onto newbase/, in place', ocikit: { ...rebaseLink, label: 'ocikit rebase --link' },
      against: peer('openssl dgst of newbase blobs, xargs -P2 (hash limit)', `ls ${D('newbase/blobs/sha256')}/* | xargs -P2 -n1 openssl dgst -sha256 >/dev/null`, ['openssl']) },

    { group: 'convert', op: 'convert dir → oci-archive', ocikit: toOciArchive, against: tarDir },
    { group: 'convert', op: 'convert dir → oci-archive', ocikit: toOciArchive,
      against: peer('tar -c of the dir + fsync (durable limit)', `tar -cf - -C ${D('image')} . | dd of=${S('dir.tar')} bs=4M conv=fsync status=none`, ['tar', 'dd'], clean('dir.tar')) },
    { group: 'convert', op: 'convert dir → oci-archive', ocikit: toOciArchive,
      against: peer('skopeo copy oci: → oci-archive:', `${SKOPEO} copy -q oci:${D('image')}:latest oci-archive:${S('sk.oci.tar')}:latest`, ['skopeo'], clean('sk.oci.tar')) },
    { group: 'convert', op: 'convert dir → docker-archive', ocikit: toDockerArchive, against: tarDir },
    { group: 'convert', op: 'convert dir → docker-archive', ocikit: toDockerArchive,
      against: peer('skopeo copy oci: → docker-archive:', `${SKOPEO} copy -q oci:${D('image')}:latest docker-archive:${S('sk.docker.tar')}:bench/image:latest`, ['skopeo'], clean('sk.docker.tar')) },

    { group: 'unpack', op: 'unpack image/', ocikit: unpackImage, target: ratio(1.0),
      against: peer('umoci unpack', `umoci unpack --image ${D('image')}:latest ${S('umoci-unpack')}`, ['umoci'], clean('umoci-unpack')) },
    { group: 'unpack', op: 'unpack image/', ocikit: unpackImage, target: ratio(1.3), against: tarExtract },

    { group: 'gc', op: 'gc small-blobs/ (10,200 blobs)', ocikit: gcSmall, target: ratio(0.1), against: umociGc('small-blobs') },
    { group: 'gc', op: 'gc small-blobs/ (10,200 blobs)', ocikit: gcSmall, target: { max: 1, unit: 's' }, against: null },
    { group: 'gc', op: 'gc image/', ocikit: gcImage, target: ratio(0.1), against: umociGc('image') },
  ];
}

// ---------------------------------------------------------------- measuring

type Result = Measurement | { ok: false; skipped: true; error: string };
const installed = new Map<string, boolean>();
const isInstalled = (tool: string) => {
  if (!installed.has(tool)) installed.set(tool, spawnSync('sh', ['-c', `command -v ${q(tool)}`], { stdio: 'ignore' }).status === 0);
  return installed.get(tool)!;
};
const cache = new Map<string, Result>();
function run(side: Side): Result {
  const key = `${side.prepare ?? ''}\0${side.sh}`;
  let r = cache.get(key);
  if (!r) {
    const missing = side.needs.filter((t) => !isInstalled(t));
    r = missing.length
      ? { ok: false, skipped: true, error: `skipped (not installed: ${missing.join(', ')})` }
      : measure(side, { runs: opts.runs, warmup: opts.warmup, timeoutSec: opts.timeoutSec });
    process.stderr.write(`[bench] ${side.label.padEnd(48)} ${r.ok ? `${r.wall.toFixed(3)} s` : r.error}\n`);
    cache.set(key, r);
  }
  return r;
}

interface RowResult { group: string; op: string; ocikit: Result & { cmd: string }; against: (Result & { label: string; cmd: string }) | null; ratio: number | null; target: string; met: boolean | null }

function evaluate(row: Row): RowResult {
  const a = run(row.ocikit);
  const b = row.against ? run(row.against) : null;
  const ratio = a.ok && b?.ok && b.wall > 0 ? a.wall / b.wall : null;
  const t = row.target;
  const met = !t ? null : t.unit === 's' ? (a.ok ? a.wall < t.max : null) : ratio === null ? null : ratio <= t.max;
  return {
    group: row.group,
    op: row.op,
    ocikit: { ...a, cmd: row.ocikit.sh },
    against: row.against && b ? { ...b, label: row.against.label, cmd: row.against.sh } : null,
    ratio,
    target: !t ? '—' : t.unit === 's' ? `< ${t.max} s` : `≤ ${t.max}×`,
    met,
  };
}

// ---------------------------------------------------------------- report

const cell = (r: Result | null, f: (m: Extract<Result, { ok: true }>) => string) =>
  !r ? '—' : r.ok ? f(r) : 'skipped' in r ? 'skipped (not installed)' : `error: ${r.error}`;

function machine() {
  const cpu = /model name\s*:\s*(.*)/.exec(fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '')?.[1] ?? os.cpus()[0]?.model ?? '?';
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' });
  return {
    cores: os.cpus().length,
    cpu: cpu.trim(),
    memGiB: Number((os.totalmem() / 1024 ** 3).toFixed(1)),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    ocikitCommit: git.status === 0 ? git.stdout.trim() : 'none',
  };
}

function render(m: ReturnType<typeof machine>, info: DataInfo, results: RowResult[]): string {
  const img = info.layouts['image']!;
  const lines = [
    '# ocikit benchmarks',
    '',
    `- machine: ${m.cores} cores, ${m.cpu}, ${m.memGiB} GiB RAM, ${m.kernel}`,
    `- node ${m.node}; ocikit commit ${m.ocikitCommit}; ${new Date().toISOString()}`,
    `- data: --size ${sizeArg}: image/ ${info.params.layers} layers, ${formatSize(img.tarBytes)} uncompressed, ${formatSize(img.blobBytes)} of ${info.params.gzip} blobs; ` +
      `tiny/ ${formatSize(info.layouts['tiny']?.blobBytes ?? 0)}; small-blobs/ ${info.layouts['small-blobs']?.blobs ?? 0} blobs`,
    `- ${opts.warmup} warm-up + ${opts.runs} measured runs, median wall time; RSS = peak of the largest single process (GNU time %M); warm page cache`,
    `- ratio = ocikit s / against s; (limit) rows are the physical floor for the same work`,
    '',
    '| operation | ocikit s | ocikit RSS MiB | against | against s | ratio | target | met |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    lines.push(`| ${[
      r.op,
      cell(r.ocikit, (x) => x.wall.toFixed(3)),
      r.ocikit.ok ? (r.ocikit.rssMiB === null ? '?' : r.ocikit.rssMiB.toFixed(0)) : '—',
      r.against?.label ?? '(absolute)',
      cell(r.against, (x) => x.wall.toFixed(3)),
      r.ratio === null ? '—' : r.ratio.toFixed(2),
      r.target,
      r.met === null ? '—' : r.met ? 'yes' : 'no',
    ].map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

function writeAtomic(file: string, data: string) {
  fs.writeFileSync(file + '.tmp', data);
  fs.renameSync(file + '.tmp', file);
}

async function main() {
  const info = await generate({ size: opts.size, out: opts.out });
  const all = rows(info);
  const groups = [...new Set(all.map((r) => r.group))];
  const unknown = (opts.only ?? []).filter((g) => !groups.includes(g));
  if (unknown.length) throw new Error(`unknown --only group(s) ${unknown.join(', ')}; known: ${groups.join(', ')}`);
  const selected = opts.only ? all.filter((r) => opts.only!.includes(r.group)) : all;

  fs.rmSync(SCRATCH, { recursive: true, force: true });
  fs.mkdirSync(SCRATCH, { recursive: true });
  let results: RowResult[];
  try {
    results = selected.map(evaluate);
  } finally {
    fs.rmSync(SCRATCH, { recursive: true, force: true });
  }

  const m = machine();
  const md = render(m, info, results);
  process.stdout.write('\n' + md);
  fs.mkdirSync(RESULTS, { recursive: true });
  writeAtomic(path.join(RESULTS, 'latest.md'), md);
  writeAtomic(path.join(RESULTS, 'latest.json'), JSON.stringify({ machine: m, options: { ...opts, size: sizeArg }, data: info, rows: results }, null, 2) + '\n');
  process.stderr.write(`[bench] wrote ${path.relative(REPO, RESULTS)}/latest.md and latest.json\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`[bench] error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
