import { z } from 'zod';

/** One image in a `docker save` tarball's manifest.json. Paths are archive entry names. */
export const dockerSaveEntrySchema = z.looseObject({
  Config: z.string(),
  RepoTags: z.array(z.string()).nullish(),
  Layers: z.array(z.string()),
  LayerSources: z.record(z.string(), z.unknown()).nullish(),
});
export const dockerSaveManifestSchema = z.array(dockerSaveEntrySchema);
export type DockerSaveEntry = z.infer<typeof dockerSaveEntrySchema>;

/** The legacy `repositories` file: repo → tag → top layer id. */
export const dockerRepositoriesSchema = z.record(z.string(), z.record(z.string(), z.string()));
