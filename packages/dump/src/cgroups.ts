/**
 * The cgroups of a dumped tree, as CRIU 4.2 records them in cgroup.img. Every thread's
 * memberships (/proc/PID/task/TID/cgroup: one line per hierarchy, v1 controllers and the v2
 * unified one, named '') make a css set; criu's own set is set 1 (inventory's root_cg_set: a
 * task in it stays where the restore puts it), each other set gets the next id and is named by
 * thread_core.cg_set. When every task is in criu's set there is no cgroup.img (as CRIU). In
 * every --manage-cgroups mode but ignore (CRIU's default is soft, the option given or not) each
 * hierarchy's directories from the set's path down are written with the properties CRIU saves (its built-in list per controller, then the global
 * ones of v1 or v2), their values and owners; with --freeze-cgroup on a v1 freezer, its state
 * before the dump. The hierarchies are read through mounts of crtools's own that no namespace
 * shows (a cgroup yard, @crtools/sys CgroupYard; --cgroup-yard: the one given), made when the
 * first directory is read and let go by close(): a hierarchy need not be mounted anywhere (a
 * named v1 one made and unmounted again). --cgroup-root [CTRL:]PATH walks a hierarchy's
 * directories from PATH instead of from the set's own (directories with no task kept, as CRIU).
 */
import { existsSync, readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { CrtoolsError, ExitCode, type CgroupMode, type CriuLog } from '@crtools/common';
import { writeImageFile, type Entry } from '@crtools/images';
import { parseCgroup, readCgroup, readProcText } from '@crtools/procfs';
import { CgroupYard, namespaceFiles } from '@crtools/sys';
import { BUILTIN_PROPS } from './cgroup-props.js';

/**
 * A task's membership in one hierarchy: its controllers joined by ',' ('' for v2) and its path
 * there; in a tree whose root lives in a cgroup namespace of its own, the length of the part of
 * the path above that namespace's root (CRIU's cgns_prefix: '/a' of '/a/b' for a namespace
 * rooted at /a).
 */
export interface CgMember {
  name: string;
  path: string;
  cgnsPrefix?: number;
}

/** saved in every v1 directory */
const GLOBAL_V1 = ['cgroup.clone_children', 'notify_on_release', 'cgroup.procs', 'tasks'];
/** saved in every v2 directory */
const GLOBAL_V2 = ['cgroup.subtree_control', 'cgroup.max.descendants', 'cgroup.max.depth', 'cgroup.freeze', 'cgroup.type'];

/** LLONG_MAX: a value that reads as it (or more) is saved as -1, as CRIU does */
const LLONG_MAX = (1n << 63n) - 1n;

/** The memberships of a thread, sorted by name as CRIU keeps them. */
export function membersOf(pid: number, tid = pid): CgMember[] {
  return membersIn(readCgroup({ pid, tid }));
}

function membersIn(entries: ReturnType<typeof readCgroup>): CgMember[] {
  return entries
    .map((e) => ({ name: e.hierarchy === 0 && e.controllers.length === 0 ? '' : e.controllers.join(','), path: e.path }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The cgns_prefix of each hierarchy for a task whose path is `outer` as criu sees it and
 * `inner` inside its cgroup namespace: the part of `outer` above the namespace's root (its
 * length; the whole path when the task sits at that root). Undefined when both are the same
 * (the namespace's root is the hierarchy's). Null: `inner` is not below the namespace's root
 * ('/..': the task left it), which no restore can make again.
 */
export function cgnsPrefix(outer: string, inner: string): number | undefined | null {
  if (outer === inner) return undefined;
  if (inner === '/..' || inner.startsWith('/../')) return null;
  if (inner === '/') return outer.length;
  if (!outer.endsWith(inner)) return null;
  const at = outer.length - inner.length;
  return at > 0 ? at : null;
}

const sameSet = (a: readonly CgMember[], b: readonly CgMember[]) =>
  a.length === b.length && a.every((m, i) => m.name === b[i]!.name && m.path === b[i]!.path && m.cgnsPrefix === b[i]!.cgnsPrefix);

interface Dir {
  /** path in the hierarchy ('/a/b') */
  path: string;
  perms: Entry;
  properties: Entry[];
  children: Dir[];
}

interface Controller {
  name: string;
  /** heads: directories with no parent among the collected ones */
  dirs: Dir[];
  threaded: boolean;
}

const permsOf = (st: Stats): Entry => ({ mode: st.mode, uid: st.uid, gid: st.gid });

/** A property's value as CRIU saves it: cgroup.procs and tasks empty, a trailing newline dropped, LLONG_MAX as -1, oom_control's oom_kill_disable. */
export function propertyValue(name: string, text: string): string {
  if (name === 'cgroup.procs' || name === 'tasks') return '';
  let v = text.slice(0, 1023);
  const n = /^\s*[+-]?\d+/.exec(v);
  if (n && BigInt(n[0].trim()) >= LLONG_MAX) v = '-1';
  if (v.endsWith('\n')) v = v.slice(0, -1);
  if (name === 'memory.oom_control') {
    const m = /^oom_kill_disable (\d+)/.exec(v);
    if (!m) throw new CrtoolsError('DUMP_FAILED', `cgroup property memory.oom_control: no oom_kill_disable in ${JSON.stringify(v)}`, { exitCode: ExitCode.FAILED });
    v = m[1]!;
  }
  return v;
}

export interface CgroupsOptions {
  /** --manage-cgroups=MODE (RPC manage_cgroups false: ignore); CRIU's default: soft */
  mode?: CgroupMode;
  /** --freeze-cgroup: the freezer cgroup's directory */
  freezeCgroup?: string;
  /** --cgroup-yard: a directory with one mount per hierarchy (else crtools mounts them where nothing sees them) */
  yard?: string;
  /** --cgroup-root [CTRL:]PATH: where a hierarchy's (CTRL's, else every one's) directories are walked from */
  roots?: readonly { ctrl?: string; path: string }[];
  /** the properties saved per controller (cgroup-props.ts: CRIU's built-in lists, as --cgroup-props* change them) */
  props?: Readonly<Record<string, readonly string[]>>;
  /** --cgroup-dump-controller: only the directories of hierarchies with one of these controllers (names as /proc/PID/cgroup's, name=X for a named one) */
  dumpControllers?: readonly string[];
}

/** The css sets of a dump and, managed, the directories of their hierarchies. */
export class Cgroups {
  private readonly sets: { id: number; ctls: CgMember[] }[] = [];
  private readonly controllers: Controller[] = [];
  private readonly yard: CgroupYard;
  /** the freezer's state before the dump (--freeze-cgroup on a v1 freezer) */
  private freezerState?: { value: string; perms: Entry };

  constructor(private readonly opts: CgroupsOptions, private readonly log: CriuLog) {
    this.yard = new CgroupYard({ ...(opts.yard ? { yard: opts.yard } : {}), log: (l) => log.info(`cg: ${l}`) });
    const mine = membersOf(process.pid);
    this.sets.push({ id: 1, ctls: mine });
    // every hierarchy criu is in: v1 controllers in /proc/self/cgroup's order, the named ones after
    const order = readCgroup(process.pid).map((e) => (e.hierarchy === 0 && e.controllers.length === 0 ? '' : e.controllers.join(',')));
    for (const name of [...order.filter((n) => !n.startsWith('name=')), ...order.filter((n) => n.startsWith('name='))]) {
      this.controllers.push({ name, dirs: [], threaded: false });
    }
  }

  /** a mode that saves directories: every mode but ignore; CRIU's default is soft (without --manage-cgroups too) */
  private get managed(): boolean {
    return (this.opts.mode ?? 'soft') !== 'ignore';
  }

  /** each hierarchy's cgns_prefix of the tree's cgroup namespace (set by namespaceOf) */
  private readonly prefixes = new Map<string, number>();

  /**
   * The root of the tree lives in a cgroup namespace of its own: where that namespace's root is
   * in each hierarchy, from the root's paths as criu sees them and as a thread of criu's that
   * joins the namespace sees them. Every task of the tree lives in that namespace (another is
   * refused as nested), so each set's members get the same prefixes (as CRIU's).
   */
  namespaceOf(rootPid: number): void {
    this.byText.clear();
    const outer = membersOf(rootPid);
    const [text] = namespaceFiles(rootPid, 'cgroup', { reads: [`/proc/${rootPid}/cgroup`] });
    const inner = membersIn(parseCgroup(text ?? '', { path: `/proc/${rootPid}/cgroup` }));
    for (const o of outer) {
      const i = inner.find((x) => x.name === o.name);
      if (!i) continue;
      const p = cgnsPrefix(o.path, i.path);
      if (p === null) {
        throw new CrtoolsError('UNSUPPORTED_CGROUP', `task ${rootPid} is in ${o.name || 'unified'}:${o.path}, which is not below the root of its cgroup namespace (it sees ${i.path}): not supported (as CRIU)`, {
          context: { pid: rootPid, controller: o.name }, exitCode: ExitCode.UNSUPPORTED,
        });
      }
      if (p !== undefined) this.prefixes.set(o.name, p);
    }
    this.log.info(`cg: the tree's cgroup namespace is rooted at ${[...this.prefixes].map(([n, p]) => `${n || 'unified'}:${outer.find((o) => o.name === n)!.path.slice(0, p) || '/'}`).join(' ') || 'the hierarchies\' roots'}`);
  }

  /**
   * The css set ids found so far by the text of a thread's /proc cgroup file: the threads of a
   * process mostly share one, whose text is then parsed and compared once.
   */
  private readonly byText = new Map<string, number>();

  /** The id of the css set thread `tid` of task `pid` is in (new sets' directories collected when managed). */
  setOf(pid: number, tid = pid): number {
    const { path: file, text } = readProcText({ pid, tid }, 'cgroup');
    const seen = this.byText.get(text);
    if (seen !== undefined) return seen;
    const ctls = membersIn(parseCgroup(text, { path: file })).map((c) => {
      const p = this.prefixes.get(c.name);
      if (p === undefined) return c;
      if (c.path.length < p) {
        throw new CrtoolsError('UNSUPPORTED_CGROUP', `thread ${tid} of task ${pid} is in ${c.name || 'unified'}:${c.path}, above the root of the tree's cgroup namespace: not supported (as CRIU)`, {
          context: { pid, tid, controller: c.name }, exitCode: ExitCode.UNSUPPORTED,
        });
      }
      return { ...c, cgnsPrefix: p };
    });
    let id = this.sets.find((s) => sameSet(s.ctls, ctls))?.id;
    if (id === undefined) {
      id = this.sets.length + 1;
      this.sets.push({ id, ctls });
      this.log.info(`cg: thread ${tid} of task ${pid} is in a css set of its own (${id}): ${ctls.map((c) => `${c.name || 'unified'}:${c.path}`).join(' ')}`);
      if (this.managed) for (const c of ctls) this.collect(c);
    }
    this.byText.set(text, id);
    return id;
  }

  /** Where criu reaches hierarchy `name`'s directory `p` (through the yard). */
  private where(name: string, p: string): string {
    return path.join(this.yard.dirOf(name), p);
  }

  /** The mounts of the yard let go (every path, success or not). */
  close(): void {
    this.yard.close();
  }

  /** A set member's directory and every one below it, with their properties. */
  private collect(c: CgMember): void {
    const only = this.opts.dumpControllers ?? [];
    if (only.length && !c.name.split(',').some((n) => only.includes(n))) {
      this.log.info(`cg: ${c.name || 'unified'}: directories not dumped (--cgroup-dump-controller)`);
      return;
    }
    const ctl = this.controllers.find((x) => x.name === c.name);
    if (!ctl) {
      throw new CrtoolsError('UNSUPPORTED_CGROUP', `cgroup hierarchy ${c.name || 'v2 (unified)'} of the tree is not one criu is in`, { context: { controller: c.name }, exitCode: ExitCode.UNSUPPORTED });
    }
    const walk = (p: string, top: string) => {
      const fsPath = this.where(c.name, p);
      try {
        this.addDir(ctl, p, fsPath);
        for (const d of readdirSync(fsPath, { withFileTypes: true })) if (d.isDirectory()) walk(p === '/' ? `/${d.name}` : `${p}/${d.name}`, top);
      } catch (e) {
        // a directory below the tasks' removed meanwhile (not theirs: they are frozen in theirs)
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || p === top) throw e;
        this.log.info(`cg: ${c.name || 'unified'}:${p} went away while read`);
      }
    };
    // --cgroup-root: the walk starts there (the set's own directory still, if not below it)
    const roots = this.opts.roots ?? [];
    const root = (roots.find((r) => r.ctrl !== undefined && (r.ctrl === c.name || c.name.split(',').includes(r.ctrl))) ?? roots.find((r) => r.ctrl === undefined))?.path.replace(/(.)\/+$/, '$1');
    if (root !== undefined && root !== c.path) {
      this.log.info(`cg: ${c.name || 'unified'}: walked from ${root} (--cgroup-root)`);
      try {
        walk(root, root);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        throw new CrtoolsError('BAD_OPTIONS', `--cgroup-root ${c.name}:${root}: no such cgroup`, { context: { option: 'cgroup_root', controller: c.name, path: root }, exitCode: ExitCode.USAGE });
      }
      if (root === '/' || c.path.startsWith(`${root}/`)) return;
    }
    walk(c.path, c.path);
  }

  private addDir(ctl: Controller, p: string, fsPath: string): void {
    // already there (co-mounted, another set's): nothing; below one: its child; else a head
    let parent: Dir | undefined;
    let list = ctl.dirs;
    for (;;) {
      const under = list.find((d) => d.path === p || d.path === '/' || p.startsWith(`${d.path}/`));
      if (!under) break;
      if (under.path === p) return;
      parent = under;
      list = under.children;
    }
    const dir: Dir = { path: p, perms: permsOf(statSync(fsPath)), properties: [], children: [] };
    const props = this.opts.props ?? BUILTIN_PROPS;
    const names = [...ctl.name.split(',').flatMap((n) => props[n] ?? []), ...(ctl.name === '' ? GLOBAL_V2 : GLOBAL_V1)];
    for (const n of names) {
      const f = path.join(fsPath, n);
      let st: Stats;
      try {
        st = statSync(f);
      } catch {
        continue; // a property this kernel does not have
      }
      const value = propertyValue(n, readFileSync(f, 'utf8'));
      if (n === 'tasks' || (n === 'cgroup.type' && value === 'threaded')) ctl.threaded = true;
      dir.properties.push({ name: n, value, perms: permsOf(st) });
    }
    (parent ? parent.children : ctl.dirs).push(dir);
  }

  /**
   * --freeze-cgroup, before the tree is touched: the freezer's state, kept (v1) as CRIU keeps it.
   * A cgroup frozen already (a paused container) is refused: the tree is stopped by ptrace, as
   * always, and the freezer is left as it is.
   */
  checkFreezer(): void {
    const dir = this.opts.freezeCgroup;
    if (!dir) return;
    const v1 = path.join(dir, 'freezer.state');
    let state: string;
    let perms: Entry | undefined;
    if (existsSync(v1)) {
      state = readFileSync(v1, 'utf8').trim();
      perms = permsOf(statSync(v1));
    } else if (existsSync(path.join(dir, 'cgroup.freeze'))) {
      state = readFileSync(path.join(dir, 'cgroup.freeze'), 'utf8').trim() === '0' ? 'THAWED' : 'FROZEN';
    } else {
      throw new CrtoolsError('BAD_OPTIONS', `--freeze-cgroup ${dir}: neither a v1 freezer (freezer.state) nor a v2 cgroup (cgroup.freeze)`, { context: { option: 'freeze_cgroup', path: dir }, exitCode: ExitCode.USAGE });
    }
    if (state !== 'THAWED') {
      throw new CrtoolsError('UNSUPPORTED_CGROUP', `--freeze-cgroup ${dir}: the cgroup is ${state} already (a paused container), which is not supported by crtools yet (crtools issue 17)`, { context: { option: 'freeze_cgroup', path: dir }, exitCode: ExitCode.UNSUPPORTED });
    }
    if (perms) this.freezerState = { value: state, perms };
  }

  /** --freeze-cgroup, the tree frozen: its cgroup holds the tree's tasks and no other (CRIU would dump those). */
  checkFreezerTasks(treeTids: ReadonlySet<number>): void {
    const dir = this.opts.freezeCgroup;
    if (!dir) return;
    const file = existsSync(path.join(dir, 'tasks')) ? 'tasks' : 'cgroup.threads';
    const stray = readFileSync(path.join(dir, file), 'utf8').split('\n').filter(Boolean).map(Number).filter((t) => !treeTids.has(t));
    if (stray.length) {
      throw new CrtoolsError('UNSUPPORTED_CGROUP', `--freeze-cgroup ${dir}: task${stray.length > 1 ? 's' : ''} ${stray.join(', ')} in the cgroup ${stray.length > 1 ? 'are' : 'is'} not of the dumped tree`, { context: { option: 'freeze_cgroup', path: dir }, exitCode: ExitCode.UNSUPPORTED });
    }
  }

  /** cgroup.img, unless every task is in criu's set (then nothing, as CRIU). */
  async write(dir: string): Promise<string | undefined> {
    if (this.sets.length === 1) {
      this.log.info('cg: all tasks in criu\'s cgroups, nothing to dump');
      return undefined;
    }
    const sets = this.sets.slice(1).map((s) => ({ id: s.id, ctls: s.ctls.map((c) => ({ name: c.name, path: c.path, ...(c.cgnsPrefix ? { cgns_prefix: c.cgnsPrefix } : {}) })) }));
    const dirEntry = (d: Dir, parentPath?: string): Entry => ({
      dir_name: parentPath === undefined ? d.path.replace(/^\//, '') : d.path.slice(parentPath === '/' ? 1 : parentPath.length + 1),
      children: d.children.map((c) => dirEntry(c, d.path)),
      properties: d.properties,
      dir_perms: d.perms,
    });
    const controllers = this.controllers.map((c) => {
      const dirs = c.dirs.map((d) => dirEntry(d));
      if (c.name === 'freezer' && this.freezerState && dirs[0]) (dirs[0]['properties'] as Entry[]).push({ name: 'freezer.state', ...this.freezerState });
      return { cnames: c.name.split(','), dirs, is_threaded: c.threaded };
    });
    await writeImageFile(path.join(dir, 'cgroup.img'), { magic: 'CGROUP', entries: [{ sets, controllers }] });
    return 'cgroup.img';
  }
}
