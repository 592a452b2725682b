/**
 * The operations as the library offers them: each checks its arguments, then calls the engine.
 * A writing operation commits its writer itself; `writeTo` opens one and drops it when the operation fails.
 */
import type * as z from 'zod/mini';
import { annotate as annotateOp, type AnnotateOptions, type AnnotateResult } from '../ops/annotate.js';
import { copy as copyOp, type CopyOptions, type CopyResult } from '../ops/copy.js';
import { gc as gcOp, type GcOptions, type GcResult } from '../ops/gc.js';
import { inspect as inspectOp, type InspectOptions, type InspectReport } from '../ops/inspect.js';
import { planRebase as planRebaseOp, rebase as rebaseOp, type RebaseOptions, type RebasePlan, type RebaseResult } from '../ops/rebase.js';
import { tag as tagOp, untag as untagOp } from '../ops/tag.js';
import { unpack as unpackOp, type UnpackOptions, type UnpackResult } from '../ops/unpack.js';
import { createRuntimeBundle as bundleOp, type BundleResult } from '../ops/bundle.js';
import { verify as verifyOp, verifyRef, type VerifyOptions, type VerifyReport } from '../ops/verify.js';
import type { Descriptor } from '../model/descriptor.js';
import { existingIndex, openStore, openWriter as openWriterOp, type WriterOptions } from '../store/open.js';
import { parseReference, type Reference, type Selector } from '../store/reference.js';
import type { Store, StoreWriter } from '../store/store.js';
import * as arg from './arguments.js';

const check = (name: string, params: Array<[string, z.ZodMiniType]>, args: unknown[]) => arg.checkArguments(name, params, args);
const toReference = (ref: Reference | string): Reference => (typeof ref === 'string' ? parseReference(ref) : ref);

/** Opens the layout or tarball a reference names (`oci:dir`, `oci-archive:app.tar`, a bare path); close it when done. */
export async function openLayout(ref: Reference | string): Promise<Store> {
  check('openLayout', [['ref', arg.reference]], [ref]);
  return openStore(ref);
}

/** A writer into a layout or tarball: new, existing (its other images and tags stay) or `base` itself, in place. */
export async function openWriter(ref: Reference | string, options?: WriterOptions): Promise<StoreWriter> {
  check('openWriter', [['ref', arg.reference], ['options', arg.writerOptions]], [ref, options]);
  return openWriterOp(toReference(ref), options);
}

/** Runs `fn` with a writer into `dest`; when `fn` fails, everything it added is dropped and `dest` is left as it was. */
export async function writeTo<T>(dest: Reference | string, source: Store, fn: (writer: StoreWriter) => Promise<T>, options: Omit<WriterOptions, 'base'> = {}): Promise<T> {
  check('writeTo', [['dest', arg.reference], ['source', arg.store], ['fn', arg.fn], ['options', arg.writerOptions]], [dest, source, fn, options]);
  const writer = await openWriterOp(toReference(dest), { ...options, base: source });
  try {
    return await fn(writer);
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/** The index tree, platforms, tags, sizes, annotations and config labels; reads no layer. */
export async function inspect(store: Store, options?: InspectOptions): Promise<InspectReport> {
  check('inspect', [['store', arg.store], ['options', arg.inspectOptions]], [store, options]);
  return inspectOp(store, options);
}

/** Proves a store intact and spec-conformant; given a reference, opens it (tolerating a broken tarball) and closes it. */
export async function verify(target: Store | string, options?: VerifyOptions): Promise<VerifyReport> {
  check('verify', [['target', typeof target === 'string' ? arg.reference : arg.store], ['options', arg.verifyOptions]], [target, options]);
  return typeof target === 'string' ? verifyRef(target, options) : verifyOp(target, options);
}

/** Sets, removes and derives annotations; `writer` undefined with `dryRun` works everything out and writes nothing. */
export async function annotate(source: Store, writer: StoreWriter | undefined, options: AnnotateOptions): Promise<AnnotateResult> {
  check('annotate', [['source', arg.store], ['writer', optionalWriter(options)], ['options', arg.annotateOptions]], [source, writer, options]);
  return annotateOp(source, writer, options);
}

/** A dry run may go without a writer; every other annotate writes through one. */
function optionalWriter(options: unknown): z.ZodMiniType {
  const dryRun = typeof options === 'object' && options !== null && (options as { dryRun?: unknown }).dryRun === true;
  return dryRun ? arg.optionalWriter : arg.writer;
}

/** Swaps an image's base layers for a new base's, per platform, keeping its own layers byte for byte. */
export async function rebase(store: Store, writer: StoreWriter, options?: RebaseOptions): Promise<RebaseResult> {
  check('rebase', [['store', arg.store], ['writer', arg.writer], ['options', arg.rebaseOptions]], [store, writer, options]);
  return rebaseOp(store, writer, options);
}

/** What rebase would do, per platform; writes nothing. */
export async function planRebase(store: Store, options?: RebaseOptions): Promise<RebasePlan> {
  check('planRebase', [['store', arg.store], ['options', arg.rebaseOptions]], [store, options]);
  return planRebaseOp(store, options);
}

/** Copies an image or index, every reachable blob verified, into the writer's destination, keeping what is already there. */
export async function copy(source: Store, writer: StoreWriter, options?: CopyOptions): Promise<CopyResult> {
  check('copy', [['source', arg.store], ['writer', arg.writer], ['options', arg.copyOptions]], [source, writer, options]);
  return copyOp(source, writer, await existingIndex(writer), options);
}

/** Points a tag at the image `selector` names (the store's only image when undefined). */
export async function tag(store: Store, writer: StoreWriter, selector: Selector | undefined, newTag: string): Promise<Descriptor> {
  check('tag', [['store', arg.store], ['writer', arg.writer], ['selector', arg.optionalSelector], ['newTag', arg.text]], [store, writer, selector, newTag]);
  return tagOp(store, writer, selector, newTag);
}

/** Removes a tag; returns how many index.json entries held it. The image stays until gc. */
export async function untag(store: Store, writer: StoreWriter, tagName: string): Promise<number> {
  check('untag', [['store', arg.store], ['writer', arg.writer], ['tagName', arg.text]], [store, writer, tagName]);
  return untagOp(store, writer, tagName);
}

/** Deletes the blobs of a layout directory that nothing reachable from index.json names, and stale temp files. */
export async function gc(layout: string, options?: GcOptions): Promise<GcResult> {
  check('gc', [['layout', arg.text], ['options', arg.gcOptions]], [layout, options]);
  return gcOp(parseReference(layout).path, options);
}

/** Applies an image's layers into `dir` (empty or new): its root filesystem; on failure `dir` is left as it was. */
export async function unpack(store: Store, dir: string, options?: UnpackOptions): Promise<UnpackResult> {
  check('unpack', [['store', arg.store], ['dir', arg.text], ['options', arg.unpackOptions]], [store, dir, options]);
  return unpackOp(store, dir, options);
}

/** An OCI runtime bundle in `dir` (empty or new): `rootfs/` unpacked and `config.json` converted from the image config. */
export async function createRuntimeBundle(store: Store, dir: string, options?: UnpackOptions): Promise<BundleResult> {
  check('createRuntimeBundle', [['store', arg.store], ['dir', arg.text], ['options', arg.unpackOptions]], [store, dir, options]);
  return bundleOp(store, dir, options);
}
