/** Platforms as users write them (`os/arch[/variant]`), how one matches a descriptor's, and how they print. */
import { OcikitError } from '../errors.js';
import type { Platform } from './descriptor.js';

/** What `--platform` asks for: a variant left out matches any variant. */
export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

export function parsePlatform(text: string): PlatformSpec {
  const [os, architecture, variant, extra] = text.split('/');
  if (!os || !architecture || extra !== undefined) throw new OcikitError(`invalid platform ${JSON.stringify(text)}: expected os/arch[/variant]`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** Repeated and comma-separated values (`--platform linux/amd64,linux/arm64 --platform linux/s390x`), in order. */
export function parsePlatforms(texts: Iterable<string>): PlatformSpec[] {
  return [...texts].flatMap((t) => t.split(',')).filter(Boolean).map(parsePlatform);
}

export function platformMatches(platform: Platform | undefined, wanted: PlatformSpec): boolean {
  if (!platform) return false;
  return platform.os === wanted.os && platform.architecture === wanted.architecture
    && (wanted.variant === undefined || platform.variant === wanted.variant);
}

/** `linux/arm64/v8`; empty for no platform. */
export function platformString(platform: PlatformSpec | Platform | undefined): string {
  if (!platform) return '';
  const base = `${platform.os}/${platform.architecture}`;
  return platform.variant ? `${base}/${platform.variant}` : base;
}

/** The platform this process runs on, in OCI's names (Go's GOOS/GOARCH). */
export function hostPlatform(): PlatformSpec {
  const arch: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };
  const os: Record<string, string> = { win32: 'windows', sunos: 'solaris' };
  return { os: os[process.platform] ?? process.platform, architecture: arch[process.arch] ?? process.arch };
}
