import * as z from 'zod/mini';
import { annotationsSchema, descriptorSchema } from './descriptor.js';

/** OCI image manifest (Docker schema2: docker-schema2.ts). */
export const imageManifestSchema = z.looseObject({
  schemaVersion: z.number().check(z.int()),
  mediaType: z.optional(z.string()),
  artifactType: z.optional(z.string()),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: z.optional(descriptorSchema),
  annotations: z.optional(annotationsSchema),
});
export type ImageManifest = z.infer<typeof imageManifestSchema>;
