import { z } from 'zod';
import { annotationsSchema, descriptorSchema } from './descriptor.js';

/** OCI image manifest; Docker's schema2 manifest has the same shape (annotations and subject are OCI-only). */
export const imageManifestSchema = z.looseObject({
  schemaVersion: z.number().int(),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema.optional(),
});
export type ImageManifest = z.infer<typeof imageManifestSchema>;
