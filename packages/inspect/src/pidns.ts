/**
 * A tree whose root is the init of a pid namespace of its own is restored at the same pids
 * inside that namespace, at others outside it (the ones crtools sees). insideView rewrites a
 * fingerprint taken from outside into the pids its tasks see (the last of each NSpid): task and
 * thread ids, the pid fields of status and stat, what the tasks share with whom, the shared
 * pages' members. Every other field is left as it was, so two views compare field by field as
 * two fingerprints do. Pids outside the namespace (the root's parent) are left as they are.
 */
import type { Fingerprint } from './fingerprint.js';

const last = (list: string | undefined): number | undefined => {
  const w = list?.trim().split(/\s+/).filter(Boolean);
  return w?.length ? Number(w[w.length - 1]) : undefined;
};

/** The fingerprint as the tasks of its pid namespace see their pids. */
export function insideView(f: Fingerprint): Fingerprint {
  const inner = new Map<number, number>();
  for (const t of f.tasks) {
    const p = last(t.status['NSpid']);
    if (p !== undefined) inner.set(t.pid, p);
    for (const th of t.threads) {
      const q = last(th.status['NSpid']);
      if (q !== undefined) inner.set(th.tid, q);
    }
  }
  const id = (n: number): number => inner.get(n) ?? n;
  const idText = (s: string | undefined): string | undefined => (s === undefined || !/^\d+$/.test(s) ? s : String(id(Number(s))));
  const member = (m: string): string => {
    const at = m.indexOf(':');
    return at < 0 ? m : `${id(Number(m.slice(0, at)))}${m.slice(at)}`;
  };
  const lastOnly = (s: string | undefined): string | undefined => (s === undefined ? s : String(last(s) ?? s));
  return {
    ...f,
    root: id(f.root),
    tasks: f.tasks.map((t) => ({
      ...t,
      pid: id(t.pid),
      status: {
        ...t.status,
        ...Object.fromEntries((['Tgid', 'Pid', 'PPid'] as const).filter((k) => t.status[k] !== undefined).map((k) => [k, idText(t.status[k])!])),
        ...Object.fromEntries((['NStgid', 'NSpid', 'NSpgid', 'NSsid'] as const).filter((k) => t.status[k] !== undefined).map((k) => [k, lastOnly(t.status[k])!])),
      },
      stat: {
        ...t.stat,
        ...Object.fromEntries((['ppid', 'pgrp', 'session', 'tpgid'] as const).filter((k) => t.stat[k] !== undefined).map((k) => [k, idText(t.stat[k])!])),
      },
      shares: { files: id(t.shares.files), fs: id(t.shares.fs), vm: id(t.shares.vm), sighand: id(t.shares.sighand) },
      threads: t.threads.map((th) => ({ ...th, tid: id(th.tid), status: th.status['NSpid'] === undefined ? th.status : { ...th.status, NSpid: lastOnly(th.status['NSpid'])! } })),
    })),
    sharedPages: f.sharedPages.map((g) => g.map(member)),
    ...(f.pageDigests ? { pageDigests: Object.fromEntries(Object.entries(f.pageDigests).map(([k, v]) => [member(k), v])) } : {}),
    ...(f.namespaces ? { namespaces: { ...f.namespaces, nested: Object.fromEntries(Object.entries(f.namespaces.nested).map(([k, v]) => [String(id(Number(k))), v])) } } : {}),
  };
}
