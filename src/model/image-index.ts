import * as z from 'zod/mini';
import { annotationsSchema, descriptorSchema } from './descriptor.js';

/** OCI image index (Docker manifest list: docker-schema2.ts). */
export const imageIndexSchema = z.looseObject({
  schemaVersion: z.number().check(z.int()),
  mediaType: z.optional(z.string()),
  artifactType: z.optional(z.string()),
  manifests: z.array(descriptorSchema),
  subject: z.optional(descriptorSchema),
  annotations: z.optional(annotationsSchema),
});
export type ImageIndex = z.infer<typeof imageIndexSchema>;
