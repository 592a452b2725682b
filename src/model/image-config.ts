import * as z from 'zod/mini';

const historySchema = z.looseObject({
  created: z.optional(z.string()),
  created_by: z.optional(z.string()),
  author: z.optional(z.string()),
  comment: z.optional(z.string()),
  empty_layer: z.optional(z.boolean()),
});
export type History = z.infer<typeof historySchema>;

/** Optional fields may be null in the wild (Docker writes `"Labels": null`). */
const containerConfigSchema = z.looseObject({
  User: z.nullish(z.string()),
  ExposedPorts: z.nullish(z.record(z.string(), z.unknown())),
  Env: z.nullish(z.array(z.string())),
  Entrypoint: z.nullish(z.array(z.string())),
  Cmd: z.nullish(z.array(z.string())),
  Volumes: z.nullish(z.record(z.string(), z.unknown())),
  WorkingDir: z.nullish(z.string()),
  Labels: z.nullish(z.record(z.string(), z.string())),
  StopSignal: z.nullish(z.string()),
});

/** OCI image config (Docker container.image.v1: docker-schema2.ts). */
export const imageConfigSchema = z.looseObject({
  created: z.nullish(z.string()),
  author: z.nullish(z.string()),
  architecture: z.string(),
  os: z.string(),
  'os.version': z.nullish(z.string()),
  'os.features': z.nullish(z.array(z.string())),
  variant: z.nullish(z.string()),
  config: z.nullish(containerConfigSchema),
  rootfs: z.looseObject({ type: z.string(), diff_ids: z.array(z.string()) }),
  history: z.nullish(z.array(historySchema)),
});
export type ImageConfig = z.infer<typeof imageConfigSchema>;

export function labelsOf(config: ImageConfig): Record<string, string> {
  return config.config?.Labels ?? {};
}
