/**
 * Sessions and process groups whose leader is gone, and tasks in another session than their
 * parent's (orphans reparented to a subreaper or a pid namespace's init). Such trees come back
 * through helper processes, as CRIU 4.2 makes them at restore (its pstree.img holds the tasks
 * only; the helpers are worked out from it): a helper takes the gone leader's pid for the while
 * (setsid() for a session, setpgid() for a group), forks the tasks that need it and exits once
 * they have joined their session and group, its children going to their reaper as they had.
 * The dump and the restore judge a tree by these same rules (the dump refuses what the restore
 * could not make, before the tree is killed).
 */

/** A task as its session and process group see it (pids all of one view: crtools' or the images'). */
export interface GroupTask {
  pid: number;
  /** its parent's pid (one outside the tasks: the root) */
  ppid: number;
  pgid: number;
  sid: number;
  zombie?: boolean;
  /** PR_SET_CHILD_SUBREAPER */
  childSubreaper?: boolean;
}

/** A helper process of the restore. */
export interface TreeHelper {
  /** its pid: the gone leader's; 0: any free one (a session helper forked by its live leader) */
  pid: number;
  /** the task that forks it (the tasks come first in the order given, root first) */
  host: number;
  /** it makes a session (setsid: pid is the session's) */
  setsid: boolean;
  /** the tasks it forks (they are not forked by their parent, which reaps them once it exits) */
  children: number[];
  /** the task its children go to once it exits (their recorded parent); 0: none (a group's helper) */
  reaper: number;
}

export interface TreeHelpers {
  helpers: TreeHelper[];
  /**
   * tasks that forked children before they made a session of their own (setsid after fork): pid
   * → the session they were born in; such a task forks the children of that session (theirs or,
   * born in it too, the one they were born in) before its setsid, as CRIU 4.2 does
   */
  bornSid: Map<number, number>;
  /** what the restore cannot make: one line a shape */
  refused: { pid: number; why: string }[];
}

/**
 * The helpers that make `tasks` (root first, each after its parent) again.
 * - A task in another session than its parent's that does not lead it, with that session's leader
 *   above it, was forked before the tasks between made sessions of their own: each of those is
 *   born in that session (bornSid; one born in two sessions is refused).
 * - Else it is an orphan its parent
 *   reaped (a subreaper, or the root as its pid namespace's init): a helper in that session
 *   forks it and the parent's other children of the session. Gone leader: the helper takes the
 *   session's pid and is forked by that parent. Live leader (a zombie too): the helper is
 *   forked by the leader, any pid. Either way the helper's reaper (the nearest subreaper above
 *   it, else the pid namespace's init) must be that parent.
 * - A process group whose leader is gone (but the root's, led from outside under --shell-job):
 *   a helper with the group's pid, forked by its first member, which leads it until every
 *   member has joined.
 * `pidnsInit`: the root is its pid namespace's init (orphans go to it without a subreaper).
 */
export function treeHelpers(tasks: readonly GroupTask[], pidnsInit: boolean): TreeHelpers {
  const byPid = new Map(tasks.map((t) => [t.pid, t]));
  const root = tasks[0];
  const helpers: TreeHelper[] = [];
  const refused: { pid: number; why: string }[] = [];
  const bornSid = new Map<number, number>();
  if (!root) return { helpers, refused, bornSid };
  /** where the orphans of a helper whose parent is `from` go: the nearest live subreaper from there up, else the init */
  const reaperFrom = (from: GroupTask | undefined): number | undefined => {
    for (let p = from; p; p = byPid.get(p.ppid)) if (p.childSubreaper && !p.zombie) return p.pid;
    return pidnsInit ? root.pid : undefined;
  };
  const sessionHelpers = new Map<string, TreeHelper>();
  const helped = new Map<number, TreeHelper>();
  for (const t of tasks) {
    const p = byPid.get(t.ppid);
    if (!p || t.sid === t.pid || t.sid === p.sid) continue;
    const key = `${p.pid}:${t.sid}`;
    let h = sessionHelpers.get(key);
    if (!h) {
      const why = (w: string) => refused.push({ pid: t.pid, why: `task ${t.pid} is in session ${t.sid}, not in its parent ${p.pid}'s (${p.sid}) nor a session of its own: ${w}` });
      // forked before the tasks up to its session's leader made sessions of their own
      let a: GroupTask | undefined = p;
      while (a && a.pid !== t.sid) a = byPid.get(a.ppid);
      if (a) {
        for (let b: GroupTask | undefined = p; b && b.pid !== t.sid; b = byPid.get(b.ppid)) {
          const was = bornSid.get(b.pid);
          if (was !== undefined && was !== t.sid) {
            why(`task ${b.pid} would have been born in sessions ${was} and ${t.sid}`);
            break;
          }
          bornSid.set(b.pid, t.sid);
        }
        continue;
      }
      const leader = byPid.get(t.sid);
      if (p.zombie) {
        why('its parent is a zombie');
        continue;
      }
      if (leader && leader.sid !== t.sid) {
        why(`task ${t.sid} is not that session's leader`);
        continue;
      }
      // (the helper's host sets its own subreaper flag only once its helpers are gone; the
      // reaper sets its flag before it forks)
      const host = leader ? leader.pid : p.pid;
      const reaper = leader ? reaperFrom(byPid.get(leader.ppid)) : reaperFrom(p);
      if (reaper !== p.pid) {
        why(`a helper process of the session would leave it to ${reaper ?? 'a process outside the tree'}, not to ${p.pid} (${p.pid} is not the nearest subreaper${pidnsInit ? ' or the init' : ''})`);
        continue;
      }
      if (!leader && [...sessionHelpers.values()].some((o) => o.pid === t.sid)) {
        why(`session ${t.sid}, whose leader is gone, has orphans of more than one parent`);
        continue;
      }
      h = { pid: leader ? 0 : t.sid, host, setsid: !leader, children: [], reaper: p.pid };
      sessionHelpers.set(key, h);
      helpers.push(h);
    }
    h.children.push(t.pid);
    helped.set(t.pid, h);
  }
  const groups = new Map<number, GroupTask[]>();
  for (const t of tasks) if (t.pgid > 0 && !byPid.has(t.pgid)) groups.set(t.pgid, [...(groups.get(t.pgid) ?? []), t]);
  for (const [pgid, members] of groups) {
    // the root's group, led from outside (--shell-job makes it criu's own)
    if (members.some((m) => !byPid.has(m.ppid))) continue;
    // a session helper of that pid leads it already
    if (helpers.some((h) => h.setsid && h.pid === pgid)) continue;
    helpers.push({ pid: pgid, host: members[0]!.pid, setsid: false, children: [], reaper: 0 });
  }
  return { helpers, refused, bornSid };
}
