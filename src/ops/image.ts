import { OcikitError } from '../errors.js';
import { shortDigest } from '../model/digest.js';
import type { Descriptor } from '../model/descriptor.js';
import type { Doc } from '../model/document.js';
import type { ImageConfig } from '../model/image-config.js';
import type { ImageManifest } from '../model/image-manifest.js';
import type { Store } from '../store/store.js';
import { readDocument } from '../graph/read.js';

/** One platform image: its manifest and config, raw and parsed. */
export interface Image {
  descriptor: Descriptor;
  manifest: Doc<ImageManifest>;
  config: Doc<ImageConfig>;
}

export async function loadImage(store: Store, descriptor: Descriptor): Promise<Image> {
  const manifest = await readDocument(store, descriptor);
  if (manifest?.kind !== 'manifest') throw new OcikitError(`${store.path}: ${shortDigest(descriptor.digest)} is not an image manifest (${descriptor.mediaType})`);
  const config = await readDocument(store, manifest.doc.value.config);
  if (config?.kind !== 'config') throw new OcikitError(`${store.path}: config of ${shortDigest(descriptor.digest)} has media type ${manifest.doc.value.config.mediaType}, not an image config`);
  return { descriptor, manifest: manifest.doc, config: config.doc as Doc<ImageConfig> };
}

export type PrefixCheck =
  | { ok: true; baseLayers: number; by: 'digest' | 'diff_id' }
  | { ok: false; layer: number; reason: string };

/**
 * Whether the base's layers are the bottom of the image's layers: compared by blob digest, or by
 * diff_id where the two were compressed differently.
 */
export function checkBasePrefix(image: Image, base: Image): PrefixCheck {
  const layers = image.manifest.value.layers;
  const baseLayers = base.manifest.value.layers;
  const diffIds = image.config.value.rootfs.diff_ids;
  const baseDiffIds = base.config.value.rootfs.diff_ids;
  if (baseLayers.length > layers.length) {
    return { ok: false, layer: layers.length, reason: `the base has ${baseLayers.length} layers, the image only ${layers.length}` };
  }
  let by: 'digest' | 'diff_id' = 'digest';
  for (let i = 0; i < baseLayers.length; i++) {
    if (layers[i]!.digest === baseLayers[i]!.digest) continue;
    if (diffIds[i] !== undefined && diffIds[i] === baseDiffIds[i]) {
      by = 'diff_id';
      continue;
    }
    return {
      ok: false, layer: i,
      reason: `layer ${i} differs: image has ${shortDigest(layers[i]!.digest)} (diff_id ${diffIds[i] ? shortDigest(diffIds[i]!) : 'none'}), base has ${shortDigest(baseLayers[i]!.digest)} (diff_id ${baseDiffIds[i] ? shortDigest(baseDiffIds[i]!) : 'none'})`,
    };
  }
  return { ok: true, baseLayers: baseLayers.length, by };
}
