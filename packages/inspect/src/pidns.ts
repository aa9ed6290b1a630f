/**
 * A tree whose root is the init of a pid namespace of its own is restored at the same pids
 * inside that namespace, at others outside it (the ones crtools sees). insideView rewrites a
 * fingerprint taken from outside into the pids its tasks see (the last of each NSpid): task and
 * thread ids, the pid fields of status and stat, what the tasks share with whom, the shared
 * pages' members, the process a pidfd stands for (fdinfo Pid/NSpid) and the owner of a file's
 * I/O signals (F_GETOWN_EX; a process group by its leader), the pid of a unix socket's peer
 * credentials (SO_PEERCRED), a terminal's session and foreground group (TIOCGSID, TIOCGPGRP).
 * Every other field is left as it was, so two views compare field by field as two fingerprints do. Pids outside the namespace (the root's parent) are left as they are.
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
  const fdinfoLine = (l: string): string => {
    const m = /^(Pid: |ino: \(the pidfs inode of process )(\d+)(.*)$/.exec(l);
    if (m) return `${m[1]}${id(Number(m[2]))}${m[3]}`;
    // a lock's holder ("lock: 1: FLOCK ADVISORY WRITE PID dev:ino start end")
    const lk = /^(lock: \d+: (?:-> )?\S+ \S+ \S+ )(\d+)( .*)$/.exec(l);
    if (lk) return `${lk[1]}${id(Number(lk[2]))}${lk[3]}`;
    return l.startsWith('NSpid: ') ? `NSpid: ${last(l.slice(7))}` : l;
  };
  // a POSIX timer's target ("notify: signal/tid.TID")
  const timerLine = (l: string): string => l.replace(/(notify: \S+\/(?:tid|pid)\.)(\d+)/, (_, a: string, n: string) => `${a}${id(Number(n))}`);
  const owner = (v: string | number | undefined): string | number | undefined => {
    const m = typeof v === 'string' ? /^(-?\d+):(\d+)$/.exec(v) : null;
    return m ? `${m[1]}:${id(Number(m[2]))}` : v;
  };
  // SO_PEERCRED (struct ucred: pid, uid, gid, little-endian, as hex): the pid of a task of the tree as seen inside
  const peercred = <T>(v: T): T => {
    if (typeof v !== 'string' || !/^[0-9a-f]{24}$/.test(v)) return v;
    const b = Buffer.from(v, 'hex');
    const pid = b.readInt32LE(0);
    if (!inner.has(pid)) return v;
    b.writeInt32LE(id(pid), 0);
    return b.toString('hex') as T;
  };
  // a terminal's session and foreground group (TIOCGSID, TIOCGPGRP: by their leaders' pids)
  const ttyIds = (t: Record<string, number | string>): Record<string, number | string> =>
    Object.fromEntries((['TIOCGSID', 'TIOCGPGRP'] as const).filter((k) => typeof t[k] === 'number' && (t[k] as number) > 0).map((k) => [k, id(t[k] as number)]));
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
      fds: Object.fromEntries(Object.entries(t.fds).map(([fd, p]) => [fd, {
        ...p,
        fdinfo: p.fdinfo.map(fdinfoLine),
        ...(p.sockopts?.['SO_PEERCRED'] !== undefined ? { sockopts: { ...p.sockopts, SO_PEERCRED: peercred(p.sockopts['SO_PEERCRED']) } } : {}),
        ...(p.fcntl ? { fcntl: { ...p.fcntl, ...(p.fcntl['F_GETOWN_EX'] !== undefined ? { F_GETOWN_EX: owner(p.fcntl['F_GETOWN_EX'])! } : {}) } } : {}),
        ...(p.tty ? { tty: { ...p.tty, ...ttyIds(p.tty) } } : {}),
      }])),
      ...(t.timers ? { timers: t.timers.map(timerLine) } : {}),
      shares: { files: id(t.shares.files), fs: id(t.shares.fs), vm: id(t.shares.vm), sighand: id(t.shares.sighand) },
      threads: t.threads.map((th) => ({ ...th, tid: id(th.tid), status: th.status['NSpid'] === undefined ? th.status : { ...th.status, NSpid: lastOnly(th.status['NSpid'])! } })),
    })),
    sharedPages: f.sharedPages.map((g) => g.map(member)),
    ...(f.pageDigests ? { pageDigests: Object.fromEntries(Object.entries(f.pageDigests).map(([k, v]) => [member(k), v])) } : {}),
    ...(f.namespaces ? { namespaces: { ...f.namespaces, nested: Object.fromEntries(Object.entries(f.namespaces.nested).map(([k, v]) => [String(id(Number(k))), v])), ...(f.namespaces.netBelow ? { netBelow: Object.fromEntries(Object.entries(f.namespaces.netBelow).map(([k, v]) => [String(id(Number(k))), v])) } : {}) } } : {}),
  };
}
