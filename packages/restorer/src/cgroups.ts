/**
 * The tasks' cgroups put back from cgroup.img, by criu.8's --manage-cgroups modes:
 *  - ignore: nothing (the tasks stay in the restorer's cgroups);
 *  - soft (CRIU's default mode): a dumped directory that is missing is made with its mode, owner
 *    and properties; one that exists keeps its properties;
 *  - full: as soft, and an existing directory gets the dumped properties too;
 *  - strict: as full, but an existing directory fails the restore;
 *  - none / props: every directory must exist (none: nothing of it is changed; props: its
 *    properties and mode are set).
 * Below a top directory that is a hierarchy's root ('' in the image: a task of the dump was in
 * it, and CRIU's image then holds the whole hierarchy, other trees' directories too) only the
 * directories a task of the checkpoint is in, and those above them, are looked at; below any
 * other top directory every dumped one is (empty directories too, as CRIU makes them).
 * --cgroup-root [CTRL:]PATH puts a controller's dumped directories (all controllers': no CTRL)
 * at PATH of its hierarchy. Each task goes into its css set's directories (a task in its
 * parent's set, or in the set of the dump's criu, stays where it is born), through the
 * hierarchies' mounts of a cgroup yard (@crtools/sys CgroupYard: mounts no namespace shows,
 * or --cgroup-yard's), made on first use; a hierarchy need not be mounted anywhere (a named v1
 * hierarchy that no longer exists is made by mounting it, as CRIU does). A tree dumped in a
 * cgroup namespace of its own (cgns_prefix) has it made again by its root at the namespace's
 * root (moveToNamespaceRoot), before it moves into its set. What a failed restore made is
 * removed; release() lets the yard go.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { CrtoolsError, ExitCode, silentLogger, type CgroupMode, type CriuOptions, type Logger } from '@crtools/common';
import { CgroupYard } from '@crtools/sys';
import type { CgroupDirPlan, CgroupsPlan } from './plan.js';

/** The mode a restore runs with: the one asked, else soft (CRIU's default). */
export function cgroupMode(o: Pick<CriuOptions, 'manage_cgroups' | 'manage_cgroups_mode'>): CgroupMode {
  // as CRIU: soft unless a mode is named, --manage-cgroups given or not (a tree dumped in cgroups
  // of its own comes back in them, not silently in the restorer's)
  return o.manage_cgroups_mode ?? 'soft';
}

function cgError(msg: string, path?: string, cause?: unknown): CrtoolsError {
  return new CrtoolsError('RESTORE_CGROUP', msg, { exitCode: ExitCode.FAILED, ...(path ? { context: { path } } : {}), ...(cause ? { cause } : {}) });
}

/** Properties a restore never writes: membership (tasks move themselves), and the freezer's state. */
const NOT_WRITTEN = new Set(['cgroup.procs', 'tasks', 'cgroup.threads', 'freezer.state', 'cgroup.freeze', 'cgroup.events', 'cgroup.controllers']);
/** Written first: a cpuset takes no task (nor children) before it has CPUs and memory nodes. */
const FIRST = ['cpuset.cpus', 'cpuset.mems'];

/** A set member's hierarchy (its controllers joined by ',', as /proc/PID/cgroup names it) is the controller entry's. */
function inHierarchy(name: string, cnames: readonly string[]): boolean {
  const names = name.split(',');
  return names.length === cnames.length && names.every((n) => cnames.includes(n));
}

/** The cgroups of a restore, made; moveTask puts a task in its set; undo removes what was made. */
export interface MadeCgroups {
  mode: CgroupMode;
  /** a task (its pid here) into the directories of css set `set` (undefined: none recorded, left) */
  moveTask(pid: number, set: number | undefined): void;
  /** a thread (its tid here) into the directories of css set `set` where they are not those of its process's set */
  moveThread(tid: number, set: number, processSet: number | undefined): void;
  /** the set a task is born in when its parent's is `parentSet` (the root: the set of the dump's criu) */
  inherits(set: number | undefined, parentSet: number | undefined): boolean;
  /**
   * The tree's cgroup namespace: when css set `set` records one (cgns_prefix), the root task
   * (pid here) is moved to that namespace's root in every hierarchy (a hierarchy's own root
   * where the set records none) and true is returned: the root then makes its namespace there,
   * and moveTask puts it in its set after. False: no namespace of its own, nothing moved.
   */
  moveToNamespaceRoot(pid: number, set: number | undefined): boolean;
  undo(): void;
  /** the yard's mounts let go (after undo, on every path) */
  release(): void;
}

const NOTHING: MadeCgroups = { mode: 'ignore', moveTask: () => undefined, moveThread: () => undefined, inherits: () => true, moveToNamespaceRoot: () => false, undo: () => undefined, release: () => undefined };

export interface CgroupsRestoreOptions {
  /** --cgroup-root [CTRL:]PATH */
  roots?: readonly { ctrl?: string; path: string }[];
  /** --cgroup-yard PATH */
  yard?: string;
}

/** Make the dumped cgroups as `mode` says, their places rewritten by cgRoot. */
export function prepareCgroups(plan: CgroupsPlan | undefined, mode: CgroupMode, opts: CgroupsRestoreOptions = {}, log: Logger = silentLogger): MadeCgroups {
  if (!plan || mode === 'ignore') {
    if (plan?.sets.some((s) => s.ctls.some((c) => c.cgnsPrefix !== undefined))) log.warn('cgroups: the tree\'s cgroup namespace is not made again (--manage-cgroups=ignore)');
    return { ...NOTHING, mode };
  }
  const cgRoot = opts.roots ?? [];
  const yard = new CgroupYard({ ...(opts.yard ? { yard: opts.yard } : {}), log: (l) => log.info(l) });
  const sets = plan.sets.map((s) => ({ ...s, ctls: s.ctls.map((c) => ({ ...c })) }));
  const controllers = plan.controllers.map((c) => {
    // (mounted when first used: a hierarchy no task of the checkpoint is in below its root stays unmounted)
    const mnt = () => yard.dirOf(c.cnames.join(','));
    // --cgroup-root: the controller's top directories go to the new root, and so do the sets' paths below them
    const newRoot = (cgRoot.find((r) => r.ctrl !== undefined && c.cnames.includes(r.ctrl)) ?? cgRoot.find((r) => r.ctrl === undefined))?.path;
    const dirs = c.dirs.map((d) => {
      if (newRoot === undefined) return { ...d, top: d.name };
      const to = newRoot.replace(/^\/+/, '').replace(/\/+$/, '');
      log.info(`cgroups: ${c.cnames.join(',')}: ${d.name} rewritten to /${to}`);
      for (const s of sets) {
        for (const ctl of s.ctls) {
          if (!inHierarchy(ctl.name, c.cnames)) continue;
          const old = d.name ? `/${d.name}` : '';
          if (ctl.path === (old || '/') || ctl.path.startsWith(`${old}/`)) {
            const was = ctl.path;
            ctl.path = `/${to}${ctl.path === '/' ? '' : ctl.path.slice(old.length)}`;
            // the namespace's root moves with the directories (it is at or below the top one)
            if (ctl.cgnsPrefix !== undefined) {
              if (ctl.cgnsPrefix < old.length) throw cgError(`cgroups: --cgroup-root ${c.cnames.join(',')}: the tree's cgroup namespace is rooted at ${was.slice(0, ctl.cgnsPrefix) || '/'}, above the dumped directory /${d.name} that moves: not supported`);
              ctl.cgnsPrefix = Math.max(1, ctl.cgnsPrefix + ctl.path.length - was.length);
            }
          }
        }
      }
      return { ...d, name: to, top: d.name };
    });
    return { cnames: c.cnames, mnt, dirs };
  });

  const made: string[] = [];
  const undo = () => {
    for (const d of made.splice(0).reverse()) {
      // (a task killed a moment ago may still hold it: a few tries)
      for (let i = 0; i < 50; i++) {
        try {
          rmdirSync(d);
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EBUSY') break;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
        }
      }
    }
  };
  const writeProps = (path: string, props: CgroupDirPlan['props']) => {
    const ordered = [...props.filter((p) => FIRST.includes(p.name)), ...props.filter((p) => !FIRST.includes(p.name))];
    for (const p of ordered) {
      const file = `${path}/${p.name}`;
      // each property file's mode and owner, as CRIU sets them (the membership files' too; not the
      // freezer's state, put back by the freezer, nor devices.list, which is written through others)
      if (p.perms && p.name !== 'freezer.state' && p.name !== 'devices.list') {
        try {
          perms(file, p);
        } catch (e) {
          throw cgError(`cgroups: cannot set the mode and owner of ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, file, e);
        }
      }
      if (NOT_WRITTEN.has(p.name) || p.value === '') continue;
      try {
        if (p.name === 'net_prio.ifpriomap') {
          // one interface a write (the kernel takes the first line only); those of priority 0
          // are as a new cgroup has them; an interface this host lacks is left out (as CRIU)
          for (const line of p.value.split('\n').filter((l) => / [1-9]\d*\s*$/.test(l))) {
            try {
              writeFileSync(file, line);
            } catch (e) {
              log.warn(`cgroups: ${file}: "${line}" not taken: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
            }
          }
        } else if (p.name === 'cgroup.type') {
          // (a v2 directory is a domain when made; only threaded can be asked)
          if (p.value === 'threaded') writeFileSync(file, p.value);
        } else if (p.name === 'cgroup.subtree_control') {
          // the controllers enabled for the children, each asked with '+'
          for (const c of p.value.split(/\s+/).filter(Boolean)) writeFileSync(file, `+${c}`);
        } else if (p.name === 'devices.list') {
          // the whitelist: everything denied, then each rule allowed again
          writeFileSync(`${path}/devices.deny`, 'a');
          for (const rule of p.value.split('\n').filter(Boolean)) writeFileSync(`${path}/devices.allow`, rule);
        } else {
          writeFileSync(file, p.value);
        }
      } catch (e) {
        throw cgError(`cgroups: cannot set ${file} to "${p.value}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, file, e);
      }
    }
  };
  const perms = (path: string, d: { perms?: CgroupDirPlan['perms'] }) => {
    if (!d.perms) return;
    chownSync(path, d.perms.uid, d.perms.gid);
    chmodSync(path, d.perms.mode & 0o7777);
  };
  const prepare = (parent: string, rel: string, d: CgroupDirPlan, used: readonly string[] | undefined) => {
    const path = d.name ? `${parent}/${d.name}` : parent;
    const r = d.name ? (rel ? `${rel}/${d.name}` : d.name) : rel;
    // (below a hierarchy's root: a directory no task of the checkpoint is in, nor below)
    if (r && used && !used.some((u) => u === r || u.startsWith(`${r}/`))) return;
    if (!r) {
      // the hierarchy's root: the restorer's host's, never changed
    } else if (existsSync(path)) {
      if (mode === 'strict') throw cgError(`cgroups: ${path} exists already (--manage-cgroups=strict)`, path);
      log.info(`cgroups: ${path} exists${mode === 'soft' || mode === 'none' ? ', its properties left' : ''}`);
      if (mode !== 'none') perms(path, d);
      if (mode === 'full' || mode === 'props') writeProps(path, d.props);
    } else {
      if (mode === 'none' || mode === 'props') throw cgError(`cgroups: ${path} does not exist (--manage-cgroups=${mode} makes none)`, path);
      // every missing level is made (and removed again on failure)
      const levels: string[] = [];
      for (let p = path; !existsSync(p); p = p.slice(0, p.lastIndexOf('/'))) levels.unshift(p);
      for (const l of levels) {
        mkdirSync(l);
        made.push(l);
      }
      log.info(`cgroups: ${path} made`);
      perms(path, d);
      writeProps(path, d.props);
    }
    for (const c of d.children) prepare(path, r, c, used);
  };
  try {
    for (const c of controllers) {
      const used = sets.flatMap((s) => s.ctls.filter((x) => inHierarchy(x.name, c.cnames)).map((x) => x.path.replace(/^\/+/, '')));
      for (const d of c.dirs) {
        // the hierarchy's root: only what the sets use (none: the hierarchy is not even mounted)
        if (!d.top) {
          // (moved by --cgroup-root: a new directory, not the root; of the root's properties, the
          // kernel's own (a root cpuset is exclusive, …), it gets only what lets it take tasks:
          // cpuset's CPUs and memory nodes; its mode and owner its parent's)
          const { perms: _rootPerms, ...root } = d;
          const copy = d.name ? { ...root, props: d.props.filter((p) => FIRST.includes(p.name)) } : d;
          if (used.length) prepare(c.mnt(), '', copy, used);
        } else {
          prepare(c.mnt(), '', d, undefined);
        }
      }
    }
  } catch (e) {
    undo();
    yard.close();
    throw e;
  }

  const setById = new Map(sets.map((s) => [s.id, s]));
  type Member = (typeof sets)[number]['ctls'][number];
  const ownDir = (ctl: Member) => (ctl.path === '/' ? '' : ctl.path);
  // `id` written into the membership file `file` of directory `dir` of each member's hierarchy (`what`: said on failure)
  const enter = (set: number, ctls: readonly Member[], id: number, dir: (ctl: Member) => string, file: (ctl: Member) => string, what: string) => {
    for (const ctl of ctls) {
      const c = controllers.find((x) => inHierarchy(ctl.name, x.cnames));
      if (!c) throw cgError(`cgroups: css set ${set} names controller ${ctl.name || 'v2'}, which cgroup.img does not describe`);
      const f = `${c.mnt()}${dir(ctl)}/${file(ctl)}`;
      try {
        writeFileSync(f, String(id));
      } catch (e) {
        throw cgError(`cgroups: cannot move ${what} ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, f, e);
      }
    }
  };
  return {
    mode,
    inherits: (set, parentSet) => set === undefined || set === parentSet,
    moveToNamespaceRoot(pid, set) {
      const s = set === undefined ? undefined : setById.get(set);
      if (!s || !s.ctls.some((c) => c.cgnsPrefix !== undefined)) return false;
      enter(set!, s.ctls, pid, (ctl) => (ctl.cgnsPrefix === undefined ? '' : ctl.path.slice(0, ctl.cgnsPrefix).replace(/\/+$/, '')), () => 'cgroup.procs', `pid ${pid} to the root of its cgroup namespace,`);
      log.info(`cgroups: pid ${pid} at the root of its cgroup namespace (css set ${set}): ${s.ctls.map((c) => `${c.name || 'unified'}:${c.cgnsPrefix === undefined ? '/' : c.path.slice(0, c.cgnsPrefix)}`).join(' ')}`);
      return true;
    },
    moveTask(pid, set) {
      if (set === undefined) return;
      const s = setById.get(set);
      if (!s) throw cgError(`cgroups: css set ${set} is not in cgroup.img`);
      enter(set, s.ctls, pid, ownDir, () => 'cgroup.procs', `pid ${pid} into`);
      log.info(`cgroups: pid ${pid} moved into css set ${set}`);
    },
    moveThread(tid, set, processSet) {
      const s = setById.get(set);
      if (!s) throw cgError(`cgroups: css set ${set} is not in cgroup.img`);
      const own = processSet === undefined ? undefined : setById.get(processSet);
      // (v1: the thread's own membership file; v2: a threaded cgroup's)
      const ctls = s.ctls.filter((ctl) => !own?.ctls.some((x) => x.name === ctl.name && x.path === ctl.path));
      enter(set, ctls, tid, ownDir, (ctl) => (ctl.name === '' ? 'cgroup.threads' : 'tasks'), `thread ${tid} into`);
      log.info(`cgroups: thread ${tid} moved into css set ${set}`);
    },
    undo,
    release() {
      // (what was made is the tree's now: a later undo leaves it)
      made.splice(0);
      yard.close();
    },
  };
}
