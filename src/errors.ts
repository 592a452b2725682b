/** Exit codes are part of the CLI contract: 0 ok, 1 a check failed, 2 usage error or unreadable input. */
export type ExitCode = 0 | 1 | 2;

/** An error meant for the user: one line saying what is wrong and where. */
export class OcikitError extends Error {
  readonly exitCode: ExitCode;
  constructor(message: string, options: { exitCode?: ExitCode; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OcikitError';
    this.exitCode = options.exitCode ?? 2;
  }
}

/** The layout is being written by another process. */
export class LockedError extends OcikitError {}

export function describeError(err: unknown): string {
  if (err instanceof OcikitError) return err.message;
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && typeof e.path === 'string') {
    return `${errnoText(e.code)}: ${withoutTempNames(e.path)}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * A system error from a write names the file the user asked for: errors from stream writes carry no
 * path at all (ENOSPC, EIO), so `path` is given to them. Read errors are the source's, not the target's.
 */
export function withPath(err: unknown, path: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && !(err instanceof OcikitError) && typeof e.path !== 'string' && e.syscall !== 'read') e.path = path;
  return err;
}

/** `dir/.ocikit-tmp-<pid>-<random>-index.json` is shown as `dir/index.json`: temp names mean nothing to the user. */
function withoutTempNames(path: string): string {
  return path.replace(/\.ocikit-tmp-\d+-[0-9a-f]+-/g, '');
}

function errnoText(code: string): string {
  const known: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOSPC: 'no space left on device',
    EROFS: 'read-only file system',
    EISDIR: 'is a directory',
    ENOTDIR: 'not a directory',
    EEXIST: 'already exists',
    ELOOP: 'too many levels of symbolic links',
  };
  return known[code] ?? code;
}
