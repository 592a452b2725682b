import { OcikitError } from '../errors.js';
import { REF_NAME, refNameOf, type Descriptor } from '../model/descriptor.js';
import { serializeLike } from '../model/document.js';
import type { ImageIndex } from '../model/image-index.js';
import type { Selector } from '../store/reference.js';
import type { Store, StoreWriter } from '../store/store.js';
import { resolveTarget } from './resolve.js';

/** ref.name grammar from the image spec (a SHOULD; umoci enforces it). */
const REF_NAME_GRAMMAR = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

export function checkRefName(name: string): void {
  if (!REF_NAME_GRAMMAR.test(name)) throw new OcikitError(`invalid tag ${JSON.stringify(name)}: ref names are [A-Za-z0-9] parts joined by - . _ : @ + or /`);
}

/** Points a tag at the selected image: an index.json entry with the tag, any other holder of the tag untagged. */
export async function tag(store: Store, writer: StoreWriter, selector: Selector | undefined, newTag: string): Promise<Descriptor> {
  checkRefName(newTag);
  const target = await resolveTarget(store, selector);
  const index = await store.readIndex();
  const manifests = index.value.manifests.filter((d) => refNameOf(d) !== newTag);
  const { [REF_NAME]: _old, ...annotations } = target.descriptor.annotations ?? {};
  const entry: Descriptor = { ...target.descriptor, annotations: { ...annotations, [REF_NAME]: newTag } };
  const untaggedTwin = manifests.findIndex((d) => d.digest === entry.digest && refNameOf(d) === undefined);
  if (untaggedTwin >= 0) manifests.splice(untaggedTwin, 1, entry);
  else manifests.push(entry);
  await writer.commit(serializeLike({ ...index.value, manifests } satisfies ImageIndex, index.raw));
  return entry;
}

/** Removes a tag from index.json; the image stays (until gc) when nothing else names it. */
export async function untag(store: Store, writer: StoreWriter, tagName: string): Promise<number> {
  const index = await store.readIndex();
  const kept = index.value.manifests.filter((d) => refNameOf(d) !== tagName);
  const removed = index.value.manifests.length - kept.length;
  if (removed === 0) throw new OcikitError(`${store.path}: no tag ${tagName}`);
  await writer.commit(serializeLike({ ...index.value, manifests: kept }, index.raw));
  return removed;
}
