/**
 * Hostile input: archives and layouts built to make a tool read or write outside its target, loop,
 * or exhaust memory. Every command that reads or writes is run on each one, as the CLI; each must end
 * with one clear error line (exit 1 or 2), and the whole sandbox around the input (the input itself,
 * the directory a link points into, the named outputs) must be exactly as it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, open, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { createGzip } from 'node:zlib';
import { MediaType } from '../src/model/media-types.js';
import { buildImage, buildIndex, describe, readTree, tagged, writeLayout } from '../testdata/builder.js';
import { gnuLongRecord, paxHeader, plainEntries, rawEntry, tarOf } from './helpers/hostile-tar.js';
import { assertCleanError, assertNoCrash, describeRun, finish, hasCommand, OCIKIT_BIN, runOcikit, type RunResult } from './helpers/ocikit-process.js';
import { layoutFixture, scratchDir } from './helpers/scratch.js';
import { assertTreeUnchanged, snapshotTree, withoutPaths, type TreeSnapshot } from './helpers/tree-snapshot.js';

const { dir: root, cleanup } = await scratchDir('hostile');
test.after(cleanup);

const APP = layoutFixture('app');
const appFiles = await readTree(APP);
const appIndex = JSON.parse(appFiles.get('index.json')!.toString()) as { manifests: Array<Record<string, unknown>> };
const manifestDigest = appIndex.manifests[0]!.digest as string;
const manifestHex = manifestDigest.slice('sha256:'.length);
const manifest = JSON.parse(appFiles.get(`blobs/sha256/${manifestHex}`)!.toString()) as {
  config: { digest: string }; layers: Array<{ digest: string; size: number }>;
};
const configHex = manifest.config.digest.slice('sha256:'.length);
const layerHex = manifest.layers[0]!.digest.slice('sha256:'.length);
const configBytes = appFiles.get(`blobs/sha256/${configHex}`)!;
const layerBytes = appFiles.get(`blobs/sha256/${layerHex}`)!;

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

interface Sandbox {
  /** Everything a case owns: the input, an `outside/` directory, the outputs. Snapshotted whole. */
  dir: string;
  outside: string;
}

interface HostileCase {
  name: string;
  kind: 'archive' | 'layout';
  /** Writes the hostile input into the sandbox and returns its path. */
  build(box: Sandbox): Promise<string>;
  /** What the error line must say (for reading commands). */
  mentions?: RegExp;
  /** Commands that may succeed because they never touch the hostile part (they must still write only the input). */
  mayPass?: string[];
  /** Only "no crash, nothing outside changed": for inputs that are odd but not necessarily invalid. */
  anyOutcome?: boolean;
  /** Paths outside the sandbox that must not appear. */
  mustNotExist?: string[];
  timeoutMs?: number;
}

interface Command {
  name: string;
  args: string[];
}

function commandsFor(kind: HostileCase['kind'], input: string, box: Sandbox): Command[] {
  const out = (name: string) => join(box.dir, name);
  const commands: Command[] = [
    { name: 'inspect', args: ['inspect', input] },
    { name: 'convert-oci', args: ['convert', input, `oci:${out('out')}`] },
    { name: 'convert-oci-archive', args: ['convert', input, `oci-archive:${out('out.tar')}`] },
    { name: 'tag', args: ['tag', input, 'hostile'] },
  ];
  // The docker-archive writer reads exactly what the oci-archive one does; once per input kind is enough.
  if (kind === 'archive') commands.push({ name: 'convert-docker-archive', args: ['convert', input, `docker-archive:${out('out-docker.tar')}`] });
  if (hasCommand('verify')) commands.push({ name: 'verify', args: ['verify', input] });
  if (hasCommand('annotate')) commands.push({ name: 'annotate', args: ['annotate', input, '--set', 'org.example.hostile=1'] });
  if (hasCommand('gc') && kind === 'layout') commands.push({ name: 'gc', args: ['gc', input] });
  return commands;
}

let caseNumber = 0;

async function runCase(c: HostileCase): Promise<void> {
  const box: Sandbox = { dir: join(root, `${caseNumber++}-${c.name.replace(/[^a-z0-9]+/gi, '-')}`), outside: '' };
  box.outside = join(box.dir, 'outside');
  await mkdir(box.outside, { recursive: true });
  await writeFile(join(box.outside, 'secret'), configBytes);
  const input = await c.build(box);
  let before = await snapshotTree(box.dir);
  const preexisting = new Set((c.mustNotExist ?? []).filter((p) => existsSync(p)));
  for (const command of commandsFor(c.kind, input, box)) {
    const r = await runOcikit(command.args, { timeoutMs: c.timeoutMs ?? 30_000 });
    before = await judge(c, command, r, box, before, input);
  }
  for (const path of c.mustNotExist ?? []) if (!preexisting.has(path)) assert.ok(!existsSync(path), `${c.name}: ${path} was created outside the sandbox`);
}

/** Judges one run; returns the snapshot later runs are compared with (a permitted success may change the input). */
async function judge(c: HostileCase, command: Command, r: RunResult, box: Sandbox, before: TreeSnapshot, input: string): Promise<TreeSnapshot> {
  const what = `${c.name} / ${command.name}`;
  if (c.anyOutcome || (r.code === 0 && c.mayPass?.includes(command.name))) {
    assertNoCrash(r);
    // A success may change the input (tag) or create the named output, and nothing else.
    const outputs = new Set(['out', 'out.tar', 'out-docker.tar', relative(box.dir, input).split(sep)[0]]);
    const ignore = (rel: string) => outputs.has(rel.split('/')[0]!);
    await assertTreeUnchanged(box.dir, withoutPaths(before, ignore), what, { ignore });
    for (const name of ['out', 'out.tar', 'out-docker.tar']) await rm(join(box.dir, name), { recursive: true, force: true });
    return snapshotTree(box.dir);
  }
  if (command.name === 'verify' && r.code === 1) {
    // verify's findings are its report (stdout, exit 1), not an error line.
    assertNoCrash(r);
    assert.match(r.stdout, /FAILED|error/, `${what}: ${describeRun(r)}`);
  } else {
    assertCleanError(r, [1, 2]);
  }
  if (c.mentions && command.name !== 'tag') assert.match(`${r.stderr}${r.stdout}`, c.mentions, `${what}: ${describeRun(r)}`);
  await assertTreeUnchanged(box.dir, before, what);
  return before;
}

const cases: HostileCase[] = [];
function hostile(c: HostileCase): void {
  cases.push(c);
}

// ---------------------------------------------------------------------------
// Archives
// ---------------------------------------------------------------------------

/** The app layout's files as tar entries, minus `without`, with `extra` entries placed after them. */
function appArchive(extra: Buffer[], options: { without?: string[]; before?: Buffer[] } = {}): Buffer {
  const files = new Map([...appFiles].filter(([name]) => !(options.without ?? []).includes(name)));
  return tarOf(...(options.before ?? []), ...plainEntries(files), ...extra);
}

function archiveCase(name: string, make: (box: Sandbox) => Buffer | Promise<Buffer>, options: Partial<HostileCase> = {}): void {
  hostile({
    name,
    kind: 'archive',
    async build(box) {
      const path = join(box.dir, 'image.tar');
      await writeFile(path, await make(box));
      return path;
    },
    ...options,
  });
}

const configName = `blobs/sha256/${configHex}`;
const layerName = `blobs/sha256/${layerHex}`;

archiveCase('entry named ../escape', () => appArchive([rawEntry({ name: '../escape.txt', data: 'escaped\n' })]), { mentions: /unsafe tar entry name/ });
archiveCase('entry named blobs/../../escape', () => appArchive([rawEntry({ name: 'blobs/../../escape.txt', data: 'x' })]), { mentions: /unsafe tar entry name/ });
archiveCase('absolute entry name', () => appArchive([rawEntry({ name: '/tmp/ocikit-hostile-absolute', data: 'x' })]), {
  mentions: /absolute/, mustNotExist: ['/tmp/ocikit-hostile-absolute'],
});
archiveCase('blob is a relative symlink out of the archive', () => appArchive(
  [rawEntry({ name: configName, typeflag: '2', linkname: '../../../outside/secret' })], { without: [configName] },
), { mentions: /escapes|outside|symlink/ });
archiveCase('blob is an absolute symlink', (box) => appArchive(
  [rawEntry({ name: configName, typeflag: '2', linkname: join(box.outside, 'secret') })], { without: [configName] },
), { mentions: /absolute|outside/ });
archiveCase('blob is a hardlink out of the archive', () => appArchive(
  [rawEntry({ name: configName, typeflag: '1', linkname: '../outside/secret' })], { without: [configName] },
), { mentions: /escapes|outside|hardlink/ });
archiveCase('blob is an absolute hardlink', (box) => appArchive(
  [rawEntry({ name: configName, typeflag: '1', linkname: join(box.outside, 'secret') })], { without: [configName] },
), { mentions: /absolute|outside/ });
archiveCase('unreferenced symlink pointing outside', () => appArchive([rawEntry({ name: 'extra/link', typeflag: '2', linkname: '/etc/passwd' })]), {
  mentions: /outside|absolute/,
});
archiveCase('symlinked blobs/sha512 dir, then a blob written through it', (box) => appArchive([
  rawEntry({ name: 'blobs/sha512', typeflag: '2', linkname: box.outside }),
  rawEntry({ name: `blobs/sha512/${'ab'.repeat(64)}`, data: 'written through the link\n' }),
]), { mentions: /symlink|not a directory|through/ });
archiveCase('blobs/sha512 -> /tmp, then blobs/sha512/x', () => appArchive([
  rawEntry({ name: 'blobs/sha512', typeflag: '2', linkname: '/tmp' }),
  rawEntry({ name: 'blobs/sha512/x', data: 'written through the link\n' }),
]), { mentions: /symlink|not a directory|through|outside|absolute/, mustNotExist: ['/tmp/x'] });
archiveCase('relative dir symlink blobs/sha256 -> ../outside', () => appArchive([
  rawEntry({ name: 'blobs/sha384', typeflag: '2', linkname: '../outside' }),
  rawEntry({ name: 'blobs/sha384/planted', data: 'x' }),
]), { mentions: /symlink|not a directory|through|escapes/ });
archiveCase('character device entry', () => appArchive([rawEntry({ name: 'dev/null', typeflag: '3', devmajor: 1, devminor: 3 })]), {
  mentions: /device|not a regular|type/,
});
archiveCase('block device named as a blob', () => appArchive([rawEntry({ name: layerName, typeflag: '4', devmajor: 8, devminor: 0 })], { without: [layerName] }), {
  mentions: /device|not a regular|type/,
});
archiveCase('fifo entry', () => appArchive([rawEntry({ name: 'pipe', typeflag: '6' })]), { mentions: /fifo|device|not a regular|type/ });
archiveCase('duplicate index.json with different content', () => {
  const other = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }));
  return appArchive([rawEntry({ name: 'index.json', data: other })]);
}, { mentions: /duplicate/ });
archiveCase('duplicate blob entry with different content', () => {
  const tampered = Buffer.from(configBytes);
  tampered[10] = tampered[10]! ^ 0xff;
  return appArchive([rawEntry({ name: configName, data: tampered })]);
}, { mentions: /duplicate/ });
archiveCase('PAX path ../pax-escape', () => appArchive([paxHeader({ path: '../pax-escape' }), rawEntry({ name: 'harmless', data: 'x' })]), {
  mentions: /unsafe tar entry name/,
});
archiveCase('PAX path absolute', () => appArchive([paxHeader({ path: '/tmp/ocikit-pax-escape' }), rawEntry({ name: 'harmless', data: 'x' })]), {
  mentions: /unsafe tar entry name/, mustNotExist: ['/tmp/ocikit-pax-escape'],
});
archiveCase('PAX linkpath out of the archive on a blob symlink', () => appArchive(
  [paxHeader({ linkpath: '../../../../outside/secret' }), rawEntry({ name: configName, typeflag: '2', linkname: 'harmless' })], { without: [configName] },
), { mentions: /escapes|outside/ });
archiveCase('GNU long name ../../gnu-escape', () => appArchive([gnuLongRecord('L', `../../gnu-escape-${'x'.repeat(120)}`), rawEntry({ name: 'harmless', data: 'x', magic: 'gnu' })]), {
  mentions: /unsafe tar entry name/,
});
archiveCase('GNU long link name pointing outside', () => appArchive(
  [gnuLongRecord('K', `/${'d/'.repeat(60)}secret`), rawEntry({ name: configName, typeflag: '2', linkname: 'harmless', magic: 'gnu' })], { without: [configName] },
), { mentions: /absolute|outside/ });
archiveCase('PAX header with no entry after it', () => Buffer.concat([appArchive([]).subarray(0, -1024), paxHeader({ path: 'dangling' }), Buffer.alloc(1024)]), {
  mentions: /truncated|not followed/,
});
archiveCase('tar ends in the middle of a blob', () => {
  const full = appArchive([]);
  const at = full.indexOf(layerBytes.subarray(0, 32));
  return full.subarray(0, at + Math.floor(layerBytes.length / 2));
}, { mentions: /truncated/ });
archiveCase('tar ends in the middle of a header', () => {
  const full = appArchive([]);
  const at = full.indexOf(Buffer.from(layerName));
  return full.subarray(0, at + 200);
}, { mentions: /truncated/ });
archiveCase('header claims more content than the file holds', () => appArchive([rawEntry({ name: 'big', data: 'small', size: 1 << 30 })]), {
  mentions: /truncated/,
});
archiveCase('index.json over the 4 MiB cap', () => {
  const padded = Buffer.concat([appFiles.get('index.json')!, Buffer.alloc(5 * 1024 * 1024, 0x20)]);
  return appArchive([rawEntry({ name: 'index.json', data: padded })], { without: ['index.json'] });
}, { mentions: /limit|too large|cap|over/ });
archiveCase('index.json of 10,000 nested arrays', () => {
  const deep = Buffer.from(`{"schemaVersion":2,"manifests":${'['.repeat(10_000)}${']'.repeat(10_000)}}`);
  return appArchive([rawEntry({ name: 'index.json', data: deep })], { without: ['index.json'] });
});
archiveCase('digest used as a path in index.json (sha256:../../x)', () => {
  const index = { ...appIndex, manifests: [{ ...appIndex.manifests[0], digest: 'sha256:../../outside/secret' }] };
  return appArchive([rawEntry({ name: 'index.json', data: JSON.stringify(index) })], { without: ['index.json'] });
}, { mentions: /digest/ });
archiveCase('docker-save manifest.json naming ../ paths', () => {
  const files = new Map<string, Buffer>([
    ['manifest.json', Buffer.from(JSON.stringify([{ Config: '../outside/secret', RepoTags: ['x:y'], Layers: ['/etc/passwd'] }]))],
  ]);
  return tarOf(...plainEntries(files));
}, { mentions: /unsafe|not in the archive|outside|\.\./ });

// A 1 GiB index.json costs no disk: a sparse file with one header, a hole, and the end marker.
hostile({
  name: 'sparse 1 GiB index.json entry',
  kind: 'archive',
  async build(box) {
    const path = join(box.dir, 'image.tar');
    const size = 1 << 30;
    const head = Buffer.concat(plainEntries(new Map([['oci-layout', appFiles.get('oci-layout')!]])));
    const fh = await open(path, 'w');
    try {
      await fh.write(head, 0, head.length, 0);
      const header = rawEntry({ name: 'index.json', size }).subarray(0, 512);
      await fh.write(header, 0, 512, head.length);
      await fh.write(Buffer.alloc(1024), 0, 1024, head.length + 512 + size);
    } finally {
      await fh.close();
    }
    return path;
  },
  mentions: /limit|too large|cap|over/,
  timeoutMs: 20_000,
});

// ---------------------------------------------------------------------------
// Layouts
// ---------------------------------------------------------------------------

function layoutCase(name: string, mutate: (layout: string, box: Sandbox) => Promise<void>, options: Partial<HostileCase> = {}): void {
  hostile({
    name,
    kind: 'layout',
    async build(box) {
      const layout = join(box.dir, 'layout');
      await cp(APP, layout, { recursive: true });
      await mutate(layout, box);
      return layout;
    },
    ...options,
  });
}

async function setIndex(layout: string, manifests: unknown[], extra: Record<string, unknown> = {}): Promise<void> {
  await writeFile(join(layout, 'index.json'), JSON.stringify({ ...appIndex, ...extra, manifests }));
}

/** Stores a new manifest (given as a change of the app manifest) and points index.json at it. */
async function setManifest(layout: string, change: (m: Record<string, unknown>) => Record<string, unknown>): Promise<void> {
  const bytes = Buffer.from(JSON.stringify(change(JSON.parse(JSON.stringify(manifest)))));
  const hex = createHash('sha256').update(bytes).digest('hex');
  await writeFile(join(layout, 'blobs', 'sha256', hex), bytes);
  await setIndex(layout, [{ ...appIndex.manifests[0], digest: `sha256:${hex}`, size: bytes.length }]);
}

const withDigest = (digest: string) => async (layout: string) => setIndex(layout, [{ ...appIndex.manifests[0], digest }]);
layoutCase('index.json digest sha256:../../x', withDigest('sha256:../../outside/secret'), { mentions: /digest/ });
layoutCase('index.json digest in uppercase hex', withDigest(`sha256:${manifestHex.toUpperCase()}`), { mentions: /digest/ });
layoutCase('index.json digest of the wrong length', withDigest(`sha256:${manifestHex.slice(0, 40)}`), { mentions: /digest/ });
layoutCase('index.json digest with an unknown algorithm holding slashes', withDigest(`../../outside:${manifestHex}`), { mentions: /digest/ });
layoutCase('index.json digest algorithm sha256/../..', withDigest(`sha256/../..:${manifestHex}`), { mentions: /digest/ });
layoutCase('manifest layer digest sha256:../../../../etc/passwd', (layout) => setManifest(layout, (m) => ({
  ...m, layers: [{ ...(m.layers as object[])[0], digest: 'sha256:../../../../etc/passwd' }],
})), { mentions: /digest/, mayPass: ['tag'] });
layoutCase('manifest config digest in uppercase hex', (layout) => setManifest(layout, (m) => ({
  ...m, config: { ...(m.config as object), digest: `sha256:${configHex.toUpperCase()}` },
})), { mentions: /digest/, mayPass: ['tag'] });

async function linkBlobOut(layout: string, box: Sandbox, hex: string): Promise<void> {
  const blobFile = join(layout, 'blobs', 'sha256', hex);
  const copy = join(box.outside, hex);
  await writeFile(copy, await readFile(blobFile));
  await rm(blobFile);
  await symlink(copy, blobFile);
}
// The linked-to copies hold the right bytes: only refusing to follow the link keeps them unread.
layoutCase('manifest blob is a symlink out of the layout', (layout, box) => linkBlobOut(layout, box, manifestHex), {
  mentions: /symlink/, mayPass: ['tag'],
});
// Metadata commands that never open the config or a layer may succeed; they still must not follow the link.
layoutCase('config blob is a symlink out of the layout', (layout, box) => linkBlobOut(layout, box, configHex), {
  mentions: /symlink/, mayPass: ['tag', 'annotate'],
});
layoutCase('layer blob is a symlink out of the layout', (layout, box) => linkBlobOut(layout, box, layerHex), {
  mentions: /symlink/, mayPass: ['tag', 'inspect', 'annotate', 'gc'],
});
layoutCase('blobs/sha256 is a symlink to a directory outside', async (layout, box) => {
  const moved = join(box.outside, 'sha256');
  await cp(join(layout, 'blobs', 'sha256'), moved, { recursive: true });
  await rm(join(layout, 'blobs', 'sha256'), { recursive: true });
  await symlink(moved, join(layout, 'blobs', 'sha256'));
}, { mentions: /symlink/, mayPass: ['tag'] });
layoutCase('blobs is a symlink to a directory outside', async (layout, box) => {
  const moved = join(box.outside, 'blobs');
  await cp(join(layout, 'blobs'), moved, { recursive: true });
  await rm(join(layout, 'blobs'), { recursive: true });
  await symlink(moved, join(layout, 'blobs'));
}, { mentions: /symlink/, mayPass: ['tag'] });
layoutCase('index.json is a symlink', async (layout, box) => {
  await writeFile(join(box.outside, 'index.json'), appFiles.get('index.json')!);
  await rm(join(layout, 'index.json'));
  await symlink(join(box.outside, 'index.json'), join(layout, 'index.json'));
}, { mentions: /symlink/ });
// Opening a FIFO for reading waits for a writer: without O_NONBLOCK the process hung, deaf to SIGTERM.
const mkfifo = async (path: string) => {
  await rm(path, { force: true });
  execFileSync('mkfifo', [path]);
};
layoutCase('index.json is a FIFO', (layout) => mkfifo(join(layout, 'index.json')), { mentions: /index\.json: not a regular file/ });
layoutCase('manifest blob is a FIFO', (layout) => mkfifo(join(layout, 'blobs', 'sha256', manifestHex)), {
  mentions: /not a regular file/, mayPass: ['tag'],
});
layoutCase('layer blob is a FIFO', (layout) => mkfifo(join(layout, 'blobs', 'sha256', layerHex)), {
  mentions: /not a regular file/, mayPass: ['tag', 'inspect', 'annotate', 'gc'],
});
hostile({
  name: 'the input path is a FIFO',
  kind: 'archive',
  async build(box) {
    const path = join(box.dir, 'image.tar');
    await mkfifo(path);
    return path;
  },
  mentions: /image\.tar: not a (regular file|tar file|directory)/,
});
layoutCase('index.json over the 4 MiB cap', async (layout) => {
  await writeFile(join(layout, 'index.json'), Buffer.concat([appFiles.get('index.json')!, Buffer.alloc(5 * 1024 * 1024, 0x20)]));
}, { mentions: /limit|too large|cap|over/ });
layoutCase('index.json of 1 GiB (sparse)', async (layout) => {
  const fh = await open(join(layout, 'index.json'), 'w');
  await fh.truncate(1 << 30).finally(() => fh.close());
}, { mentions: /limit|too large|cap|over/, timeoutMs: 20_000 });
// A lenient decode would turn the byte into U+FFFD, and a writing command (tag) would store that.
layoutCase('index.json with a byte that is not UTF-8', async (layout) => {
  const text = JSON.stringify({ ...appIndex, annotations: { 'org.example.name': 'caf\u00e9' } });
  await writeFile(join(layout, 'index.json'), Buffer.from(text, 'latin1'));
}, { mentions: /not valid UTF-8/ });
layoutCase('index.json of 10,000 nested arrays', async (layout) => {
  await writeFile(join(layout, 'index.json'), `{"schemaVersion":2,"manifests":${'['.repeat(10_000)}${']'.repeat(10_000)}}`);
});
layoutCase('index.json with 10,000 nested arrays in an unknown field', async (layout) => {
  await writeFile(join(layout, 'index.json'), JSON.stringify(appIndex).replace(/}$/, `,"x":${'['.repeat(10_000)}${']'.repeat(10_000)}}`));
});
layoutCase('manifest with 100,000 nested arrays in an unknown field', (layout) => setManifest(layout, (m) => m).then(async () => {
  // setManifest wrote a plain copy; store the deep one by hand so the raw text stays small.
  const raw = Buffer.from(JSON.stringify(manifest).replace(/}$/, `,"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`));
  const hex = createHash('sha256').update(raw).digest('hex');
  await writeFile(join(layout, 'blobs', 'sha256', hex), raw);
  await setIndex(layout, [{ ...appIndex.manifests[0], digest: `sha256:${hex}`, size: raw.length }]);
}), { mayPass: ['tag'] });

/** Blob names with an algorithm ocikit cannot hash are never verified, so only they can form a cycle. */
layoutCase('index cycle through an unverifiable digest', async (layout) => {
  const self = `md5:${'c'.repeat(32)}`;
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [
    { mediaType: MediaType.ociIndex, digest: self, size: 0 }, appIndex.manifests[0],
  ] }));
  // The size must be right for the cycle to be followed at all: fix it up once the length is known.
  const sized = Buffer.from(body.toString().replace('"size":0', `"size":${body.length}`));
  const fixed = Buffer.from(sized.toString().replace(`"size":${body.length}`, `"size":${sized.length}`));
  await mkdir(join(layout, 'blobs', 'md5'), { recursive: true });
  await writeFile(join(layout, 'blobs', 'md5', 'c'.repeat(32)), fixed);
  await setIndex(layout, [{ mediaType: MediaType.ociIndex, digest: self, size: fixed.length, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }]);
}, { anyOutcome: true, timeoutMs: 20_000 });
layoutCase('index that names itself under a sha256 it does not hash to', async (layout) => {
  const fake = `sha256:${'d'.repeat(64)}`;
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ mediaType: MediaType.ociIndex, digest: fake, size: 0 }] }));
  await writeFile(join(layout, 'blobs', 'sha256', 'd'.repeat(64)), body);
  await setIndex(layout, [{ mediaType: MediaType.ociIndex, digest: fake, size: body.length }]);
}, { mayPass: ['tag'] });
layoutCase('indexes nested 200 deep', async (layout) => {
  let top = { ...appIndex.manifests[0] } as Record<string, unknown>;
  delete top.annotations;
  for (let i = 0; i < 200; i++) {
    const built = buildIndex({ manifests: [top as never] });
    await writeFile(join(layout, 'blobs', 'sha256', built.descriptor.digest.slice(7)), built.blob.bytes);
    top = built.descriptor;
  }
  await setIndex(layout, [tagged(top as never, 'latest')]);
}, { mentions: /deep|nesting/, mayPass: ['tag'] });

// Each case spawns ocikit a handful of times; cases share nothing, so they run side by side.
test('hostile inputs: clear error, nothing changed in or around the input', { concurrency: 4, timeout: 300_000 }, async (t) => {
  await Promise.all(cases.map((c) => t.test(`${c.kind}: ${c.name}`, () => runCase(c))));
});

// ---------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------

test('a layout path with .. segments is used as given and nothing outside it changes', async () => {
  const box = join(root, 'dotdot');
  await mkdir(join(box, 'work', 'sub'), { recursive: true });
  await cp(APP, join(box, 'work', 'layout'), { recursive: true });
  const before = await snapshotTree(box);
  const viaDotDot = join(box, 'work', 'sub', '..', 'layout');
  const r = await runOcikit(['tag', `${viaDotDot}:latest`, 'v2'], { cwd: join(box, 'work', 'sub') });
  assert.equal(r.code, 0, describeRun(r));
  const relative = await runOcikit(['tag', '../layout:latest', 'v3'], { cwd: join(box, 'work', 'sub') });
  assert.equal(relative.code, 0, describeRun(relative));
  const ignore = (rel: string) => rel === 'work/layout/index.json';
  await assertTreeUnchanged(box, withoutPaths(before, ignore), 'tag through ..', { ignore });
  const index = JSON.parse(await readFile(join(box, 'work', 'layout', 'index.json'), 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
  assert.deepEqual(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).sort(), ['latest', 'v2', 'v3']);
});

test('a tag that looks like a path is refused and writes nothing', async () => {
  const box = join(root, 'tag-path');
  await cp(APP, join(box, 'layout'), { recursive: true });
  const before = await snapshotTree(box);
  for (const bad of ['../../escape', '/abs', 'a/../b', '']) {
    const r = await runOcikit(['tag', join(box, 'layout'), bad]);
    assertCleanError(r, [1, 2]);
    await assertTreeUnchanged(box, before, `tag ${JSON.stringify(bad)}`);
  }
});


// ---------------------------------------------------------------------------
// Decompression bomb
// ---------------------------------------------------------------------------

/** 1 GiB of zeros, gzip-compressed (about 4.5 MiB), and the digest of the zeros (its diff_id). */
async function gzipBomb(): Promise<{ gz: Buffer; diffId: string }> {
  const gzip = createGzip({ level: 1 });
  const chunks: Buffer[] = [];
  gzip.on('data', (c: Buffer) => chunks.push(c));
  const zeros = Buffer.alloc(1 << 20);
  const hash = createHash('sha256');
  for (let i = 0; i < 1024; i++) {
    hash.update(zeros);
    if (!gzip.write(zeros)) await new Promise((resolve) => gzip.once('drain', resolve));
  }
  gzip.end();
  await new Promise((resolve) => gzip.once('end', resolve));
  return { gz: Buffer.concat(chunks), diffId: `sha256:${hash.digest('hex')}` };
}

/** Peak memory of a child in KiB, from GNU time; undefined where it is not installed. */
async function runMeasured(args: string[]): Promise<{ r: RunResult; maxRssKiB: number | undefined; ms: number }> {
  const started = performance.now();
  if (!existsSync('/usr/bin/time')) return { r: await runOcikit(args, { timeoutMs: 120_000 }), maxRssKiB: undefined, ms: performance.now() - started };
  const { spawn } = await import('node:child_process');
  const child = spawn('/usr/bin/time', ['-f', 'maxrss=%M', process.execPath, OCIKIT_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const r = await finish(child, args, 120_000);
  const rss = /maxrss=(\d+)/.exec(r.stderr);
  r.stderr = r.stderr.replace(/maxrss=\d+\n?/, '');
  return { r, maxRssKiB: rss ? Number(rss[1]) : undefined, ms: performance.now() - started };
}

test('a gzip bomb under verify --deep costs bounded time and flat memory', { skip: !hasCommand('verify'), timeout: 180_000 }, async (t) => {
  const { gz, diffId } = await gzipBomb();
  const layer = { bytes: gz, descriptor: describe(gz, MediaType.ociLayerGzip), tar: Buffer.alloc(0), diffId, compression: 'gzip' as const };
  const image = buildImage({ layers: [layer] });
  const layout = join(root, 'bomb');
  await writeLayout(layout, { manifests: [tagged(image.descriptor, 'bomb')], blobs: image.blobs });
  const before = await snapshotTree(layout);

  const capped = await runMeasured(['verify', '--deep', '--max-layer-bytes', '64M', layout]);
  assertNoCrash(capped.r);
  assert.ok(capped.ms < 30_000, `a capped bomb stops early: ${capped.ms.toFixed(0)} ms`);
  const full = await runMeasured(['verify', '--deep', '--jobs', '1', layout]);
  assertNoCrash(full.r);
  assert.equal(full.r.code, 0, `1 GiB of zeros is a valid (if silly) layer: ${describeRun(full.r)}`);
  for (const [name, m] of [['capped', capped], ['full', full]] as const) {
    if (m.maxRssKiB !== undefined) assert.ok(m.maxRssKiB < 400 * 1024, `${name}: peak memory ${m.maxRssKiB} KiB while inflating 1 GiB`);
  }
  await assertTreeUnchanged(layout, before, 'verify only reads');
  t.diagnostic(`capped: ${capped.ms.toFixed(0)} ms, ${capped.maxRssKiB ?? '?'} KiB; full 1 GiB: ${full.ms.toFixed(0)} ms, ${full.maxRssKiB ?? '?'} KiB`);
});
