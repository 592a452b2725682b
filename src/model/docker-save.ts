import * as z from 'zod/mini';

/** One image in a `docker save` tarball's manifest.json. Paths are archive entry names. */
export const dockerSaveEntrySchema = z.looseObject({
  Config: z.string(),
  RepoTags: z.nullish(z.array(z.string())),
  Layers: z.array(z.string()),
  LayerSources: z.nullish(z.record(z.string(), z.unknown())),
});
export const dockerSaveManifestSchema = z.array(dockerSaveEntrySchema);
export type DockerSaveEntry = z.infer<typeof dockerSaveEntrySchema>;

/** The legacy `repositories` file: repo → tag → top layer id. */
export const dockerRepositoriesSchema = z.record(z.string(), z.record(z.string(), z.string()));
