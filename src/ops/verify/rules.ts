/**
 * Every check `ocikit verify` makes, by stable rule id. Ids are part of the JSON contract: never renamed,
 * only added. Severities follow the image-spec keyword of the rule (MUST → error, SHOULD → warning,
 * MAY / informational → info); rules established validators enforce without a spec keyword ("derived")
 * are warnings unless breaking them makes the image unusable, which the description then says.
 */
export type Severity = 'error' | 'warning' | 'info';

export interface Rule {
  severity: Severity;
  description: string;
}

const error = (description: string): Rule => ({ severity: 'error', description });
const warning = (description: string): Rule => ({ severity: 'warning', description });
const info = (description: string): Rule => ({ severity: 'info', description });

export const RULES = {
  // Layout (image-layout.md)
  'layout-missing-oci-layout': error('the layout has no oci-layout file'),
  'layout-oci-layout-invalid': error('oci-layout is not a JSON object with a string imageLayoutVersion'),
  'layout-version-unsupported': error('imageLayoutVersion is not "1.0.0"'),
  'layout-missing-index': error('the layout has no index.json'),
  'layout-missing-blobs': error('the layout has no blobs/ directory'),
  'layout-file-unreadable': error('oci-layout or index.json is a symlink, not a regular file, or cannot be read'),
  'layout-blobs-symlink': error('blobs/ or blobs/<alg>/ is a symlink; nothing under it is read'),
  'blob-name-invalid': error('a file under blobs/ is not named blobs/<alg>/<encoded> with a valid digest'),
  'blob-symlink': error('a blob is a symlink; it is never followed'),
  'blob-not-regular': error('a blob is not a regular file'),
  'blob-unreadable': error('a blob could not be read'),
  'blob-unreferenced': info('a blob no descriptor reaches (allowed; gc removes it)'),
  'blob-missing': error('a referenced blob is not in the layout'),
  'blob-missing-external': warning('a non-distributable or foreign layer, or one with urls, is not in the layout'),
  'blob-size-mismatch': error('the blob size differs from the descriptor size'),
  'blob-digest-mismatch': error('the blob content does not hash to its digest'),
  'ref-name-ambiguous': warning('the same ref name tags two different digests in index.json'),
  // Archives and docker save
  'archive-invalid': error('the tarball cannot be read as an OCI archive or docker save tarball'),
  'archive-duplicate-entry': warning('the tarball holds two entries with the same name; the last one is used'),
  'docker-save-manifest-invalid': error('manifest.json is not a list of {Config, RepoTags, Layers}'),
  'docker-save-entry-missing': error('a file manifest.json names is not in the tarball'),
  'docker-save-layers-mismatch': error("manifest.json lists a different number of layers than the config's diff_ids"),
  'docker-save-config-invalid': error('a Config manifest.json names is not a JSON image config with rootfs.diff_ids'),
  'docker-save-image-mismatch': error("a manifest.json entry's Config or Layers differ from its image's manifest in index.json"),
  'docker-save-image-skipped': error('an image manifest.json lists cannot be built from the tarball; it is not verified'),
  // Descriptors (descriptor.md)
  'descriptor-invalid': error('a descriptor is not an object with mediaType, digest and size'),
  'media-type-invalid': error('a mediaType does not follow RFC 6838'),
  'digest-invalid': error('a digest does not follow the digest grammar or its algorithm\'s encoding'),
  'digest-unverifiable': info('the digest algorithm is not sha256 or sha512, so content is not hashed'),
  'descriptor-size-invalid': error('size is not a non-negative integer'),
  'descriptor-data-invalid': error('data is not standard padded base64'),
  'descriptor-data-mismatch': error('embedded data does not match the descriptor size or digest'),
  'descriptor-url-invalid': error('a urls entry is not a URI'),
  'descriptor-url-scheme': warning('a urls entry is not http or https'),
  'annotations-invalid': error('annotations are not a map of string to string'),
  'artifact-type-invalid': error('artifactType does not follow RFC 6838'),
  'artifact-type-mismatch': warning("a descriptor's artifactType differs from its target's artifactType (or, without one, the config mediaType)"),
  'platform-invalid': error('platform lacks a string os and architecture, or has badly typed fields'),
  'platform-missing': info('an index entry for an image manifest has no platform'),
  // Documents (manifest.md, image-index.md, considerations.md)
  'json-invalid': error('a document is not UTF-8 JSON'),
  'json-duplicate-key': error('a JSON object has the same key twice'),
  'json-too-large': warning('a document is larger than 4 MiB (registries and containers/image refuse it)'),
  'document-too-large': error('a document is too large to be read at all'),
  'schema-version-invalid': error('schemaVersion is not 2'),
  'manifest-invalid': error('an image manifest lacks a valid config or layers'),
  'manifest-media-type-mismatch': error("the manifest's mediaType differs from the descriptor that points at it"),
  // SHOULD-level, but skopeo and umoci omit it and the type is known from the descriptor: a note only.
  'manifest-media-type-missing': info('an image manifest has no mediaType'),
  'manifest-layers-empty': warning('an image manifest has no layers'),
  'index-invalid': error('an image index has no manifests array'),
  'index-manifests-null': warning('index.json has "manifests": null (Docker 25+ save); images are read from manifest.json'),
  'index-media-type-mismatch': error("the index's mediaType differs from the descriptor that points at it"),
  'index-media-type-missing': info('an image index (or index.json) has no mediaType'),
  'index-too-deep': error('indexes nest deeper than the depth limit, or loop'),
  'artifact-type-missing': error('artifactType is required when the config is the empty descriptor'),
  'empty-descriptor-invalid': warning('a descriptor with the empty media type is not the 2-byte {} blob'),
  'subject-missing': info('the subject of a referrer is not in the layout (a dangling referrer)'),
  // Config (config.md)
  'config-invalid': error('the image config is not an object with os, architecture and rootfs'),
  'config-rootfs-type': error('rootfs.type is not "layers"'),
  'config-diff-ids-count': error('the config has a different number of diff_ids than the manifest has layers'),
  'config-diffid-mismatch': error('a layer does not decompress to its diff_id (--deep)'),
  'config-history-mismatch': warning('non-empty history entries do not match the layer count'),
  'config-created-invalid': error('created is not an RFC 3339 date-time'),
  'config-platform-mismatch': warning("the config's os/architecture/variant differ from the index platform"),
  'config-env-invalid': error('an Env entry is not KEY=VALUE'),
  'config-exposed-port-invalid': warning('an ExposedPorts key is not port[/tcp|/udp|/sctp]'),
  'config-labels-invalid': error('Labels are not a map of string to string'),
  // Annotations (annotations.md)
  'annotation-created-invalid': warning('org.opencontainers.image.created is not RFC 3339'),
  'annotation-url-invalid': warning('an org.opencontainers.image url/source/documentation value is not a URL'),
  'annotation-base-digest-invalid': warning('org.opencontainers.image.base.digest is not a digest'),
  'annotation-base-name-missing': warning('org.opencontainers.image.base.digest is set without base.name'),
  'annotation-ref-name-invalid': warning('org.opencontainers.image.ref.name does not follow the ref name grammar'),
  // Layers, --deep (layer.md)
  'layer-compression-mismatch': warning('the layer compression found by magic bytes differs from its media type'),
  'layer-decompress-failed': error('the layer does not decompress (corrupt or truncated gzip/zstd)'),
  'layer-too-large': error('the layer decompresses beyond --max-layer-bytes; it was not checked to the end'),
  'layer-tar-invalid': error('the layer is not a valid tar stream (bad header)'),
  'layer-tar-truncated': error('the layer tar ends inside an entry or has no end'),
  'layer-tar-no-end-marker': warning('the layer tar ends after its last entry without padding or the two zero blocks (umoci insert writes these)'),
  'layer-tar-trailing-garbage': error('non-zero bytes follow the end of the layer tar'),
  'layer-tar-absolute-path': warning('a layer entry has an absolute path (extractors strip the /)'),
  'layer-tar-path-traversal': error('a layer entry path or hardlink target contains ".."'),
  'layer-tar-duplicate-path': error('a layer holds the same path twice'),
  'layer-whiteout-invalid': warning('a whiteout (.wh.*) is not an empty regular file'),
  'layer-whiteout-bare': error('a layer entry is named ".wh." with nothing after it'),
} as const satisfies Record<string, Rule>;

export type RuleId = keyof typeof RULES;

export function severityOf(rule: RuleId): Severity {
  return RULES[rule].severity;
}
