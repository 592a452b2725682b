import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * ocikit's own version, from the package.json of the package this module sits in (the bundle's
 * `dist/`, or `src/cli/` run from source): the working directory's package.json is the user's project.
 */
export function ownVersion(moduleUrl: string = import.meta.url): string {
  for (let dir = dirname(fileURLToPath(moduleUrl)), up = ''; dir !== up; up = dir, dir = dirname(dir)) {
    const manifest = readManifest(join(dir, 'package.json'));
    if (manifest?.name === 'ocikit' && typeof manifest.version === 'string') return manifest.version;
  }
  return 'unknown';
}

function readManifest(path: string): { name?: unknown; version?: unknown } | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as { name?: unknown; version?: unknown };
  } catch {
    return undefined;
  }
}
