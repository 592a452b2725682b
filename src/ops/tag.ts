import { OcikitError } from '../errors.js';
import { refNameOf, withRefName, type Descriptor } from '../model/descriptor.js';
import { isRefName, REF_NAME_RULE } from '../model/formats.js';
import { sameName } from '../model/image-name.js';
import { CONTAINERD_IMAGE_NAME, REF_NAME } from '../model/keys.js';
import { serializeLike } from '../model/document.js';
import type { ImageIndex } from '../model/image-index.js';
import type { Selector } from '../store/reference.js';
import type { Store, StoreKind, StoreWriter } from '../store/store.js';
import { resolveTarget } from './resolve.js';

export function checkRefName(name: string): void {
  if (!isRefName(name)) throw new OcikitError(`invalid tag ${JSON.stringify(name)}: ref names are ${REF_NAME_RULE}`);
}

/** Points a tag at the selected image: an index.json entry with the tag, any other holder of the tag untagged. */
export async function tag(store: Store, writer: StoreWriter, selector: Selector | undefined, newTag: string): Promise<Descriptor> {
  checkRefName(newTag);
  const target = await resolveTarget(store, selector);
  const index = await store.readIndex();
  const manifests = index.value.manifests.filter((d) => !holdsName(d, newTag));
  const entry = namedEntry(store.kind, target.descriptor, newTag);
  const untaggedTwin = manifests.findIndex((d) => d.digest === entry.digest && refNameOf(d) === undefined);
  if (untaggedTwin >= 0) manifests.splice(untaggedTwin, 1, entry);
  else manifests.push(entry);
  await writer.commit(serializeLike({ ...index.value, manifests } satisfies ImageIndex, index.raw));
  return entry;
}

/** Removes a tag from index.json; the image stays (until gc) when nothing else names it. */
export async function untag(store: Store, writer: StoreWriter, tagName: string): Promise<number> {
  const index = await store.readIndex();
  const kept = index.value.manifests.filter((d) => !holdsName(d, tagName));
  const removed = index.value.manifests.length - kept.length;
  if (removed === 0) throw new OcikitError(`${store.path}: no tag ${tagName}`);
  await writer.commit(serializeLike({ ...index.value, manifests: kept }, index.raw));
  return removed;
}

/** An entry holds a name as its ref name or as containerd's image name (which docker-archive RepoTags come from). */
function holdsName(d: Descriptor, name: string): boolean {
  const full = d.annotations?.[CONTAINERD_IMAGE_NAME];
  return refNameOf(d) === name || (full !== undefined && sameName(full, name));
}

/** The target under the new name only: the old entry's names, containerd's included, are not carried over. */
function namedEntry(kind: StoreKind, d: Descriptor, name: string): Descriptor {
  const { [REF_NAME]: _ref, [CONTAINERD_IMAGE_NAME]: _full, ...annotations } = d.annotations ?? {};
  const bare = { ...d, annotations };
  // In a docker-archive the full name is what becomes the RepoTag; Docker 25+ keeps it as containerd's name.
  return withRefName(bare, name, kind);
}
