/**
 * An image config converted to a runtime config.json as the image-spec's conversion.md says: cwd, env,
 * args verbatim; the implicit annotations, overridden by Config.Labels; the user resolved in the rootfs.
 * Everything else is the runtime-spec example's Linux container (model/runtime-config.ts).
 */
import type { ImageConfig } from '../model/image-config.js';
import { defaultRuntimeConfig, type RuntimeConfig } from '../model/runtime-config.js';
import type { ResolvedUser } from './users.js';

export function bundleConfig(image: ImageConfig, resolved: ResolvedUser): RuntimeConfig {
  const spec = defaultRuntimeConfig();
  const c = image.config ?? {};
  spec.process.user = { ...resolved.user };
  if (c.WorkingDir) spec.process.cwd = c.WorkingDir;
  spec.process.env = mergedEnv(spec.process.env ?? [], c.Env ?? []);
  // A named user gets its home directory, as Docker and umoci give it, unless the image sets HOME itself.
  if (resolved.home !== undefined && !spec.process.env.some((e) => nameOf(e) === 'HOME')) spec.process.env.push(`HOME=${resolved.home}`);
  const args = [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
  if (args.length > 0) spec.process.args = args;
  spec.annotations = annotationsOf(image);
  return spec;
}

/** The defaults, each replaced in place by the image's variable of the same name, then the image's others (umoci's order). */
function mergedEnv(defaults: string[], image: string[]): string[] {
  const out = [...defaults];
  for (const entry of image) {
    const at = out.findIndex((d) => nameOf(d) === nameOf(entry));
    if (at >= 0 && at < defaults.length) out[at] = entry;
    else out.push(entry);
  }
  return out;
}

function nameOf(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : entry.slice(0, eq);
}

function annotationsOf(image: ImageConfig): Record<string, string> {
  const c = image.config ?? {};
  const implicit: Array<[string, string | null | undefined]> = [
    ['org.opencontainers.image.os', image.os],
    ['org.opencontainers.image.architecture', image.architecture],
    ['org.opencontainers.image.variant', image.variant],
    ['org.opencontainers.image.os.version', image['os.version']],
    ['org.opencontainers.image.os.features', image['os.features']?.join(',')],
    ['org.opencontainers.image.author', image.author],
    ['org.opencontainers.image.created', image.created],
    ['org.opencontainers.image.stopSignal', c.StopSignal],
    ['org.opencontainers.image.exposedPorts', c.ExposedPorts ? Object.keys(c.ExposedPorts).join(',') : undefined],
  ];
  const out: Record<string, string> = {};
  for (const [key, value] of implicit) if (value !== undefined && value !== null) out[key] = value;
  // Labels win over every implicit value (conversion.md, Annotations).
  for (const [key, value] of Object.entries(c.Labels ?? {})) Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  return out;
}
