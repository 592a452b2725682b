/**
 * Image names (`registry/repository[:tag][@digest]`, the distribution/reference grammar) and how the
 * tools ocikit meets spell them: Docker's short forms, skopeo's `NAME` for `NAME:latest`, the names an
 * index.json entry carries.
 */
import { refNameOf, type Descriptor } from './descriptor.js';
import { isDigest } from './digest.js';
import { CONTAINERD_IMAGE_NAME } from './keys.js';

/** An image reference split into parts. */
export interface ImageName {
  /** undefined when the name gives no registry (Docker Hub is then implied). */
  domain: string | undefined;
  path: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::\d+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;

export function parseImageName(text: string): ImageName | undefined {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) return undefined;
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return undefined;
  }
  const parts = rest.split('/');
  let domain: string | undefined;
  if (parts.length > 1 && /[.:]|^localhost$|[A-Z]/.test(parts[0]!)) {
    domain = parts.shift()!;
    if (!DOMAIN.test(domain)) return undefined;
  }
  if (parts.length === 0 || !parts.every((p) => COMPONENT.test(p))) return undefined;
  return { domain, path: parts.join('/'), ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

export function formatImageName(name: ImageName): string {
  return `${name.domain ? `${name.domain}/` : ''}${name.path}${name.tag !== undefined ? `:${name.tag}` : ''}${name.digest ? `@${name.digest}` : ''}`;
}

/** A name that says which registry it is from. */
export function isQualified(text: string): boolean {
  return parseImageName(text)?.domain !== undefined;
}

/** `alpine:3` → `docker.io/library/alpine:3`, as Docker resolves short names; other names are kept. */
export function qualifyImageName(text: string): string {
  const name = parseImageName(text);
  if (!name) return text;
  if (name.domain === 'index.docker.io') name.domain = 'docker.io';
  if (name.domain === undefined) {
    name.domain = 'docker.io';
    if (!name.path.includes('/')) name.path = `library/${name.path}`;
  }
  return formatImageName(name);
}

/** `docker.io/library/busybox:1` → `busybox:1`: the short form Docker prints. */
export function familiarName(name: string): string {
  return name.replace(/^docker\.io\//, '').replace(/^library\//, '');
}

/** A stored name answers to a wanted one written the same or in the other's short form (`busybox:latest` names `docker.io/library/busybox:latest`). */
export function sameName(stored: string, wanted: string): boolean {
  return stored === wanted || familiarName(stored) === familiarName(wanted);
}

/**
 * `--base-name`-style matching of a qualified candidate: a wanted name with a tag is that image; one
 * without a tag is any tag of its repository.
 */
export function namesImageOrRepository(candidate: string, wanted: string): boolean {
  const w = parseImageName(wanted);
  if (!w) return false;
  const full = qualifyImageName(stripDigest(wanted));
  return w.tag === undefined ? qualifiedRepositoryOf(candidate) === qualifiedRepositoryOf(full) : candidate === full;
}

/** The tag of `repo:tag` (not the port of `host:5000/repo`); undefined for digest references. */
export function tagOf(name: string): string | undefined {
  if (name.includes('@')) return undefined;
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(colon + 1) : undefined;
}

/** The repository part of `repo:tag` or `repo@digest`, as written. */
export function repositoryOf(name: string): string {
  const bare = stripDigest(name);
  const tag = tagOf(bare);
  return tag === undefined ? bare : bare.slice(0, bare.length - tag.length - 1);
}

/** The repository with its registry (`docker.io/…` when none is given); a name that does not parse is kept. */
export function qualifiedRepositoryOf(name: string): string {
  const parsed = parseImageName(name);
  return parsed ? `${parsed.domain ?? 'docker.io'}/${parsed.path}` : name;
}

/** `repo@sha256:…` → `repo`. */
export function stripDigest(name: string): string {
  const at = name.indexOf('@');
  return at >= 0 ? name.slice(0, at) : name;
}

/** The digest a `repo@digest` pins, when it is a well-formed one. */
export function digestOf(name: string): string | undefined {
  const at = name.lastIndexOf('@');
  const digest = at >= 0 ? name.slice(at + 1) : undefined;
  return digest && isDigest(digest) ? digest : undefined;
}

/** A colon after the last slash: `NAME:TAG` (or a digest), not `host:5000/NAME`. */
export function hasTagPart(name: string): boolean {
  return name.lastIndexOf(':') > name.lastIndexOf('/');
}

/** skopeo's `docker-archive:FILE:NAME` is NAME:latest; a RepoTag needs the tag. */
export function withLatest(name: string): string {
  return hasTagPart(name) ? name : `${name}:latest`;
}

/** `example.com/base` given the tag `1.0` → `example.com/base:1.0`; a name with a tag or digest is kept. */
export function withTagIfNone(name: ImageName, tag: string | undefined): string {
  return name.tag === undefined && name.digest === undefined && tag ? formatImageName({ ...name, tag }) : formatImageName(name);
}

/** A ref name that is a tag alone (`1.0`), not a full name. */
export function plainTag(ref: string | undefined): string | undefined {
  return ref && TAG.test(ref) ? ref : undefined;
}

/** The names an index.json entry answers to: its ref name, then containerd's full name. */
export function namesOf(d: Descriptor): string[] {
  return [refNameOf(d), d.annotations?.[CONTAINERD_IMAGE_NAME]].filter((n): n is string => !!n);
}

/** An entry's fullest name: containerd's full image name, else its ref name. */
export function fullNameOf(d: Descriptor): string | undefined {
  return d.annotations?.[CONTAINERD_IMAGE_NAME] ?? refNameOf(d);
}

/** A full image name stored on an index.json entry (containerd's, or a ref name that is one), and which it was. */
export function entryName(entry: Descriptor): { name: string; from: string } | undefined {
  const containerd = entry.annotations?.[CONTAINERD_IMAGE_NAME];
  if (containerd && parseImageName(containerd)) return { name: containerd, from: `${CONTAINERD_IMAGE_NAME} annotation` };
  const ref = refNameOf(entry);
  if (ref && ref.includes('/') && parseImageName(ref)) return { name: ref, from: 'ref name' };
  return undefined;
}
