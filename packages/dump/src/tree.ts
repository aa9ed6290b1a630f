import { CrtoolsError, errnoName, ExitCode, nowMs, sleepSync, type CriuLog } from '@crtools/common';
import { freezeProcess, reapKilled, resumeProcess, type StoppedThread } from '@crtools/parasite';
import { NO_SUCH_PROCESS, readChildren, readStat } from '@crtools/procfs';
import { killReleasing } from '@crtools/sys';


/** One frozen process of the tree. */
export interface FrozenTask {
  pid: number;
  ppid: number;
  threads: StoppedThread[];
  /** a zombie (exited, not yet reaped by its parent): nothing to seize, only its exit status */
  zombie?: boolean;
  /** how many areas (VMAs) it maps, once the dump has read them: its kill frees its memory from here only when they are few (killTree) */
  areas?: number;
}

function childrenOf(pid: number): number[] {
  return readChildren(pid);
}

function stateOf(pid: number): string {
  try {
    return readStat(pid).state;
  } catch {
    return '?';
  }
}

/** How long a zombie child may stay unreaped before the dump gives up on it. */
export const ZOMBIE_GRACE_MS = 2000;

/**
 * Freeze the tree rooted at pid, parents before children (a frozen parent cannot fork, so
 * its children list is final once it is seized). On failure everything frozen is resumed.
 *
 * A zombie child is usually a moment in its parent's life (a shell between a child's exit and
 * its wait), and a frozen parent cannot reap it: so the tree is thawed and frozen again, for up
 * to `zombieGraceMs`, until no task of it is a zombie. One that outlives the grace is refused.
 */
export function freezeTree(root: number, log: CriuLog, timeoutMs?: number, zombieGraceMs = ZOMBIE_GRACE_MS): FrozenTask[] {
  const deadline = Date.now() + zombieGraceMs;
  for (let attempt = 1; ; attempt++) {
    // past the grace, zombies that stay are dumped as zombies (their parent does not wait for them)
    const keepZombies = Date.now() >= deadline;
    try {
      return freezeOnce(root, log, timeoutMs, keepZombies);
    } catch (e) {
      const zombie = (e as { code?: string }).code === 'UNSUPPORTED_ZOMBIE' ? (e as CrtoolsError).context.pid : undefined;
      if (zombie === undefined || zombie === root || keepZombies) throw e;
      log.info(`task ${zombie} is a zombie; thawing the tree so its parent can reap it (attempt ${attempt})`);
      sleepSync(Math.min(10 * attempt, 100));
    }
  }
}

function freezeOnce(root: number, log: CriuLog, timeoutMs?: number, keepZombies = false): FrozenTask[] {
  const tasks: FrozenTask[] = [];
  try {
    const queue: [number, number][] = [[root, 0]];
    while (queue.length > 0) {
      const [pid, ppid] = queue.shift()!;
      log.info(`Seizing task ${pid}`);
      const zombie = () => {
        if (!keepZombies || pid === root) {
          throw new CrtoolsError('UNSUPPORTED_ZOMBIE', `task ${pid} is a zombie${pid === root ? ' (the root of the tree)' : ''}: it cannot be dumped`, { context: { pid }, exitCode: ExitCode.UNSUPPORTED });
        }
        log.info(`  task ${pid} is a zombie: dumped as one`);
        tasks.push({ pid, ppid, threads: [], zombie: true });
      };
      if (stateOf(pid) === 'Z') {
        zombie();
        continue;
      }
      let threads: StoppedThread[];
      try {
        threads = freezeProcess(pid, timeoutMs);
      } catch (e) {
        // a child that exited between its parent's listing and the seize (the kernel says EPERM
        // for a task that is exiting): a zombie now, its parent being frozen; or gone already
        const now = pid === root ? undefined : stateOf(pid);
        if (now === 'Z') {
          zombie();
          continue;
        }
        if (now === 'X' || now === '?') {
          log.info(`  task ${pid} exited before it could be seized`);
          continue;
        }
        throw e;
      }
      tasks.push({ pid, ppid, threads });
      log.debug(`  task ${pid}: ${threads.length} thread(s) stopped`);
      for (const c of childrenOf(pid)) queue.push([c, pid]);
    }
    return tasks;
  } catch (e) {
    resumeTree(tasks);
    const code = (e as { code?: string }).code;
    if (tasks.length === 0 && (code === 'ESRCH' || code === 'NO_SUCH_TASK' || code === NO_SUCH_PROCESS)) {
      throw new CrtoolsError('NO_SUCH_TASK', `no process with pid ${root}`, { context: { pid: root }, exitCode: ExitCode.FAILED, cause: e });
    }
    throw e;
  }
}

/** Detach every task, children first; never throws. */
export function resumeTree(tasks: FrozenTask[]): void {
  for (const t of [...tasks].reverse()) resumeProcess(t.threads);
}

/** How the kill of a tree went (the dump's level-4 log): ms to kill and free the memory, ms to reap. */
export interface TreeKill {
  killMs: number;
  reapMs: number;
  /** processes whose memory was freed from our side (process_mrelease) */
  released: number;
  /** why none or not all were: the kernel has no process_mrelease, or saw a process not dying */
  notReleased?: string;
}

/**
 * Kill every task with SIGKILL while it is still frozen, and collect each thread's exit.
 * With `release` (kerndat: the kernel has process_mrelease) each killed process's memory is
 * freed from here right after the kill, when the process still holds it: a dying task frees its
 * address space before its exit can be collected (a 1 GiB one: 100–400 ms of the frozen time on
 * a loaded machine), and one that waits to be scheduled would not free it before. Measured on
 * 6.18 (bench/README.md): the woken task often runs first and drops its mm at once (the call
 * then answers ESRCH and the task frees it itself); when the call wins it does the same work
 * here, so the kill costs about what freeing the pages costs either way. A process of many
 * areas (over RELEASE_MAX_AREAS) is left to free them itself: process_mrelease walks them
 * against the dying task's own teardown, ~4 µs an area where the exit alone takes under 1
 * (60,000 one-page areas: ~220-260 ms against 40-60).
 */
export function killTree(tasks: FrozenTask[], release = true): TreeKill {
  const t0 = nowMs();
  const live = tasks.filter((t) => !t.zombie);
  // those left to free their own memory, killed first: their teardown starts while the others'
  // memory is freed here
  const many = (t: FrozenTask) => (t.areas ?? 0) > RELEASE_MAX_AREAS;
  const own = live.filter(many);
  const done = [
    ...killReleasing(own.map((t) => t.pid), false),
    ...killReleasing(live.filter((t) => !many(t)).map((t) => t.pid), release),
  ];
  for (const t of tasks.filter((t) => t.zombie)) {
    try {
      process.kill(t.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  const t1 = nowMs();
  // the other threads first: a leader's exit is reported only once they are gone
  for (const t of tasks) for (const th of [...t.threads].sort((a, b) => Number(a.tid === t.pid) - Number(b.tid === t.pid))) reapKilled(th.tid, 2000);
  const released = done.filter((d) => d.release === 0).length;
  const not = done.find((d) => d.release > 0);
  return {
    killMs: t1 - t0, reapMs: nowMs() - t1, released,
    ...(!release ? { notReleased: 'kerndat: no process_mrelease' } : not ? { notReleased: `process_mrelease of ${not.pid}: ${errnoName(not.release)}` } : own.length ? { notReleased: `${own.length} process(es) of over ${RELEASE_MAX_AREAS} areas free their own` } : {}),
  };
}

/**
 * Up to this many areas a killed process's memory is freed from here (process_mrelease); above,
 * by its own exit. Measured on 6.18 (bench/README.md, 1 GiB in N areas, kill to reaped): 100
 * areas 16-18 ms released against 22-24 by the exit; 1,000 about even (24-27 against 23); 5,000
 * 44-50 against 29; 10,000 66-70 against 27-33.
 */
export const RELEASE_MAX_AREAS = 500;
