/**
 * Layouts with referrers in every storage convention, built with the fixture builder: an image, a
 * signature on it (untagged index.json entry with `subject`), an SBOM on it (listed by a `sha256-<hex>`
 * fallback-tag index) and a signature on the SBOM (entry annotated `io.containerd.manifest.subject`).
 */
import type { Descriptor } from '../../src/model/descriptor.js';
import {
  buildImage, buildIndex, emptyBlob, hexOf, jsonBlob, makeLayer, rawLayer, tagged, writeLayout, type Blob, type BuiltImage,
} from '../../testdata/builder.js';

export const SIGNATURE_TYPE = 'application/vnd.example.signature.v1';
export const SBOM_TYPE = 'application/spdx+json';
export const CONTAINERD_SUBJECT = 'io.containerd.manifest.subject';

export function subjectOf(d: Descriptor): Descriptor {
  const { platform: _p, annotations: _a, ...subject } = d;
  return subject;
}

export function artifact(subject: Descriptor | undefined, artifactType: string, payload: string): BuiltImage {
  const layerType = artifactType.endsWith('+json') ? artifactType : `${artifactType}+json`;
  return buildImage({
    layers: [rawLayer(payload, layerType)],
    configBlob: emptyBlob(),
    artifactType,
    ...(subject ? { subject: subjectOf(subject) } : {}),
  });
}

export function smallImage(name: string): BuiltImage {
  return buildImage({ layers: [makeLayer([{ path: `${name}.txt`, content: `${name}\n` }])], config: { Cmd: ['/bin/sh'] } });
}

export interface ReferrerLayout {
  image: BuiltImage;
  signature: BuiltImage;
  sbom: BuiltImage;
  sbomSignature: BuiltImage;
  /** An image tagged `other` with its own signature: not part of `latest`. */
  other: BuiltImage;
  otherSignature: BuiltImage;
  manifests: Descriptor[];
  blobs: Blob[];
}

export function referrerLayout(): ReferrerLayout {
  const image = smallImage('signed');
  const signature = artifact(image.descriptor, SIGNATURE_TYPE, '{"signature":"on the image"}');
  const sbom = artifact(image.descriptor, SBOM_TYPE, '{"spdxVersion":"SPDX-2.3","name":"signed"}');
  const sbomSignature = artifact(sbom.descriptor, SIGNATURE_TYPE, '{"signature":"on the SBOM"}');
  const fallback = buildIndex({ manifests: [sbom.descriptor], children: sbom.blobs });
  const other = smallImage('other');
  const otherSignature = artifact(other.descriptor, SIGNATURE_TYPE, '{"signature":"on the other image"}');
  const manifests = [
    tagged(image.descriptor, 'latest'),
    signature.descriptor,
    tagged(fallback.descriptor, `sha256-${hexOf(image.descriptor.digest)}`),
    { ...sbomSignature.descriptor, annotations: { [CONTAINERD_SUBJECT]: sbom.descriptor.digest } },
    tagged(other.descriptor, 'other'),
    otherSignature.descriptor,
  ];
  const blobs = [...image.blobs, ...signature.blobs, ...fallback.blobs, ...sbomSignature.blobs, ...other.blobs, ...otherSignature.blobs];
  return { image, signature, sbom, sbomSignature, other, otherSignature, manifests, blobs };
}

export async function writeReferrerLayout(dir: string): Promise<ReferrerLayout> {
  const layout = referrerLayout();
  await writeLayout(dir, { manifests: layout.manifests, blobs: layout.blobs });
  return layout;
}

/** An image whose manifest names a blob in a field no spec defines: only descriptor-shape scanning finds it. */
export function imageWithExtension(): { image: BuiltImage; manifest: Blob; extension: Blob; blobs: Blob[] } {
  const image = smallImage('extended');
  const extension = jsonBlob({ compatibility: ['linux/amd64/v3'] }, 'application/vnd.example.compatibility.v1+json');
  const value = { ...image.manifest, 'io.example.extension': { compatibility: extension.descriptor } };
  const manifest = jsonBlob(value, image.descriptor.mediaType, { platform: image.descriptor.platform });
  return { image, manifest, extension, blobs: [manifest, image.configBlob, ...image.layers, extension] };
}
