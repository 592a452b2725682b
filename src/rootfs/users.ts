/**
 * An image's `Config.User` as a process user, resolved the way conversion.md asks: numbers verbatim, names
 * from the unpacked root filesystem's etc/passwd and etc/group (read inside the root, links included),
 * supplementary groups only for a user named without a group.
 */
import { readFile, stat } from 'node:fs/promises';
import { OcikitError } from '../errors.js';
import { followInRoot } from './secure-path.js';

export interface ProcessUser {
  uid: number;
  gid: number;
  additionalGids?: number[];
}

/** The process user, and its home directory (from etc/passwd, else `/`) when Config.User names one. */
export interface ResolvedUser {
  user: ProcessUser;
  home?: string;
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

const NUMERIC = /^\d+$/;
/** Files larger than this are not account databases; they are not read whole. */
const MAX_ACCOUNT_FILE = 16 * 1024 * 1024;

export async function resolveUser(root: string, user: string | null | undefined, where: string): Promise<ResolvedUser> {
  if (!user) return { user: { uid: 0, gid: 0 } };
  const passwd = await accounts(root, 'etc/passwd', where, parsePasswd);
  const found = await processUser(root, user, passwd, where);
  const uid = found.uid;
  return { user: found, home: passwd.find((p) => p.uid === uid)?.home || '/' };
}

async function processUser(root: string, user: string, passwd: PasswdEntry[], where: string): Promise<ProcessUser> {
  const [name, group, extra] = user.split(':');
  if (extra !== undefined || !name) throw new OcikitError(`${where}: Config.User ${JSON.stringify(user)}: expected user, uid, user:group or uid:gid`, { exitCode: 1 });
  const entry = NUMERIC.test(name) ? passwd.find((p) => p.uid === Number(name)) : passwd.find((p) => p.name === name);
  if (!entry && !NUMERIC.test(name)) throw new OcikitError(`${where}: Config.User ${JSON.stringify(user)}: no user ${JSON.stringify(name)} in the image's etc/passwd`, { exitCode: 1 });
  const uid = NUMERIC.test(name) ? Number(name) : entry!.uid;
  if (group !== undefined) {
    if (NUMERIC.test(group)) return { uid, gid: Number(group) };
    const groups = await accounts(root, 'etc/group', where, parseGroup);
    const found = groups.find((g) => g.name === group);
    if (!found) throw new OcikitError(`${where}: Config.User ${JSON.stringify(user)}: no group ${JSON.stringify(group)} in the image's etc/group`, { exitCode: 1 });
    return { uid, gid: found.gid };
  }
  const gid = entry?.gid ?? 0;
  if (NUMERIC.test(name)) return { uid, gid };
  const groups = await accounts(root, 'etc/group', where, parseGroup);
  const additionalGids = [...new Set(groups.filter((g) => g.members.includes(name)).map((g) => g.gid))].filter((g) => g !== gid);
  return additionalGids.length ? { uid, gid, additionalGids } : { uid, gid };
}

async function accounts<T>(root: string, name: string, where: string, parse: (text: string) => T[]): Promise<T[]> {
  const path = await followInRoot(root, name.split('/'), where);
  const absent = (err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw err;
  };
  const info = await stat(path).catch(absent);
  if (!info) return [];
  if (!info.isFile() || info.size > MAX_ACCOUNT_FILE) throw new OcikitError(`${where}: the image's ${name} is not a regular file under ${MAX_ACCOUNT_FILE} bytes`, { exitCode: 1 });
  return parse(await readFile(path, 'utf8'));
}

function fields(text: string, min: number): string[][] {
  return text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':')).filter((f) => f.length >= min);
}

function parsePasswd(text: string): PasswdEntry[] {
  return fields(text, 4).filter((f) => NUMERIC.test(f[2]!) && NUMERIC.test(f[3]!)).map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '' }));
}

function parseGroup(text: string): GroupEntry[] {
  return fields(text, 3).filter((f) => NUMERIC.test(f[2]!)).map((f) => ({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }));
}
