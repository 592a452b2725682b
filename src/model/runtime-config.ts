/**
 * The OCI runtime-spec config.json, the part a bundle made from an image holds (runtime-spec v1.0.2), and
 * the defaults ocikit fills in: the runtime-spec's example Linux container, as `runc spec` writes it.
 */
import * as z from 'zod/mini';

const userSchema = z.looseObject({
  uid: z.number(),
  gid: z.number(),
  additionalGids: z.optional(z.array(z.number())),
});

const mountSchema = z.looseObject({
  destination: z.string(),
  type: z.optional(z.string()),
  source: z.optional(z.string()),
  options: z.optional(z.array(z.string())),
});

const capabilityList = z.optional(z.array(z.string()));

export const runtimeConfigSchema = z.looseObject({
  ociVersion: z.string(),
  process: z.looseObject({
    terminal: z.optional(z.boolean()),
    user: userSchema,
    args: z.array(z.string()),
    env: z.optional(z.array(z.string())),
    cwd: z.string(),
    capabilities: z.optional(z.looseObject({
      bounding: capabilityList, effective: capabilityList, inheritable: capabilityList, permitted: capabilityList, ambient: capabilityList,
    })),
    rlimits: z.optional(z.array(z.looseObject({ type: z.string(), hard: z.number(), soft: z.number() }))),
    noNewPrivileges: z.optional(z.boolean()),
  }),
  root: z.looseObject({ path: z.string(), readonly: z.optional(z.boolean()) }),
  hostname: z.optional(z.string()),
  mounts: z.optional(z.array(mountSchema)),
  annotations: z.optional(z.record(z.string(), z.string())),
  linux: z.optional(z.looseObject({
    resources: z.optional(z.looseObject({ devices: z.optional(z.array(z.looseObject({ allow: z.boolean(), access: z.optional(z.string()) }))) })),
    namespaces: z.optional(z.array(z.looseObject({ type: z.string(), path: z.optional(z.string()) }))),
    maskedPaths: z.optional(z.array(z.string())),
    readonlyPaths: z.optional(z.array(z.string())),
  })),
});
export type RuntimeConfig = z.infer<typeof runtimeConfigSchema>;

export const RUNTIME_SPEC_VERSION = '1.0.2';

/** What process.env holds unless the image sets the same names (conversion.md: defaults never override). */
export const DEFAULT_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'];

const DEFAULT_CAPABILITIES = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

/** The runtime-spec example's Linux container, without the image's own values. */
export function defaultRuntimeConfig(): RuntimeConfig {
  const caps = () => [...DEFAULT_CAPABILITIES];
  return {
    ociVersion: RUNTIME_SPEC_VERSION,
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['sh'],
      env: [...DEFAULT_ENV],
      cwd: '/',
      capabilities: { bounding: caps(), effective: caps(), inheritable: caps(), permitted: caps(), ambient: caps() },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs' },
    hostname: 'ocikit',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: ['pid', 'network', 'ipc', 'uts', 'mount'].map((type) => ({ type })),
      maskedPaths: ['/proc/kcore', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}
