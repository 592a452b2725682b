import { z } from 'zod';
import { annotationsSchema, descriptorSchema } from './descriptor.js';

/** OCI image index; Docker's manifest list has the same shape (annotations are OCI-only). */
export const imageIndexSchema = z.looseObject({
  schemaVersion: z.number().int(),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema.optional(),
});
export type ImageIndex = z.infer<typeof imageIndexSchema>;
