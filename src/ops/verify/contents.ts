import { algorithmOf, isVerifiable, type Digest } from '../../model/digest.js';
import { mediaTypeInfo } from '../../model/media-types.js';
import type { BlobJob, JobResult } from '../../hash/jobs.js';
import type { DocumentWalk, LayerUse } from './documents.js';
import type { Findings, Location } from './findings.js';
import type { JobRunner } from '../../hash/job-runner.js';
import type { RuleId } from './rules.js';
import type { Site } from './site.js';

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

export interface ContentOptions {
  deep: boolean;
  maxLayerBytes: number;
  shard?: Shard;
}

export interface ContentStats {
  blobs: number;
  bytes: number;
}

/** Whether a blob's content is this shard's to check: a fixed split by digest, so N shards cover each blob once. */
export function inShard(digest: Digest, shard: Shard | undefined): boolean {
  if (!shard || shard.count === 1) return true;
  const hex = digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 9);
  const n = /^[0-9a-f]{8}$/.test(hex) ? parseInt(hex, 16) : [...digest].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
  return n % shard.count === shard.index - 1;
}

interface Planned {
  digest: Digest;
  job: BlobJob;
  size: number;
  /** The content, already read with the listing (hash jobs only). */
  data?: Buffer;
  loc: Location;
  use?: LayerUse;
}

/** The blobs whose bytes this run reads (documents were already hashed by the walk). */
export function planContents(site: Site, walk: DocumentWalk, candidates: Iterable<Digest>, options: ContentOptions, findings: Findings): Planned[] {
  const planned: Planned[] = [];
  for (const digest of new Set(candidates)) {
    if (walk.hashed.has(digest) || walk.oversized.has(digest) || !inShard(digest, options.shard)) continue;
    const state = site.blob(digest);
    if (state.status !== 'present' || !state.source) continue;
    const use = options.deep ? walk.layers.get(digest) : undefined;
    const deep = use && (use.isTar || use.expectations.length > 0);
    if (!deep && !isVerifiable(digest)) {
      findings.add('digest-unverifiable', `${algorithmOf(digest)} content is not hashed`, { path: state.path, digest, chain: walk.referenced.get(digest) ?? [] });
      continue;
    }
    const algorithm = isVerifiable(digest) ? algorithmOf(digest) : 'sha256';
    const job: BlobJob = deep
      ? { kind: 'deep', source: state.source, algorithm, maxLayerBytes: options.maxLayerBytes, checkTar: use.isTar, hint: mediaTypeInfo(use.mediaType)?.compression }
      : { kind: 'hash', source: state.source, algorithm };
    const p: Planned = { digest, job, size: state.size, loc: { path: state.path, digest, chain: walk.referenced.get(digest) ?? [] }, use };
    if (!deep && state.data) p.data = state.data;
    planned.push(p);
  }
  return planned;
}

export async function checkContents(planned: Planned[], pool: JobRunner, findings: Findings): Promise<ContentStats> {
  const results = await pool.run(planned.map((p) => ({ job: p.job, size: p.size, data: p.data })));
  let bytes = 0;
  planned.forEach((p, i) => {
    const result = results[i]!;
    bytes += result.bytes;
    report(p, result, findings);
  });
  return { blobs: planned.length, bytes };
}

function report(p: Planned, result: JobResult, findings: Findings): void {
  if (result.error !== undefined) {
    findings.add('blob-unreadable', `${p.loc.path}: ${result.error}`, p.loc);
    return;
  }
  if (isVerifiable(p.digest) && result.digest !== p.digest) findings.add('blob-digest-mismatch', `content hashes to ${result.digest}`, p.loc);
  const deep = result.deep;
  if (!deep || !p.use) return;
  const declared = mediaTypeInfo(p.use.mediaType)?.compression;
  if (declared && declared !== deep.compression) {
    findings.add('layer-compression-mismatch', `the content is ${deep.compression === 'none' ? 'not compressed' : deep.compression}, the media type ${p.use.mediaType} says ${declared}`, p.use.loc);
  }
  if (deep.decompressError !== undefined) findings.add('layer-decompress-failed', `${deep.compression}: ${deep.decompressError}`, p.loc);
  if (deep.tooLarge) findings.add('layer-too-large', `decompresses to more than ${p.job.kind === 'deep' ? p.job.maxLayerBytes : 0} bytes (--max-layer-bytes); not checked further`, p.loc);
  for (const issue of deep.tar?.issues ?? []) findings.add(issue.rule as RuleId, issue.message, p.loc);
  if (deep.tar && deep.tar.dropped > 0) findings.add(deep.tar.issues.at(-1)!.rule as RuleId, `${deep.tar.dropped} more problems in this layer are not listed`, p.loc);
  if (deep.diffId === undefined) return;
  for (const e of p.use.expectations) {
    if (typeof e.diffId === 'string' && e.diffId !== deep.diffId) {
      findings.add('config-diffid-mismatch', `layer ${p.digest} decompresses to ${deep.diffId}, the config says ${e.diffId}`, e.loc);
    }
  }
}
