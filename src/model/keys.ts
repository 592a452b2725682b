/**
 * Annotation and label keys ocikit reads or writes, by who defines them. Key strings live here only,
 * so a rule about a key (what it means, who writes it) has one place to be looked up.
 */

/** The pre-defined annotation keys of the OCI image spec (annotations.md). */
export const ImageAnnotation = {
  created: 'org.opencontainers.image.created',
  authors: 'org.opencontainers.image.authors',
  url: 'org.opencontainers.image.url',
  documentation: 'org.opencontainers.image.documentation',
  source: 'org.opencontainers.image.source',
  version: 'org.opencontainers.image.version',
  revision: 'org.opencontainers.image.revision',
  vendor: 'org.opencontainers.image.vendor',
  licenses: 'org.opencontainers.image.licenses',
  refName: 'org.opencontainers.image.ref.name',
  title: 'org.opencontainers.image.title',
  description: 'org.opencontainers.image.description',
  baseDigest: 'org.opencontainers.image.base.digest',
  baseName: 'org.opencontainers.image.base.name',
} as const;

/** The prefix every OCI image annotation key shares; the spec reserves `org.opencontainers.` for itself. */
export const IMAGE_ANNOTATION_PREFIX = 'org.opencontainers.image.';

/** The tag of an index.json entry. */
export const REF_NAME = ImageAnnotation.refName;

/** containerd and Docker 25+ keep the full image name beside the OCI ref name. */
export const CONTAINERD_IMAGE_NAME = 'io.containerd.image.name';

/** containerd marks an index.json entry that refers to another image (a referrer) with its subject's digest. */
export const CONTAINERD_SUBJECT = 'io.containerd.manifest.subject';

/** BuildKit attestation manifests: what they are (`attestation-manifest`) and the image digest they describe. */
export const DockerAttestation = {
  type: 'vnd.docker.reference.type',
  subject: 'vnd.docker.reference.digest',
} as const;

/** Config labels the buildpacks lifecycle writes: the run image and layers, and the project's source. */
export const BuildpacksLabel = {
  lifecycle: 'io.buildpacks.lifecycle.metadata',
  project: 'io.buildpacks.project.metadata',
} as const;

/** Label Schema (label-schema.org, retired) keys and the OCI keys that replaced them. */
export const LABEL_SCHEMA_KEYS: ReadonlyArray<[string, string]> = [
  ['org.label-schema.build-date', ImageAnnotation.created],
  ['org.label-schema.url', ImageAnnotation.url],
  ['org.label-schema.vcs-url', ImageAnnotation.source],
  ['org.label-schema.version', ImageAnnotation.version],
  ['org.label-schema.vcs-ref', ImageAnnotation.revision],
  ['org.label-schema.vendor', ImageAnnotation.vendor],
  ['org.label-schema.name', ImageAnnotation.title],
  ['org.label-schema.description', ImageAnnotation.description],
  ['org.label-schema.usage', ImageAnnotation.documentation],
];

/** `com.example.key`: at least two dot-separated parts, the first a lowercase domain label. */
export function isReverseDomainKey(key: string): boolean {
  return /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?)+$/.test(key);
}
