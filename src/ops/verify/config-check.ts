import { digestProblem } from '../../model/digest.js';
import type { Findings, Location } from './findings.js';
import { isRfc3339 } from '../../model/formats.js';
import { isPlainObject, isStringMap } from './formats.js';

export interface ConfigContext {
  /** The number of layers the manifest lists. */
  layerCount: number;
  /** The platform of the index entry that led here, when there is one. */
  platform?: Record<string, unknown>;
}

const at = (loc: Location, jsonPath: string): Location => ({ ...loc, jsonPath });

/** config.md checks on a parsed image config; returns its diff_ids (valid or not) for --deep. */
export function checkConfig(value: unknown, loc: Location, context: ConfigContext, findings: Findings): unknown[] {
  if (!isPlainObject(value)) {
    findings.add('config-invalid', 'the config is not a JSON object', loc);
    return [];
  }
  for (const key of ['architecture', 'os']) {
    if (typeof value[key] !== 'string') findings.add('config-invalid', `${key} is required and must be a string`, at(loc, `$.${key}`));
  }
  const diffIds = checkRootfs(value.rootfs, loc, context, findings);
  checkHistory(value.history, loc, context, findings);
  if (value.created != null && !isRfc3339(value.created)) findings.add('config-created-invalid', `created ${JSON.stringify(value.created)} is not RFC 3339`, at(loc, '$.created'));
  checkPlatformMatch(value, loc, context, findings);
  checkContainerConfig(value.config, loc, findings);
  return diffIds;
}

function checkRootfs(rootfs: unknown, loc: Location, context: ConfigContext, findings: Findings): unknown[] {
  if (!isPlainObject(rootfs)) {
    findings.add('config-invalid', 'rootfs is required and must be an object', at(loc, '$.rootfs'));
    return [];
  }
  if (rootfs.type !== 'layers') findings.add('config-rootfs-type', `rootfs.type is ${JSON.stringify(rootfs.type)}, not "layers"`, at(loc, '$.rootfs.type'));
  if (!Array.isArray(rootfs.diff_ids)) {
    findings.add('config-invalid', 'rootfs.diff_ids is required and must be an array', at(loc, '$.rootfs.diff_ids'));
    return [];
  }
  rootfs.diff_ids.forEach((d, i) => {
    const problem = digestProblem(d);
    if (problem) findings.add('digest-invalid', problem, at(loc, `$.rootfs.diff_ids[${i}]`));
  });
  if (rootfs.diff_ids.length !== context.layerCount) {
    findings.add('config-diff-ids-count', `${rootfs.diff_ids.length} diff_ids for ${context.layerCount} layers`, at(loc, '$.rootfs.diff_ids'));
  }
  return rootfs.diff_ids;
}

function checkHistory(history: unknown, loc: Location, context: ConfigContext, findings: Findings): void {
  if (history == null) return;
  if (!Array.isArray(history)) {
    findings.add('config-invalid', 'history is not an array', at(loc, '$.history'));
    return;
  }
  history.forEach((h, i) => {
    if (!isPlainObject(h)) findings.add('config-invalid', 'history entry is not an object', at(loc, `$.history[${i}]`));
    else if (h.created != null && !isRfc3339(h.created)) findings.add('config-created-invalid', `created ${JSON.stringify(h.created)} is not RFC 3339`, at(loc, `$.history[${i}].created`));
  });
  if (history.length === 0) return;
  const layered = history.filter((h) => !(isPlainObject(h) && h.empty_layer === true)).length;
  if (layered !== context.layerCount) {
    findings.add('config-history-mismatch', `${layered} history entries without empty_layer for ${context.layerCount} layers`, at(loc, '$.history'));
  }
}

/** Variant and os.version are compared only when both sides state them: configs often omit them. */
function checkPlatformMatch(config: Record<string, unknown>, loc: Location, context: ConfigContext, findings: Findings): void {
  const platform = context.platform;
  if (!platform) return;
  const differences: string[] = [];
  for (const key of ['os', 'architecture', 'variant', 'os.version']) {
    const want = platform[key];
    const have = config[key];
    const both = want !== undefined && have != null && have !== '';
    if ((key === 'os' || key === 'architecture' || both) && want !== have) differences.push(`${key} ${JSON.stringify(have)} (index says ${JSON.stringify(want)})`);
  }
  if (differences.length) findings.add('config-platform-mismatch', `config ${differences.join(', ')}`, loc);
}

function checkContainerConfig(config: unknown, loc: Location, findings: Findings): void {
  if (config == null) return;
  if (!isPlainObject(config)) {
    findings.add('config-invalid', 'config is not an object', at(loc, '$.config'));
    return;
  }
  const env = config.Env;
  if (env != null && !Array.isArray(env)) findings.add('config-invalid', 'Env is not an array', at(loc, '$.config.Env'));
  if (Array.isArray(env)) {
    env.forEach((e, i) => {
      if (typeof e !== 'string' || !/^[^=]+=/.test(e)) findings.add('config-env-invalid', `Env entry ${JSON.stringify(e)} is not KEY=VALUE`, at(loc, `$.config.Env[${i}]`));
    });
  }
  const ports = config.ExposedPorts;
  if (isPlainObject(ports)) {
    for (const port of Object.keys(ports)) {
      if (!/^\d{1,5}(?:-\d{1,5})?(?:\/(?:tcp|udp|sctp))?$/.test(port)) {
        findings.add('config-exposed-port-invalid', `ExposedPorts key ${JSON.stringify(port)} is not port[/tcp|/udp|/sctp]`, at(loc, `$.config.ExposedPorts[${JSON.stringify(port)}]`));
      }
    }
  }
  if (config.Labels != null && !isStringMap(config.Labels)) findings.add('config-labels-invalid', 'Labels are not a map of string to string', at(loc, '$.config.Labels'));
}
