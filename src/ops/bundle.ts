/**
 * An OCI runtime bundle from an image (oci-image-tool's create-runtime-bundle): DIR/rootfs unpacked and
 * DIR/config.json converted from the image config, so `runc run` or `crun run` can start it.
 */
import { join } from 'node:path';
import { OcikitError } from '../errors.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import type { Store } from '../store/store.js';
import type { RuntimeConfig } from '../model/runtime-config.js';
import { bundleConfig } from '../rootfs/bundle-config.js';
import { prepareTarget } from '../rootfs/target.js';
import { resolveUser } from '../rootfs/users.js';
import { chooseImage, unpackImage, type UnpackOptions, type UnpackResult } from './unpack.js';

export interface BundleResult extends UnpackResult {
  config: RuntimeConfig;
}

export async function createRuntimeBundle(store: Store, dir: string, options: UnpackOptions = {}): Promise<BundleResult> {
  const target = await prepareTarget(dir);
  try {
    const rootfs = join(target.path, 'rootfs');
    const image = await chooseImage(store, options);
    const result = await unpackImage(store, image, rootfs, options);
    const where = `${store.path}: image ${result.image}`;
    const user = await resolveUser(rootfs, image.config.value.config?.User, where);
    const config = bundleConfig(image.config.value, user);
    if (options.signal?.aborted) throw new OcikitError(`${dir}: interrupted; removed what it wrote`);
    await writeFileAtomic(join(target.path, 'config.json'), Buffer.from(`${JSON.stringify(config, null, 2)}\n`));
    return { ...result, config };
  } catch (err) {
    await target.discard();
    throw err;
  }
}
