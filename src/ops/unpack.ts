/**
 * An image's root filesystem on disk: its layers applied in order (whiteouts included) into an empty or new
 * directory, each layer's digest and diff_id checked as it streams; on any failure the directory is left as
 * it was before.
 */
import { OcikitError } from '../errors.js';
import { shortDigest, type Digest } from '../model/digest.js';
import { hostPlatform, platformMatches, platformString, type PlatformSpec } from '../model/platform.js';
import type { Store } from '../store/store.js';
import type { Selector } from '../store/reference.js';
import { openLayerStream, type LayerStream } from '../hash/layer-stream.js';
import { RootfsWriter, type RootfsTally } from '../rootfs/apply-entry.js';
import { applyLayer } from '../rootfs/apply-layer.js';
import { prepareTarget } from '../rootfs/target.js';
import { loadImage, type Image } from './image.js';
import { imagesOf, resolveTarget, type PlatformImage } from './resolve.js';
import { severityOf, type RuleId } from './verify/rules.js';

export interface UnpackOptions {
  selector?: Selector;
  platform?: PlatformSpec;
  /** Leave owners to the caller instead of the layer's (what a non-root caller gets anyway). */
  rootless?: boolean;
  /** A layer decompressing past this many bytes fails the unpack. */
  maxLayerBytes?: number;
  onProgress?(done: number, total: number): void;
  /** Stops the unpack (the directory is left as it was before); the promise rejects. */
  signal?: AbortSignal;
}

export interface UnpackResult extends RootfsTally {
  image: Digest;
  platform: string;
  layers: number;
  /** Whether owners came from the layers (as root, not --rootless). */
  owners: boolean;
}

export async function unpack(store: Store, dir: string, options: UnpackOptions = {}): Promise<UnpackResult> {
  return unpackImage(store, await chooseImage(store, options), dir, options);
}

/** Unpacks an image already chosen and loaded (create-runtime-bundle reads its config too). */
export async function unpackImage(store: Store, image: Image, dir: string, options: UnpackOptions = {}): Promise<UnpackResult> {
  const layers = image.manifest.value.layers;
  const diffIds = image.config.value.rootfs?.diff_ids ?? [];
  if (diffIds.length !== layers.length) {
    throw new OcikitError(`${store.path}: image ${shortDigest(image.descriptor.digest)} has ${layers.length} layers but its config lists ${diffIds.length} diff_ids`, { exitCode: 1 });
  }
  const owners = !options.rootless && process.getuid?.() === 0;
  const target = await prepareTarget(dir);
  const writer = new RootfsWriter(target.path, { owners });
  const total = layers.reduce((n, l) => n + l.size, 0);
  let done = 0;
  const interrupted = () => new OcikitError(`${dir}: unpack interrupted; removed what it wrote`);
  let current: LayerStream | undefined;
  const stop = () => current?.tar.destroy(interrupted());
  options.signal?.addEventListener('abort', stop);
  try {
    for (const [i, layer] of layers.entries()) {
      if (options.signal?.aborted) throw interrupted();
      const where = `${store.path}: layer ${i} ${shortDigest(layer.digest)}`;
      const stream = (current = await openLayerStream(store, layer, { diffId: diffIds[i] as Digest, maxBytes: options.maxLayerBytes, where }));
      await applyLayer(stream.tar, writer, where);
      // What a strict reader refuses fails the unpack; what it only warns of (no end marker, as umoci writes) does not.
      const broken = stream.report().issues.find((i) => severityOf(i.rule as RuleId) === 'error');
      if (broken) throw new OcikitError(`${where}: ${broken.message} (${broken.rule})`, { exitCode: 1 });
      done += layer.size;
      options.onProgress?.(done, total);
    }
    await writer.close();
  } catch (err) {
    await target.discard();
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', stop);
  }
  return { image: image.descriptor.digest, platform: platformOf(image), layers: layers.length, owners, ...writer.tally };
}

/** The one image a reference names: with several platforms, the one asked for, else this machine's. */
export async function chooseImage(store: Store, options: Pick<UnpackOptions, 'selector' | 'platform'>): Promise<Image> {
  const target = await resolveTarget(store, options.selector);
  const images = await imagesOf(store, target, options.platform);
  const one = onlyOne(store, images, options.platform);
  return loadImage(store, one.descriptor);
}

function onlyOne(store: Store, images: PlatformImage[], platform: PlatformSpec | undefined): PlatformImage {
  if (images.length === 1) return images[0]!;
  const host = hostPlatform();
  const native = images.filter((i) => platformMatches(i.descriptor.platform, host));
  if (!platform && native.length === 1) return native[0]!;
  const have = images.map((i) => platformString(i.descriptor.platform) || shortDigest(i.descriptor.digest)).join(', ');
  throw new OcikitError(`${store.path}: ${images.length} images match (${have}); name one with --platform`);
}

function platformOf(image: Image): string {
  const c = image.config.value;
  return platformString({ os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) });
}
