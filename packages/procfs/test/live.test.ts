import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isCrtoolsError, listTasks, MAP, pagemapRecords, pagemapRuns, NO_SUCH_PROCESS, openPagemap, readAheadEntries, readChildren, readFds, readMapFiles, readMaps,
  readNamespaces, readStat, readStatus, readStatusValue, readTimers, readLimits, readAuxv, readCmdline, readMountinfo, readCgroup,
  readLoginuid, readOomScoreAdj, readTasks, readPersonality, readTimerslack, readSched, VMA, parseSmaps, iterSmapsPieces, readProcLines,
} from './lib.js';

const pkg = join(import.meta.dirname, '..');
const bin = join(pkg, 'bin', 'procfs.js');
const built = existsSync(join(pkg, 'dist', 'bin.js'));
const gcc = spawnSync('gcc', ['--version']).status === 0;
const AREAS = 20000;

let work = '';
let zoo: ChildProcess | undefined;
let pid = 0;
let growsdown = 0n;
let child = 0;
let bigArea: [bigint, bigint] | undefined;
const BIG_MIB = 64;

function procfs(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
}

describe.skipIf(!gcc)('live: a child holding every kind of mapping and fd, plus 20,000 areas', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'procfs-live-'));
    const exe = join(work, 'zoo');
    const cc = spawnSync('gcc', ['-O2', '-o', exe, join(import.meta.dirname, 'helpers', 'zoo.c'), '-lrt', '-lpthread'], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`gcc failed: ${cc.stderr}`);
    zoo = spawn(exe, [work, String(AREAS), String(BIG_MIB)], { stdio: ['ignore', 'pipe', 'inherit'] });
    pid = await new Promise<number>((resolve, reject) => {
      let buf = '';
      zoo!.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const g = /growsdown ([0-9a-f]+)/.exec(buf);
        if (g) growsdown = BigInt('0x' + g[1]);
        const b = /big ([0-9a-f]+) ([0-9a-f]+)/.exec(buf);
        if (b) bigArea = [BigInt('0x' + b[1]), BigInt('0x' + b[2])];
        const c = /child (\d+)/.exec(buf);
        if (c) child = Number(c[1]);
        const m = /ready (\d+)/.exec(buf);
        if (m) resolve(Number(m[1]));
      });
      zoo!.on('exit', (c) => reject(new Error(`zoo exited with ${c}`)));
    });
  }, 30000);

  afterAll(() => {
    if (child > 1) {
      try {
        process.kill(child, 'SIGKILL');
      } catch { /* already gone */ }
    }
    if (zoo?.pid) {
      try {
        process.kill(zoo.pid, 'SIGKILL');
      } catch { /* already gone */ }
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it.skipIf(!built)('`procfs maps PID` emits exactly one record per line of /proc/PID/maps', () => {
    const lines = readFileSync(`/proc/${pid}/maps`, 'utf8').trimEnd().split('\n');
    const r = procfs('maps', String(pid));
    expect(r.status).toBe(0);
    const recs = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThan(AREAS);
    expect(recs).toHaveLength(lines.length);
    recs.forEach((rec, i) => expect(rec.start).toBe('0x' + lines[i]!.slice(0, lines[i]!.indexOf('-')).replace(/^0+(?=.)/, '')));
    const vclock = recs.find((x) => x.name === '[vvar_vclock]');
    expect(vclock).toMatchObject({ kind: 'vvar', status: VMA.AREA_REGULAR | VMA.ANON_PRIVATE | VMA.AREA_VVAR });
  });

  it('names with spaces, newlines and " (deleted)"; shmem, SysV, AIO kinds', () => {
    const v = readMaps(pid);
    const byName = (n: string) => v.find((x) => x.name === n);
    expect(byName(join(work, 'with space'))).toMatchObject({ kind: 'file', shared: true, status: VMA.AREA_REGULAR | VMA.FILE_SHARED });
    expect(byName(join(work, 'new\nline'))).toMatchObject({ kind: 'file', deleted: false, status: VMA.AREA_REGULAR | VMA.FILE_PRIVATE });
    expect(byName(join(work, 'gone'))).toMatchObject({ deleted: true });
    expect(byName('/dev/zero')).toMatchObject({ kind: 'shmem', deleted: true });
    expect(byName('/memfd:zoo-memfd')).toMatchObject({ kind: 'shmem', status: VMA.AREA_REGULAR | VMA.AREA_MEMFD | VMA.FILE_SHARED });
    expect(v.find((x) => x.name.startsWith('/SYSV'))).toMatchObject({ kind: 'sysvipc' });
    expect(byName('/[aio]')).toMatchObject({ kind: 'aio', status: VMA.AREA_AIORING });
    // every map_files link names an area of maps
    const starts = new Set(v.map((x) => x.start));
    for (const m of readMapFiles(pid)) expect(starts.has(m.start)).toBe(true);
  });

  it('this kernel shows a MAP_GROWSDOWN area from its real start: the guard gap is not hidden (stackGuardGapHidden false, as CRIU computes it)', () => {
    expect(growsdown).not.toBe(0n);
    const area = readMaps(pid).find((x) => x.end === growsdown + 65536n)!;
    expect(area.start).toBe(growsdown);
  });

  it('smaps marks the MAP_GROWSDOWN area and agrees with maps', () => {
    const maps = readMaps(pid);
    const smaps = readMaps(pid, { smaps: true });
    expect(smaps.map((x) => x.start)).toEqual(maps.map((x) => x.start));
    const gd = smaps.filter((x) => (x.flags & MAP.GROWSDOWN) !== 0);
    expect(gd.length).toBe(2); // [stack] and the one zoo maps
    expect(gd.some((x) => x.kind === 'anon' && x.end - x.start === 65536n)).toBe(true);
  });

  it('smaps read in pieces of whole lines parses as the whole text does; without counters the areas are the same', () => {
    const text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
    const whole = parseSmaps(text);
    // pieces cut after every 7th line: the parser's state carries across them
    const lines = text.split(/(?<=\n)/);
    const pieces = Array.from({ length: Math.ceil(lines.length / 7) }, (_, i) => lines.slice(i * 7, i * 7 + 7).join(''));
    expect([...iterSmapsPieces(pieces)]).toEqual(whole);
    expect(parseSmaps([...readProcLines(pid, 'smaps')].join('')).map((v) => [v.start, v.end])).toEqual(whole.map((v) => [v.start, v.end]));
    const bare = readMaps(pid, { smaps: true, counters: false });
    expect(bare.every((v) => v.smaps === undefined)).toBe(true);
    expect(bare.map(({ smaps: _, ...v }) => v)).toEqual(whole.map(({ smaps: _, ...v }) => v));
  });

  it('fds: eventfd, epoll, signalfd, inotify, fanotify, timerfd and a flock', () => {
    const fds = readFds(pid);
    const by = (t: string) => fds.find((f) => f.target === t)!;
    expect(by('anon_inode:[eventfd]').eventfd?.count).toBe(5n);
    const ep = by('anon_inode:[eventpoll]').epoll!.tfds[0]!;
    expect(ep.data).toBe(0x1122334455667788n);
    expect(ep.tfd).toBe(fds.find((f) => f.target === 'anon_inode:[eventfd]')!.fd);
    expect(by('anon_inode:[signalfd]').signalfd?.sigmask).toBe((1n << 11n) | 1n); // SIGUSR2, SIGHUP
    expect(by('anon_inode:inotify').inotify?.watches).toHaveLength(1);
    const fan = fds.find((f) => f.target === 'anon_inode:[fanotify]');
    if (fan) expect(fan.fanotify?.marks).toHaveLength(1);
    expect(by('anon_inode:[timerfd]').timerfd).toMatchObject({ clockid: 1, interval: { sec: 1000n, nsec: 0n } });
    const lock = by(join(work, 'locked')).locks![0]!;
    expect(lock).toMatchObject({ type: 'FLOCK', access: 'WRITE', pid });
  });

  it('timers, stat, status, tasks, children, namespaces and the rest', () => {
    expect(readTimers(pid)).toEqual([{ id: 0, signo: 12, sigval: 0x1234n, notify: 'signal', notifyTarget: 'pid', notifyId: pid, clockId: 1 }]);
    expect(readStat(pid)).toMatchObject({ pid, comm: 'zoo', ppid: process.pid });
    expect(readStatus(pid)).toMatchObject({ Name: 'zoo', Pid: pid, Threads: 2, SigBlk: (1n << 11n) | 1n });
    const tids = listTasks(pid);
    expect(tids).toHaveLength(2);
    expect(tids[0]).toBe(pid);
    const tasks = readTasks(pid);
    expect(tasks.map((t) => t.status.Pid)).toEqual(tids);
    expect(tasks.every((t) => t.status.Tgid === pid && t.stat.pid === t.tid)).toBe(true);
    expect(readChildren(pid)).toEqual([child]);
    expect(readChildren(process.pid)).toContain(pid);
    expect(readNamespaces(pid).map((n) => n.name)).toContain('pid_for_children');
    expect(readCmdline(pid).slice(1)).toEqual([work, String(AREAS), String(BIG_MIB)]);
    expect(readLimits(pid).find((l) => l.resource === 'RLIMIT_NOFILE')?.soft).toBeGreaterThan(0n);
    expect(readAuxv(pid).at(-1)?.name).toBe('AT_NULL');
    expect(readMountinfo(pid).length).toBeGreaterThan(0);
    expect(readCgroup(pid).length).toBeGreaterThan(0);
    expect(readOomScoreAdj(pid)).toBe(0);
    expect(readPersonality(pid)).toBe(0);
    expect(readTimerslack(pid)).toBeGreaterThan(0n);
    expect(typeof readLoginuid(pid)).toBe('number');
    expect(readSched(pid)).toMatchObject({ policyName: 'SCHED_OTHER' });
  });

  it('pagemap: the touched page of a shared file mapping is present, the other is not', () => {
    const v = readMaps(pid).find((x) => x.name === join(work, 'with space'))!;
    const pm = openPagemap(pid);
    try {
      const r = pm.read(v.start, v.end);
      expect(r.entries).toHaveLength(2);
      expect(r.entries[0]! & (1n << 63n)).not.toBe(0n);
      expect(r.entries[1]! & (1n << 63n)).toBe(0n);
    } finally {
      pm.close();
    }
  });

  it('readAheadEntries: the entries of each small range are the ones a read of it gives, from one read per window', () => {
    const [s, e] = bigArea!;
    const pm = openPagemap(pid);
    try {
      let reads = 0;
      const counted = { ...pm, read: (a: bigint, b: bigint) => (reads++, pm.read(a, b)) };
      const ahead = readAheadEntries(counted, 1024);
      const pages = Number((e - s) / 4096n);
      // ranges of 3 pages one after the other (as a task's small areas are asked for), then one larger than the window
      for (let i = 0; i + 3 <= pages; i += 3) expect([...ahead(s + BigInt(i) * 4096n, 3)]).toEqual([...pm.read(s + BigInt(i) * 4096n, s + BigInt(i + 3) * 4096n).entries]);
      expect(reads).toBeLessThanOrEqual(Math.ceil(pages / 1023) + 1);
      expect([...ahead(s, 2048)]).toEqual([...pm.read(s, s + 2048n * 4096n).entries]);
    } finally {
      pm.close();
    }
  });

  it(`pagemap of a ${BIG_MIB} MiB area with every 16th page touched: one read, exactly those pages present`, () => {
    const [s, e] = bigArea!;
    const pm = openPagemap(pid);
    try {
      const r = pm.read(s, e);
      expect(r.entries).toHaveLength((BIG_MIB << 20) / 4096);
      const runs = Array.from(pagemapRuns(r));
      expect(runs).toHaveLength((BIG_MIB << 20) / (16 * 4096));
      runs.forEach((run, i) => expect(run).toEqual({ start: s + BigInt(i) * 16n * 4096n, pages: 1 }));
      expect(pm.entries(s, 32)).toEqual(r.entries.subarray(0, 32));
      const recs = Array.from(pagemapRecords(r));
      expect(recs).toHaveLength(runs.length);
      // zoo forked its child after touching the pages: they are shared copy-on-write, not exclusive
      expect(recs.every((x) => x.present && !x.exclusive && !x.file && !x.swapped && x.pfn! > 0n)).toBe(true);
    } finally {
      pm.close();
    }
  });

  it.skipIf(!built)('missing process: one error line, exit 1', () => {
    const r = procfs('maps', '999999999');
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/no such process/);
    expect(r.stdout).toBe('');
  });
});

describe('live: the test process itself', () => {
  it('maps has one record per line', () => {
    const before = readMaps(process.pid);
    expect(before.length).toBeGreaterThan(10);
    expect(before.some((v) => v.kind === 'vdso')).toBe(true);
  });
  it('status and stat agree on the pid', () => {
    expect(readStatus(process.pid).Pid).toBe(process.pid);
    expect(readStat(process.pid).pid).toBe(process.pid);
  });
  it('one value of status is the parse\'s, first and last keys too; a missing key is undefined', () => {
    const full = readStatus(process.pid);
    expect(readStatusValue(process.pid, 'Name')).toBe(full.Name);
    expect(readStatusValue(process.pid, 'Umask')).toBe(full['Umask']);
    expect(Number(readStatusValue(process.pid, 'Seccomp'))).toBe(full.Seccomp);
    expect(readStatusValue(process.pid, 'Pid')).toBe(String(process.pid));
    // (not a prefix of a longer key: "Seccomp" is not "Seccomp_filters")
    expect(readStatusValue(process.pid, 'Seccomp_filters')).toBe(String(full.Seccomp_filters));
    expect(readStatusValue(process.pid, 'Sec')).toBeUndefined();
    expect(readStatusValue(process.pid, 'NoSuchKey')).toBeUndefined();
  });
  it('a process that does not exist is NO_SUCH_PROCESS', () => {
    try {
      readMaps(999999999);
      expect.unreachable();
    } catch (e) {
      expect(isCrtoolsError(e) && e.code === NO_SUCH_PROCESS).toBe(true);
    }
  });
});

describe('live: map_files modes', () => {
  it('give CRIU fdflags: read-only private file mappings are O_RDONLY, rw shared are O_RDWR', async () => {
    const { readMapFiles } = await import('./lib.js');
    const mf = readMapFiles(process.pid, { modes: true });
    const maps = readMaps(process.pid);
    for (const m of mf) {
      const v = maps.find((x) => x.start === m.start)!;
      expect(v).toBeDefined();
      if (v.perms === 'r--p') expect(m.fdflags).toBe(0);
    }
    expect(mf.some((m) => m.fdflags === 0)).toBe(true);
  });

  it('readMapFileModes and readMapFileModesOf (lstat only) give each link the mode readMapFiles gives it', async () => {
    const { readMapFiles, readMapFileModes, readMapFileModesOf } = await import('./lib.js');
    // (a sleep: its mappings stay as they are between the two reads, Node's do not)
    const sleep = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      // (in its clock_nanosleep, 230: the loader has mapped everything)
      const asleep = () => readFileSync(`/proc/${sleep.pid}/syscall`, 'utf8').startsWith('230 ');
      for (let i = 0; i < 400 && !asleep(); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      const modes = readMapFileModes(sleep.pid!);
      const mf = readMapFiles(sleep.pid!, { modes: true });
      expect(mf.length).toBeGreaterThan(0);
      expect(modes).toEqual(new Map(mf.filter((m) => m.fdflags !== undefined).map((m) => [m.start, m.fdflags])));
      expect(modes.size).toBeGreaterThan(0);
      // the same, one lstat per area named (no directory read); an area without a link is left out
      expect(readMapFileModesOf(sleep.pid!, [...mf, { start: 0x10000n, end: 0x11000n }])).toEqual(modes);
    } finally {
      sleep.kill('SIGKILL');
    }
  });
});

describe('live: readVmaList', () => {
  it('is CRIU\'s list for the test process: one vvar area, fdflags on file mappings, growsdown stack', async () => {
    const { readVmaList } = await import('./lib.js');
    const list = readVmaList(process.pid);
    // (Node maps and unmaps memory all the time: no count comparison between two reads.)
    expect(readMaps(process.pid).filter((v) => v.kind === 'vvar').length).toBe(2); // [vvar] + [vvar_vclock]
    expect(list.filter((v) => (v.status & VMA.AREA_VVAR) !== 0)).toHaveLength(1);
    expect(list.filter((v) => (v.status & VMA.FILE_PRIVATE) !== 0).every((v) => v.fdflags !== undefined)).toBe(true);
    expect(list.find((v) => v.kind === 'stack')!.flags & MAP.GROWSDOWN).toBe(MAP.GROWSDOWN);
  });
});
