#!/usr/bin/env node
// `npm run demo`: runs ocikit's jobs on a copy of the bundled sample images and shows each command.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'ocikit-demo-'));
for (const name of ['app', 'base', 'base-v2', 'multi']) cpSync(join(root, 'testdata/layouts', name), join(work, name), { recursive: true });
cpSync(join(root, 'testdata/archives/app.docker.tar'), join(work, 'app.docker.tar'));

let failed = false;
function ocikit(...args) {
  process.stdout.write(`\n$ ocikit ${args.join(' ')}\n`);
  const result = spawnSync(process.execPath, [join(root, 'bin/ocikit.js'), ...args], { cwd: work, stdio: 'inherit' });
  if (result.status !== 0) failed = true;
}

process.stdout.write(`working on copies in ${work}\n`);
ocikit('inspect', 'oci:app:latest');
ocikit('inspect', 'multi');
ocikit('convert', 'app.docker.tar', 'oci-archive:app.oci.tar:latest');
ocikit('ls', 'app.oci.tar');
ocikit('verify', '--deep', 'app');
ocikit('annotate', 'oci:app:latest', '--base', 'oci:base:1.0', '--base-name', 'example.com/base:1.0', '--from-buildpacks', '--created', '2024-01-01T00:00:00Z');
ocikit('rebase', 'oci:app:latest', '--new-base', 'oci:base-v2:2.0', '--old-base', 'oci:base:1.0');
ocikit('inspect', 'oci:app:latest');
ocikit('verify', 'app');
ocikit('gc', 'app');
rmSync(work, { recursive: true, force: true });
process.exitCode = failed ? 1 : 0;
