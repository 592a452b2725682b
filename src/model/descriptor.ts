import * as z from 'zod/mini';
import { isDigest } from './digest.js';
import { CONTAINERD_IMAGE_NAME, REF_NAME } from './keys.js';

export const annotationsSchema = z.record(z.string(), z.string());
export type Annotations = z.infer<typeof annotationsSchema>;

export const platformSchema = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.optional(z.string()),
  'os.features': z.optional(z.array(z.string())),
  variant: z.optional(z.string()),
  features: z.optional(z.array(z.string())),
});
export type Platform = z.infer<typeof platformSchema>;

export const digestSchema = z.string().check(z.refine(isDigest, { message: 'invalid digest' }));

export const descriptorSchema = z.looseObject({
  mediaType: z.string(),
  digest: digestSchema,
  size: z.number().check(z.int()),
  urls: z.optional(z.array(z.string())),
  annotations: z.optional(annotationsSchema),
  data: z.optional(z.string()),
  artifactType: z.optional(z.string()),
  platform: z.optional(platformSchema),
});
export type Descriptor = z.infer<typeof descriptorSchema>;

export function refNameOf(descriptor: Descriptor): string | undefined {
  return descriptor.annotations?.[REF_NAME];
}

/**
 * The entry under a tag. In a docker-archive a full name (`example.com/app:v2`) is kept as containerd's
 * image name beside the bare tag, as Docker 25+ writes it (RepoTags come from it); in an OCI layout
 * the ref name is the tag exactly as given, as skopeo and umoci write and look it up.
 */
export function withRefName(d: Descriptor, tag: string, kind: 'oci' | 'oci-archive' | 'docker-archive'): Descriptor {
  const colon = tag.lastIndexOf(':');
  if (kind !== 'docker-archive' || !/[/:]/.test(tag) || colon < tag.lastIndexOf('/')) return { ...d, annotations: { ...d.annotations, [REF_NAME]: tag } };
  return { ...d, annotations: { ...d.annotations, [CONTAINERD_IMAGE_NAME]: tag, [REF_NAME]: tag.slice(colon + 1) } };
}

/**
 * Two index.json entries are the same entry when they carry the same tag, or are the same untagged
 * content. Docker 25+ entries share bare ref names (`latest`): their full names (containerd's) tell them apart.
 */
export function sameIndexEntry(a: Descriptor, b: Descriptor): boolean {
  const fa = a.annotations?.[CONTAINERD_IMAGE_NAME];
  const fb = b.annotations?.[CONTAINERD_IMAGE_NAME];
  if (fa !== undefined && fb !== undefined) return fa === fb;
  const ta = refNameOf(a);
  const tb = refNameOf(b);
  return ta !== undefined ? ta === tb : tb === undefined && a.digest === b.digest;
}

/** The parts of a descriptor that identify content; used to rewrite a descriptor in place. */
export function pointTo(descriptor: Descriptor, target: { digest: string; size: number; mediaType?: string }): Descriptor {
  const next: Descriptor = { ...descriptor, digest: target.digest, size: target.size };
  if (target.mediaType) next.mediaType = target.mediaType;
  delete next.data; // embedded data would no longer match the new content
  return next;
}

// Transitional, for the ops files being rewritten on another branch; deleted when their imports switch.
export { CONTAINERD_IMAGE_NAME, REF_NAME } from './keys.js';
export { platformString } from './platform.js';
