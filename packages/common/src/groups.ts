/**
 * Process groups whose leader is gone: exited and reaped, the group living on in its members.
 * No task of a checkpoint has the leader's pid, so the restore makes the group again with a
 * helper process that takes that pid for the while, forked by the members' parent before them.
 * The dump and the restore judge such groups by the same rules (the dump refuses what the
 * restore could not make, before the tree is killed).
 */

/** A task as its process group sees it (pids all of one view: crtools' or the images'). */
export interface GroupTask {
  pid: number;
  /** its parent's pid (one outside the tasks: the root) */
  ppid: number;
  pgid: number;
  sid: number;
  zombie?: boolean;
}

export interface LeaderlessGroup {
  pgid: number;
  members: number[];
  /** the members' parent, which forks the helper */
  parent: number;
  /** why the restore cannot make it again (undefined: it can) */
  why?: string;
}

/**
 * Every leaderless group of `tasks`: one is made again when all its members are children of one
 * task, in that task's session, that task alive and making no other such group. The root's group
 * (a member whose parent is outside) is not one of these: it is led from outside, which
 * --shell-job makes criu's own.
 */
export function leaderlessGroups(tasks: readonly GroupTask[]): LeaderlessGroup[] {
  const byPid = new Map(tasks.map((t) => [t.pid, t]));
  const groups = new Map<number, GroupTask[]>();
  for (const t of tasks) if (t.pgid > 0 && !byPid.has(t.pgid)) groups.set(t.pgid, [...(groups.get(t.pgid) ?? []), t]);
  const helping = new Map<number, number>();
  const out: LeaderlessGroup[] = [];
  for (const [pgid, members] of groups) {
    if (members.some((m) => !byPid.has(m.ppid))) continue;
    const parent = members[0]!.ppid;
    const p = byPid.get(parent)!;
    const g: LeaderlessGroup = { pgid, members: members.map((m) => m.pid), parent };
    if (members.some((m) => m.ppid !== parent)) g.why = 'its members are children of different tasks';
    else if (p.zombie) g.why = 'their parent is a zombie';
    else if (members.some((m) => m.sid !== p.sid)) g.why = `its members are in another session than their parent ${parent}`;
    else if (helping.has(parent)) g.why = `task ${parent} has children in another such group (${helping.get(parent)}) too`;
    else helping.set(parent, pgid);
    out.push(g);
  }
  return out;
}

/** The words naming a group the restore cannot make again. */
export function leaderlessGroupText(g: LeaderlessGroup): string {
  return `process group ${g.pgid} (of pid ${g.members.join(', ')}), whose leader is gone: ${g.why}, which is not restored yet`;
}

/**
 * Tasks whose session the restore cannot give them: a task inherits its session from the parent
 * that forks it, or makes its own (setsid: its sid is its pid). One in another session than its
 * parent's (a child of a session leader's child that exited, reparented to a pid namespace's
 * init or a subreaper) would need a helper of its session to fork it and exit: not restored yet.
 * The dump refuses such a tree and the restore such a checkpoint by the same rule.
 */
export function foreignSessionTasks(tasks: readonly GroupTask[]): { pid: number; sid: number; ppid: number; parentSid: number }[] {
  const byPid = new Map(tasks.map((t) => [t.pid, t]));
  const out: { pid: number; sid: number; ppid: number; parentSid: number }[] = [];
  for (const t of tasks) {
    const p = byPid.get(t.ppid);
    if (!p || t.sid === t.pid || t.sid === p.sid) continue;
    out.push({ pid: t.pid, sid: t.sid, ppid: t.ppid, parentSid: p.sid });
  }
  return out;
}

/** The words naming a task foreignSessionTasks found. */
export function foreignSessionText(f: { pid: number; sid: number; ppid: number; parentSid: number }): string {
  return `task ${f.pid} is in session ${f.sid}, not in its parent ${f.ppid}'s (${f.parentSid}) nor a session of its own: a task whose session is not its parent's is not restored yet`;
}
