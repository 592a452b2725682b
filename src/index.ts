/**
 * ocikit as a library: open a layout or tarball, run an operation on it, read the report.
 *
 *     const store = await openLayout('oci:app');
 *     const report = await inspect(store);
 *     await store.close();
 *
 * Every function checks its arguments: a wrong one is an OcikitError naming it. Writing operations
 * take a writer (`writeTo` opens one and drops it if the operation fails) and commit it themselves.
 */

// Errors: every failure meant for a user is an OcikitError with a one-line message and an exit code.
export { OcikitError, LockedError, describeError, type ExitCode } from './errors.js';

// Opening stores and writers, and the references that name them.
export { openLayout, openWriter, writeTo } from './api/operations.js';
export { parseReference, selectorText, type Reference, type Selector } from './store/reference.js';
export type { Store, StoreWriter, StoreKind, BlobRef } from './store/store.js';
export type { WriterOptions } from './store/open.js';

// The operations, their options and their reports.
export { inspect, verify, annotate, rebase, planRebase, copy, tag, untag, gc, unpack, createRuntimeBundle } from './api/operations.js';
export type { InspectOptions, InspectReport, InspectNode } from './ops/inspect.js';
export {
  parseShard, RULES, DEFAULT_MAX_LAYER_BYTES,
  type VerifyOptions, type VerifyReport, type VerifySummary, type Finding, type RuleId, type Severity,
} from './ops/verify.js';
export type { AnnotateOptions, AnnotateOn, AnnotateOutput, AnnotateResult, AnnotationChange, DocumentChange, ReferrerLink } from './ops/annotate.js';
export type { RebaseOptions, RebaseOutput, RebaseResult, RebasePlan, PlatformReport, LayerReport, StaleReferrer } from './ops/rebase.js';
export type { BaseSource, Boundary, BoundaryMethod } from './ops/old-base.js';
export type { CopyOptions, CopyResult, CopiedReferrer } from './ops/copy.js';
export type { GcOptions, GcResult } from './ops/gc.js';
export type { UnpackOptions, UnpackResult } from './ops/unpack.js';
export type { BundleResult } from './ops/bundle.js';
export { runtimeConfigSchema, type RuntimeConfig } from './model/runtime-config.js';
export type { RootfsTally } from './rootfs/apply-entry.js';

// The documents: zod schemas (the single source of truth) and their types.
export { descriptorSchema, platformSchema, annotationsSchema, type Descriptor, type Platform, type Annotations } from './model/descriptor.js';
export { imageIndexSchema, type ImageIndex } from './model/image-index.js';
export { imageManifestSchema, type ImageManifest } from './model/image-manifest.js';
export { imageConfigSchema, type ImageConfig } from './model/image-config.js';
export { MediaType } from './model/media-types.js';
export { isDigest, type Digest } from './model/digest.js';

// The rules about names, keys and platforms that the commands apply.
export { ImageAnnotation, CONTAINERD_IMAGE_NAME } from './model/keys.js';
export { checkAnnotation, type AnnotationProblem, type DerivedAnnotation } from './model/annotations.js';
export { parseImageName, formatImageName, qualifyImageName, type ImageName } from './model/image-name.js';
export { parsePlatform, platformMatches, platformString, type PlatformSpec } from './model/platform.js';
