import { z } from 'zod';

const historySchema = z.looseObject({
  created: z.string().optional(),
  created_by: z.string().optional(),
  author: z.string().optional(),
  comment: z.string().optional(),
  empty_layer: z.boolean().optional(),
});
export type History = z.infer<typeof historySchema>;

/** Optional fields may be null in the wild (Docker writes `"Labels": null`). */
const containerConfigSchema = z.looseObject({
  User: z.string().nullish(),
  ExposedPorts: z.record(z.string(), z.unknown()).nullish(),
  Env: z.array(z.string()).nullish(),
  Entrypoint: z.array(z.string()).nullish(),
  Cmd: z.array(z.string()).nullish(),
  Volumes: z.record(z.string(), z.unknown()).nullish(),
  WorkingDir: z.string().nullish(),
  Labels: z.record(z.string(), z.string()).nullish(),
  StopSignal: z.string().nullish(),
});

/** OCI image config; Docker's container.image.v1 is a superset with the same core fields. */
export const imageConfigSchema = z.looseObject({
  created: z.string().nullish(),
  author: z.string().nullish(),
  architecture: z.string(),
  os: z.string(),
  'os.version': z.string().nullish(),
  'os.features': z.array(z.string()).nullish(),
  variant: z.string().nullish(),
  config: containerConfigSchema.nullish(),
  rootfs: z.looseObject({ type: z.string(), diff_ids: z.array(z.string()) }),
  history: z.array(historySchema).nullish(),
});
export type ImageConfig = z.infer<typeof imageConfigSchema>;

export function labelsOf(config: ImageConfig): Record<string, string> {
  return config.config?.Labels ?? {};
}
