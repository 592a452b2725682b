import * as z from 'zod/mini';
import { descriptorSchema } from './descriptor.js';
import { imageConfigSchema } from './image-config.js';

/**
 * Docker's schema2 documents. They are the OCI index, manifest and config without the OCI-only fields
 * (annotations, subject, artifactType, urls on config); those are not declared here, and kept as unknown
 * fields when a document carries them anyway, so nothing is stripped.
 */
export const dockerManifestListSchema = z.looseObject({
  schemaVersion: z.number().check(z.int()),
  mediaType: z.optional(z.string()),
  manifests: z.array(descriptorSchema),
});
export type DockerManifestList = z.infer<typeof dockerManifestListSchema>;

export const dockerManifestSchema = z.looseObject({
  schemaVersion: z.number().check(z.int()),
  mediaType: z.optional(z.string()),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
});
export type DockerManifest = z.infer<typeof dockerManifestSchema>;

/** container.image.v1: the OCI config's fields plus what the Docker daemon records of the build container. */
export const dockerImageConfigSchema = z.looseObject({
  ...imageConfigSchema.shape,
  container: z.nullish(z.string()),
  container_config: z.nullish(z.record(z.string(), z.unknown())),
  docker_version: z.nullish(z.string()),
});
export type DockerImageConfig = z.infer<typeof dockerImageConfigSchema>;
