/**
 * seccomp.img and thread_core's seccomp_mode/seccomp_filter → each thread's seccomp plan.
 * A thread's chain starts at its seccomp_filter (the oldest filter, installed first) and goes
 * on through each filter's `prev` (CRIU's name for the filter installed after it) to the newest.
 */
import { badImage as badInput, refuse as unsupported, type Obj } from '@crtools/files/plan';
import type { SeccompPlan } from '../plan.js';

/** SECCOMP_FILTER_FLAG_TSYNC, _LOG and _SPEC_ALLOW: what installing a recorded filter may ask */
export const SECCOMP_FLAG_TSYNC = 1;
const KNOWN_FLAGS = 1 | 2 | 4;
/** BPF_MAXINSNS */
const MAX_INSNS = 4096;

function modeOf(v: unknown): number {
  if (v === undefined || v === 'disabled' || v === 0) return 0;
  if (v === 'strict' || v === 1) return 1;
  if (v === 'filter' || v === 2) return 2;
  return -1;
}

/**
 * The seccomp plan of one thread (undefined: none). `filters` is seccomp.img's list (undefined
 * when there is no such image). `old` is a leader's task_core old_seccomp_mode/old_seccomp_filter
 * from images of before per-thread seccomp: they apply to the main thread, installed with TSYNC,
 * as CRIU does.
 */
export function seccompFrom(tc: Obj | undefined, filters: Obj[] | undefined, path: string, tid: number, old?: { mode: unknown; filter: unknown }): SeccompPlan | undefined {
  let mode = modeOf(tc?.seccomp_mode);
  let index = tc?.seccomp_filter;
  let force = 0;
  if (tc?.seccomp_mode === undefined && old && old.mode !== undefined) {
    mode = modeOf(old.mode);
    index = old.filter;
    force = SECCOMP_FLAG_TSYNC;
  }
  if (mode < 0) throw badInput(`${path}: unknown seccomp mode ${String(tc?.seccomp_mode ?? old?.mode)}`, { path, image: path, pid: tid });
  if (mode === 0) return undefined;
  if (mode === 1) return { strict: true, filters: [] };
  const all = filters ?? [];
  const chain: SeccompPlan['filters'] = [];
  let at = index === undefined ? -1 : Number(index);
  for (;;) {
    if (!Number.isInteger(at) || at < 0 || at >= all.length) throw badInput(`${path}: seccomp filter ${String(index)} (chain at ${at}) is not in seccomp.img (${all.length} filters)`, { path, image: 'seccomp.img', pid: tid });
    if (chain.length >= all.length) throw badInput(`seccomp.img: the chain of thread ${tid} loops`, { image: 'seccomp.img', pid: tid });
    const f = all[at]!;
    const bytes = f.filter as Buffer | undefined;
    if (!bytes || bytes.length === 0 || bytes.length % 8 !== 0 || bytes.length / 8 > MAX_INSNS) {
      throw badInput(`seccomp.img: filter ${at} has ${bytes?.length ?? 0} bytes (a multiple of 8, at most ${MAX_INSNS} instructions expected)`, { image: 'seccomp.img', pid: tid });
    }
    const flags = Number(f.flags ?? 0) | force;
    if (flags & ~KNOWN_FLAGS) throw unsupported(`seccomp.img: filter ${at} of thread ${tid} has flags 0x${flags.toString(16)}, some of which restore does not install`, { pid: tid });
    chain.push({ filter: Buffer.from(bytes), flags });
    if (f.prev === undefined || f.prev === null) break;
    at = Number(f.prev);
  }
  return { strict: false, filters: chain };
}
