import { RULES, type RuleId, type Severity } from './rules.js';

/** One defect (or note) found by verify; see the JSON shape documented in ops/verify.ts. */
export interface Finding {
  rule: RuleId;
  severity: Severity;
  message: string;
  /** The file inside the layout or tarball: `index.json`, `oci-layout`, `blobs/sha256/ab…`, `manifest.json`. */
  path: string;
  /** Where inside that file, when the finding is about one field. */
  jsonPath?: string;
  /** The blob the finding is about. */
  digest?: string;
  /** Digests from the index.json entry down to the blob the finding is about ([] for layout-level findings). */
  chain: string[];
}

export interface Location {
  path: string;
  jsonPath?: string;
  digest?: string;
  chain?: readonly string[];
}

/** Collects findings, each one once, with the severity its rule carries. */
export class Findings {
  readonly list: Finding[] = [];
  private readonly seen = new Set<string>();

  add(rule: RuleId, message: string, at: Location): void {
    const finding: Finding = { rule, severity: RULES[rule].severity, message, path: at.path, chain: [...(at.chain ?? [])] };
    if (at.jsonPath !== undefined) finding.jsonPath = at.jsonPath;
    if (at.digest !== undefined) finding.digest = at.digest;
    const key = `${rule}\0${at.path}\0${at.jsonPath ?? ''}\0${at.digest ?? ''}\0${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.list.push(finding);
  }

  count(severity: Severity): number {
    return this.list.filter((f) => f.severity === severity).length;
  }
}
