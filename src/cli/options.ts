/**
 * The options several commands share, each defined once, and the typing that lets a command's
 * arguments be inferred from its builder instead of declared beside it and cast to match.
 * Spread them into a builder: `y.positional(…).options({ ...json(), ...wait })`.
 */
import type { Argv } from 'yargs';
import { OcikitError } from '../errors.js';
import { parsePlatforms, type PlatformSpec } from '../model/platform.js';

/** The parsed arguments a builder produces. */
export type ArgsOf<B> = B extends (y: Argv<object>) => Argv<infer T> ? T : never;

export const json = (describe = 'machine-readable output') => ({ json: { type: 'boolean', describe } }) as const;

export const wait = { wait: { type: 'boolean', describe: 'wait for a lock held by another ocikit process' } } as const;

export const link = {
  link: {
    type: 'boolean',
    describe: 'into a layout directory: hard-link blobs from a layout on the same file system instead of copying them (both then share the files)',
  },
} as const;

export const output = (describe: string) => ({ output: { alias: 'o', type: 'string', describe } }) as const;

export const dryRun = (describe: string) => ({ 'dry-run': { type: 'boolean', describe } }) as const;

export const baseLayouts = (describe: string) => ({ 'base-layout': { type: 'string', array: true, describe } }) as const;

/**
 * `--platform os/arch[/variant]`, repeatable and comma-separated, parsed once while the arguments are:
 * the command gets the list.
 */
export const platforms = (describe: string) => ({
  platform: { type: 'string', array: true, describe, coerce: (texts: string[]): PlatformSpec[] => parsePlatforms(texts) },
}) as const;

/** `--platform` for a command that acts on one platform: more than one is refused, not half-used. */
export const platform = (describe: string) => ({
  platform: { type: 'string', describe, coerce: onePlatform },
}) as const;

function onePlatform(text: string | string[]): PlatformSpec {
  const parsed = parsePlatforms(Array.isArray(text) ? text : [text]);
  if (parsed.length !== 1) throw new OcikitError(`--platform: this command takes one os/arch[/variant], not ${parsed.length}`);
  return parsed[0]!;
}

/** `--max-layer-bytes`: a size such as 1073741824 or 64G, parsed once while the arguments are. */
export const maxLayerBytes = (describe: string) => ({
  'max-layer-bytes': { type: 'string', describe, coerce: (text: string): number => parseSize(text, '--max-layer-bytes') },
}) as const;

function parseSize(text: string, option: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(String(text).trim());
  if (!m) throw new OcikitError(`${option} ${text}: expected a size such as 1073741824 or 64G`);
  const power = ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
  return Math.floor(Number(m[1]) * 1024 ** power);
}
