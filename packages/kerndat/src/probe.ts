import { machine } from 'node:os';
import { nowMs, silentLogger, type Logger } from '@crtools/common';
import { KERNDAT_PROBE_REVISION, KERNDAT_SCHEMA, type Kerndat, type KerndatPart } from './types.js';
import { readTrim } from './procfs-lite.js';
import { native } from './load-native.js';
import * as mem from './probes/memory.js';
import * as vdso from './probes/vdso.js';
import * as tasks from './probes/tasks.js';
import * as files from './probes/files.js';
import * as net from './probes/net.js';
import * as cpu from './probes/cpu.js';

export type Probe = (sofar: Partial<Kerndat>) => KerndatPart;

/** Every probe, by name, in the order they run. */
export const PROBES: ReadonlyArray<readonly [string, Probe]> = [
  ['page_size', mem.probePageSize],
  ['task_size', mem.probeTaskSize],
  ['mmap_min_addr', mem.probeMmapMinAddr],
  ['stack_guard_gap', mem.probeStackGuardGap],
  ['zero_page', mem.probeZeroPageAndPagemap],
  ['pagemap_scan', mem.probePagemapScan],
  ['uffd', mem.probeUffd],
  ['uffd_wp_dirty_track', mem.probeUffdWpDirtyTrack],
  ['thp_disable', mem.probeThp],
  ['memfd', mem.probeMemfd],
  ['aio_remap', mem.probeAioRemap],
  ['shmem_dev', mem.probeShmemDevs],
  ['new_mappings', mem.probeNewMappings],
  ['vdso', vdso.probeVdso],
  ['clone3_set_tid', tasks.probeClone3SetTid],
  ['pidfd', tasks.probePidfd],
  ['ns_last_pid', tasks.probeNsLastPid],
  ['kcmp', tasks.probeKcmp],
  ['prctl', tasks.probePrctl],
  ['close_range', tasks.probeCloseRange],
  ['ptrace', tasks.probePtrace],
  ['sigqueueinfo', tasks.probeSigqueueinfo],
  ['clone_parent_newpid', tasks.probeCloneParentNewpid],
  ['loginuid', tasks.probeLoginuid],
  ['proc_task', tasks.probeProcTask],
  ['namespaces', tasks.probeNamespaces],
  ['caps', tasks.probeCaps],
  ['lsm', tasks.probeLsm],
  ['cgroup', tasks.probeCgroup],
  ['nr_open', tasks.probeNrOpen],
  ['map_files', files.probeMapFiles],
  ['fdinfo', files.probeFdinfo],
  ['tty', files.probeTty],
  ['vmsplice', files.probeVmsplice],
  ['ipc', files.probeIpc],
  ['mount_api', files.probeMountApi],
  ['autofs', files.probeAutofs],
  ['overlayfs_maps', files.probeOverlayfsMaps],
  ['tcp', net.probeTcp],
  ['sockopts', net.probeSockopts],
  ['tun', net.probeTun],
  ['sock_diag', net.probeSockDiag],
  ['rtnetlink', net.probeRtnetlink],
  ['link_nsid', net.probeLinkNsid],
  ['netlock_tools', net.probeNetLockTools],
  ['cpu', cpu.probeCpu],
];

export interface ProbeOptions {
  /** Run only these probes (names from PROBES). */
  only?: string[];
  logger?: Logger;
}

/** Release and boot id: what makes a cached document valid. */
export function kernelIdentity(): { release: string; boot_id: string } {
  return { release: readTrim('/proc/sys/kernel/osrelease'), boot_id: readTrim('/proc/sys/kernel/random/boot_id') };
}

/**
 * Probe the running kernel. A probe that throws leaves its keys out and its
 * message in `errors[name]`; the others still run.
 */
export function probeKerndat(opts: ProbeOptions = {}): Kerndat {
  const log = opts.logger ?? silentLogger;
  native(); // no addon, no probing: one NATIVE_MISSING error rather than every probe failing
  const doc: Kerndat = {
    schema: KERNDAT_SCHEMA,
    arch: machine(),
    ...kernelIdentity(),
    probed_at: new Date().toISOString(),
    probes: [],
    probe_revision: KERNDAT_PROBE_REVISION,
    errors: {},
  };
  for (const [name, fn] of PROBES) {
    if (opts.only && !opts.only.includes(name)) continue;
    doc.probes.push(name);
    const t0 = nowMs();
    try {
      Object.assign(doc, fn(doc));
    } catch (e) {
      doc.errors[name] = e instanceof Error ? e.message : String(e);
      log.warn(`kerndat: probe ${name} failed: ${doc.errors[name]}`);
    }
    log.debug(`kerndat: ${name} ${(nowMs() - t0).toFixed(1)} ms`);
  }
  return doc;
}
