/** The media types ocikit knows, with their OCI/Docker equivalents. Unknown types are carried along, never an error. */
export const MediaType = {
  ociLayoutHeader: 'application/vnd.oci.layout.header.v1+json',
  ociDescriptor: 'application/vnd.oci.descriptor.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  /** image-spec 1.1.0-rc1/rc2, dropped from 1.1.0 but written by ORAS 1.0: `blobs[]` instead of config and layers. */
  ociArtifactManifest: 'application/vnd.oci.artifact.manifest.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociNondistLayer: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociNondistLayerGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociNondistLayerZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerPluginConfig: 'application/vnd.docker.plugin.v1+json',
  inToto: 'application/vnd.in-toto+json',
} as const;

export type Family = 'oci' | 'docker';
export type Kind = 'index' | 'manifest' | 'artifact' | 'config' | 'layer' | 'empty' | 'other';
export type Compression = 'none' | 'gzip' | 'zstd';

export interface MediaTypeInfo {
  kind: Kind;
  family: Family;
  compression?: Compression;
  /** Deprecated non-distributable or Docker foreign layers: their blobs are often absent on purpose. */
  nondistributable?: boolean;
  /** The OCI type this one converts to (Docker types only). */
  oci?: string;
}

const M = MediaType;
const TABLE: Record<string, MediaTypeInfo> = {
  [M.ociIndex]: { kind: 'index', family: 'oci' },
  [M.ociManifest]: { kind: 'manifest', family: 'oci' },
  [M.ociConfig]: { kind: 'config', family: 'oci' },
  [M.ociArtifactManifest]: { kind: 'artifact', family: 'oci' },
  [M.ociEmpty]: { kind: 'empty', family: 'oci' },
  [M.ociLayer]: { kind: 'layer', family: 'oci', compression: 'none' },
  [M.ociLayerGzip]: { kind: 'layer', family: 'oci', compression: 'gzip' },
  [M.ociLayerZstd]: { kind: 'layer', family: 'oci', compression: 'zstd' },
  [M.ociNondistLayer]: { kind: 'layer', family: 'oci', compression: 'none', nondistributable: true },
  [M.ociNondistLayerGzip]: { kind: 'layer', family: 'oci', compression: 'gzip', nondistributable: true },
  [M.ociNondistLayerZstd]: { kind: 'layer', family: 'oci', compression: 'zstd', nondistributable: true },
  [M.dockerManifestList]: { kind: 'index', family: 'docker', oci: M.ociIndex },
  [M.dockerManifest]: { kind: 'manifest', family: 'docker', oci: M.ociManifest },
  [M.dockerConfig]: { kind: 'config', family: 'docker', oci: M.ociConfig },
  [M.dockerLayer]: { kind: 'layer', family: 'docker', compression: 'none', oci: M.ociLayer },
  [M.dockerLayerGzip]: { kind: 'layer', family: 'docker', compression: 'gzip', oci: M.ociLayerGzip },
  [M.dockerForeignLayerGzip]: {
    kind: 'layer', family: 'docker', compression: 'gzip', nondistributable: true, oci: M.ociNondistLayerGzip,
  },
};

export function mediaTypeInfo(mediaType: string | undefined): MediaTypeInfo | undefined {
  return mediaType === undefined ? undefined : TABLE[mediaType];
}

export function isIndexType(mediaType: string | undefined): boolean {
  return mediaTypeInfo(mediaType)?.kind === 'index';
}

export function isManifestType(mediaType: string | undefined): boolean {
  return mediaTypeInfo(mediaType)?.kind === 'manifest';
}

export function isLayerType(mediaType: string | undefined): boolean {
  return mediaTypeInfo(mediaType)?.kind === 'layer';
}

/** The OCI equivalent of a Docker media type; OCI and unknown types map to themselves. */
export function toOciMediaType(mediaType: string): string {
  return TABLE[mediaType]?.oci ?? mediaType;
}

/** `application/json` and `…+json` (RFC 6839): a document of an unknown type worth scanning for descriptors. */
export function isJsonType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && /^[^;]*[/+]json\s*(?:;.*)?$/i.test(mediaType);
}

/** RFC 6838 §4.2, as the OCI schema writes it. */
export const MEDIA_TYPE_GRAMMAR = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
