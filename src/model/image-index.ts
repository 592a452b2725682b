import * as z from 'zod/mini';
import { annotationsSchema, descriptorSchema } from './descriptor.js';

/** OCI image index; Docker's manifest list has the same shape (annotations are OCI-only). */
export const imageIndexSchema = z.looseObject({
  schemaVersion: z.number().check(z.int()),
  mediaType: z.optional(z.string()),
  artifactType: z.optional(z.string()),
  manifests: z.array(descriptorSchema),
  subject: z.optional(descriptorSchema),
  annotations: z.optional(annotationsSchema),
});
export type ImageIndex = z.infer<typeof imageIndexSchema>;
