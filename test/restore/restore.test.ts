/**
 * criu restore end to end: CRIU 4.2 fixtures, dump → restore → verify round trips (twice from
 * the same images), and the failure cases (pid in use, truncated/corrupt images, missing file).
 * Every process is found and killed by pid; each test checks nothing it started is left.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, openSync, readSync, readlinkSync, cpSync, existsSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync, copyFileSync, chmodSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fixturesDir, workloadBinDir } from '../lib/paths.js';
import { killRestored, mapsOf, restoreDir, roundTrip } from './roundtrip.js';
import { canInstallGuards } from '@crtools/sys';
import { VMA_AREA_MEMFD, VMA_FILE_PRIVATE } from '@crtools/images';
import { alive, askVerdict, childrenOf, critDecode, criu, haveCrit, killAllStarted, killTree, killTreeAndWait, ourCritDecode, sleep, startWorkload, tmp, treePids, waitGone, waitReaped } from '../dump/helpers.js';

const mine: number[] = [];
afterEach(() => {
  for (const p of mine.splice(0)) killTree(p);
  killRestored();
});
afterAll(() => killAllStarted());

const restore = restoreDir;

const verdict = askVerdict;

function dump(pid: number, dir: string, extra: string[] = []): void {
  const d = criu(['dump', '-t', String(pid), '-D', dir, '-o', 'dump.log', ...extra]);
  expect(d.code, `criu dump: ${d.stderr}`).toBe(0);
}

function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

const CPU_AVX512 = /avx512f/.test(readFileSync('/proc/cpuinfo', 'utf8'));

describe('CRIU 4.2 fixtures', () => {
  function copyFixture(name: string): string {
    const d = tmp(`fx-${name}`);
    cpSync(path.join(fixturesDir, name), d, { recursive: true });
    mkdirSync('/tmp/criu-fixtures/run', { recursive: true });
    mkdirSync('/tmp/criu-fixtures/bin', { recursive: true });
    for (const b of readdirSync(path.join(fixturesDir, 'bin'))) {
      // copy beside and rename over: a restored fixture may be running the old copy (ETXTBSY)
      const dst = `/tmp/criu-fixtures/bin/${b}`;
      copyFileSync(path.join(fixturesDir, 'bin', b), `${dst}.new`);
      chmodSync(`${dst}.new`, 0o755);
      renameSync(`${dst}.new`, dst);
    }
    return d;
  }

  it('sleep: same pid, exe, fds, cwd and memory layout (--cpu-cap=none: dumped on an AVX-512 CPU)', (ctx) => {
    if (!waitReaped(2680)) return ctx.skip('pid 2680 is taken by another process right now');
    const dir = copyFixture('sleep');
    const r = restore(dir, ['--cpu-cap=none']);
    mine.push(2680);
    expect(r.code, r.stderr).toBe(0);
    expect(alive(2680)).toBe(true);
    expect(readFileSync('/proc/2680/comm', 'utf8').trim()).toBe('sleep');
    expect(spawnSync('readlink', ['/proc/2680/exe'], { encoding: 'utf8' }).stdout.trim()).toBe('/usr/bin/sleep');
    expect(spawnSync('readlink', ['/proc/2680/cwd'], { encoding: 'utf8' }).stdout.trim()).toBe('/tmp/criu-fixtures/run');
    expect(readdirSync('/proc/2680/fd').sort()).toEqual(['0', '1', '2']);
    const maps = mapsOf(2680);
    for (const a of ['559e9f0df000-559e9f0e1000', '559ecf737000-559ecf758000', '7f5d5e298000-7f5d5e29a000', '7ffd03655000-7ffd03676000']) expect(maps).toContain(a);
    sleep(300);
    expect(alive(2680)).toBe(true); // the resumed nanosleep keeps sleeping
  });

  for (const [name, pid] of [['pattern', 2716], ['threads', 2759], ['pipetree', 2806], ['shloop', 2926]] as const) {
    it.skipIf(CPU_AVX512)(`${name}: refused on this CPU (no AVX-512; the fixture's glibc chose EVEX code), nothing left behind`, (ctx) => {
      if (!waitReaped(pid)) return ctx.skip(`pid ${pid} is taken by another process right now`);
      const dir = copyFixture(name);
      const r = restore(dir);
      expect(r.code).toBe(4);
      expect(oneLine(r.stderr)).toMatch(/AVX-512 .* which this CPU lacks/);
      expect(existsSync(`/proc/${pid}`)).toBe(false);
    });
  }

  it('restored stopped with --cpu-cap=none, checked from outside: pattern memory, threads, tree, shared pipes', (ctx) => {
    const free = [2716, 2759, 2763, 2764, 2765, 2766, 2806, 2810, 2811, 2926, 2929].every((p) => waitReaped(p, 1000));
    if (!free) return ctx.skip('a fixture pid is taken by another process right now');
    // pattern: the 8 MiB area holds word i = i * 0x9E3779B97F4A7C15 (mod 2^64)
    let r = restore(copyFixture('pattern'), ['--cpu-cap=none', '-s']);
    mine.push(2716);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync('/proc/2716/stat', 'utf8')).toMatch(/\) T /);
    // the workload's array: the anonymous (nameless) area of at least 8 MiB
    const area = readFileSync('/proc/2716/maps', 'utf8')
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .find((f) => {
        if (f.length !== 5) return false;
        const [a, b] = f[0]!.split('-').map((x) => BigInt('0x' + x));
        return b! - a! >= 8n << 20n;
      });
    expect(area).toBeDefined();
    const [lo, hi] = area![0]!.split('-').map((x) => BigInt('0x' + x));
    const mem = Buffer.alloc(Number(hi! - lo!));
    const fd = openSync('/proc/2716/mem', 'r');
    readSync(fd, mem, 0, mem.length, Number(lo!));
    closeSync(fd);
    // the array starts at the area start or one page in (mmap puts it at the top of the area)
    const start = mem.readBigUInt64LE(8) === 0x9e3779b97f4a7c15n ? 0 : mem.length - (8 << 20);
    let bad = 0;
    for (let i = 0n; i < 1n << 20n; i++) if (mem.readBigUInt64LE(start + Number(i) * 8) !== BigInt.asUintN(64, i * 0x9e3779b97f4a7c15n)) bad++;
    expect(bad).toBe(0);
    killTree(2716);
    // threads: the five tids of the image
    r = restore(copyFixture('threads'), ['--cpu-cap=none', '-s']);
    mine.push(2759);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync('/proc/2759/task').map(Number).sort()).toEqual([2759, 2763, 2764, 2765, 2766]);
    killTree(2759);
    // pipetree: three processes sharing the ring's pipes (same pipe inodes across processes)
    r = restore(copyFixture('pipetree'), ['--cpu-cap=none', '-s']);
    mine.push(2806);
    expect(r.code, r.stderr).toBe(0);
    expect(treePids(2806).sort()).toEqual([2806, 2810, 2811]);
    const pipesOf = (p: number) => new Set(readdirSync(`/proc/${p}/fd`).map((f) => spawnSync('readlink', [`/proc/${p}/fd/${f}`], { encoding: 'utf8' }).stdout.trim()).filter((l) => l.startsWith('pipe:')));
    const p0 = pipesOf(2806);
    for (const c of [2810, 2811]) for (const pipe of pipesOf(c)) expect(p0.has(pipe)).toBe(true);
    killTree(2806);
    // shloop: the shell and its child
    r = restore(copyFixture('shloop'), ['--cpu-cap=none', '-s']);
    mine.push(2926);
    expect(r.code, r.stderr).toBe(0);
    expect(treePids(2926)).toEqual([2926, 2929]);
    expect(readFileSync('/proc/2929/comm', 'utf8').trim()).toBe('sleep');
    killTree(2926);
  });

  // On a CPU without AVX-512 the fixtures' glibc choices (EVEX string functions) would die with
  // SIGILL: --cpu-cap=none restores them with those choices re-pointed at this CPU's.
  const fxArgs = CPU_AVX512 ? [] : ['--cpu-cap=none', '-v4', '-o', 'restore.log'];
  const repointed = (dir: string, pid: number) => {
    if (!CPU_AVX512) expect(readFileSync(path.join(dir, 'restore.log'), 'utf8')).toMatch(new RegExp(`cpu: pid ${pid}: [1-9]\\d* GOT slot\\(s\\) re-pointed`));
  };

  for (const [name, pid, want] of [['pattern', 2716, 'check bad=0'], ['threads', 2759, 'check alive=4 of 4'], ['pipetree', 2806, 'check rounds=100']] as const) {
    it(`${name}: restored, the workload's own verdict is "${want}" (twice)`, (ctx) => {
      if (!waitReaped(pid)) return ctx.skip(`pid ${pid} is taken by another process right now`);
      const dir = copyFixture(name);
      const r = restore(dir, fxArgs);
      mine.push(pid);
      expect(r.code, r.stderr).toBe(0);
      repointed(dir, pid);
      const state = `/tmp/criu-fixtures/run/${name}.state`;
      expect(verdict(state, pid, 10_000)).toBe(want);
      expect(verdict(state, pid, 10_000)).toBe(want);
      killTreeAndWait(pid);
    });
  }

  it('shloop: the shell goes on starting a new sleep every 0.2 s', (ctx) => {
    if (![2926, 2929].every((p) => waitReaped(p))) return ctx.skip('a fixture pid is taken by another process right now');
    const dir = copyFixture('shloop');
    const r = restore(dir, fxArgs);
    mine.push(2926);
    expect(r.code, r.stderr).toBe(0);
    repointed(dir, 2926);
    const seen = new Set<number>();
    for (let i = 0; i < 100 && seen.size < 4; i++) {
      for (const p of treePids(2926).slice(1)) seen.add(p);
      sleep(20);
    }
    expect(seen.size).toBeGreaterThanOrEqual(4); // 2929 and sleeps started after the restore
    expect(alive(2926)).toBe(true);
    killTree(2926);
    expect(waitGone(2926)).toBe(true);
  });
});

describe('dump → restore round trips (twice in a row: restore, dump the restored tree again, restore that)', () => {
  it('pattern 8 MiB: every word intact', () => roundTrip('pattern', ['8'], (pid, st) => expect(verdict(st, pid, 10_000)).toBe('check ok bad=0')));

  it('at scale: a process of 1,000 threads and a tree of 500 processes come back whole, every thread and child answering', () => {
    for (const [threads, procs] of [[1000, 1], [1, 500]] as const) {
      const w = startWorkload('swarm', [String(threads), String(procs)]);
      const dir = tmp(`rt-swarm-${threads}-${procs}`);
      dump(w.pid, dir);
      expect(waitReaped(w.pid)).toBe(true);
      const r = restore(dir);
      mine.push(w.pid);
      expect(r.code, r.stderr).toBe(0);
      expect(readdirSync(`/proc/${w.pid}/task`)).toHaveLength(threads);
      expect(treePids(w.pid)).toHaveLength(procs);
      expect(readFileSync(`/proc/${w.pid}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
      expect(verdict(w.state, w.pid, 20_000)).toBe(`check ok threads=${threads} procs=${procs}`);
      killTreeAndWait(w.pid);
    }
  }, 120_000);

  it('pattern in 3 processes × 48 MiB: the launcher copies pages into the tasks alongside them', () => {
    const w = startWorkload('pattern', ['48', '3']);
    const dir = tmp('rt-pattern3');
    dump(w.pid, dir);
    expect(waitReaped(w.pid)).toBe(true);
    const r = restore(dir, ['-v4', '-o', 'restore.log']);
    mine.push(w.pid);
    expect(r.code, r.stderr).toBe(0);
    expect(treePids(w.pid)).toHaveLength(3);
    expect(verdict(w.state, w.pid, 10_000)).toBe('check ok bad=0');
    // 48 MiB = 12 pieces of 4 MiB, taken by whoever comes first: the parent's. Each child maps its
    // memory where the parent has its own (same range and flags): it takes the parent's area over
    // and compares its pages with it (copy-on-write kept, restorer src/cow.ts), as CRIU does
    const m = /UFFDIO_COPY pieces: (\d+), (\d+) of them copied by the launcher/.exec(readFileSync(path.join(dir, 'restore.log'), 'utf8'));
    expect(Number(m?.[1])).toBe(12);
    expect(Number(m?.[2])).toBeGreaterThan(0);
    killTreeAndWait(w.pid);
  });

  it('threads: 4 workers alive with their tids', () =>
    roundTrip('threads', ['4'], (pid, st) => {
      expect(readdirSync(`/proc/${pid}/task`)).toHaveLength(5);
      expect(verdict(st, pid)).toMatch(/^check ok/);
    }));

  it('pipetree: three processes, pipes shared as dumped, buffered bytes back, token moving', () =>
    roundTrip('pipetree', [], (pid, st) => {
      expect(treePids(pid)).toHaveLength(3);
      expect(verdict(st, pid)).toMatch(/^check ok inflight=1 alive=1 rounds=[1-9]/);
    }, true, undefined, [{ path: /\.fcntl\.FIONREAD$/, why: 'a token travels round the pipes all the time: which pipe holds it changes as the tree runs' }]));

  it('filemap: file positions and private/shared file mappings', () => {
    const data = path.join(tmp('filemap-data'), 'data');
    roundTrip('filemap', [data], (pid, st) => expect(verdict(st, pid)).toMatch(/^check ok/));
  });

  it('guards: guard regions (MADV_GUARD_INSTALL) fault again where they were, in an anonymous and a private file mapping; the pages around them intact', (ctx) => {
    if (!canInstallGuards()) return ctx.skip('this kernel installs no guard regions (MADV_GUARD_INSTALL, Linux 6.13+)');
    const data = path.join(tmp('guards-data'), 'data');
    roundTrip('guards', [data], (pid, st) => expect(verdict(st, pid)).toMatch(/^check ok guards=[34]$/), true, undefined, [], (dir, pid) => {
      // as CRIU 4.2 writes them: after the real areas, one entry per range, VMA_AREA_GUARD alone
      const vmas = ourCritDecode(path.join(dir, `mm-${pid}.img`)).entries[0].vmas as { start: unknown; end: unknown; status: number; prot: number; flags: number }[];
      const guards = vmas.filter((v) => v.status === 1 << 16);
      expect(guards.length).toBeGreaterThanOrEqual(2); // pages 5-6 and 11 of the anonymous area (+ the file page where allowed)
      expect(vmas.slice(-guards.length)).toEqual(guards);
      for (const g of guards) expect([g.prot, g.flags]).toEqual([0, 0]);
      // Debian's crit (CRIU 3.17) reads them too: the same fields, nothing new in the format
      if (haveCrit) expect(critDecode(path.join(dir, `mm-${pid}.img`)).entries[0].vmas.filter((v: { status: number }) => v.status === 1 << 16)).toHaveLength(guards.length);
    });
  });

  it('sighandlers: handlers, masks and flags as installed', () => roundTrip('sighandlers', [], (pid, st) => expect(verdict(st, pid)).toBe('check ok')));

  it('dumpable: a process and its child that changed their effective uid and set the dumpable flag again keep it, their /proc files their own; with it left cleared, cleared', () => {
    for (const mode of [[], ['off']]) {
      roundTrip('dumpable', mode, (pid, st) => {
        expect(treePids(pid)).toHaveLength(2);
        for (const p of treePids(pid)) expect(statSync(`/proc/${p}/status`).uid).toBe(mode.length ? 0 : 4321);
        expect(verdict(st, pid)).toBe('check ok');
      });
    }
  });

  it('fdstate: a non-blocking pipe end, a pipe grown to 1 MiB with its bytes', () =>
    roundTrip('fdstate', [], (pid, st) => expect(verdict(st, pid)).toBe('check ok')));

  it('fdstate: I/O signal owners (a process, a thread, a child\'s process group) and signals kept; with O_ASYNC the signals arrive where they should', () => {
    for (const mode of ['owner', 'async']) {
      roundTrip('fdstate', [mode], (pid, st) => {
        expect(treePids(pid)).toHaveLength(2);
        expect(readdirSync(`/proc/${pid}/task`)).toHaveLength(2);
        expect(verdict(st, pid)).toBe('check ok');
      });
    }
  });

  it('fdstate: an I/O signal owner outside the tree is refused by name, the tree left running', () => {
    const w = startWorkload('fdstate', ['outside']);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('fdstate-outside')]);
    expect(d.code).toBe(4);
    expect(d.stderr).toMatch(new RegExp(`^criu: task ${w.pid} fd \\d+ \\(pipe:\\[\\d+\\]\\): the owner of its I/O signals \\(F_SETOWN_EX: process 1\\) is not in the dumped tree: it would not exist after restore\\n$`));
    expect(w.check()).toBe('check ok');
    w.kill();
  });

  it('fifos: a FIFO open read-only (non-blocking) and write-only (also in a child), grown, with bytes queued; another open read-write with its own bytes', () => {
    roundTrip('fifos', [tmp('fifos')], (pid, st) => expect(verdict(st, pid)).toBe('check ok'));
  });

  it('fifos unlinked: the read-write FIFO unlinked once open comes back unlinked (a ghost FIFO, as CRIU 4.2 writes it) with its bytes, twice', () => {
    const dir = tmp('fifos-unlinked');
    roundTrip('fifos', ['unlinked', dir], (pid, st) => expect(verdict(st, pid)).toBe('check ok'), true, undefined, [], (img) => {
      if (!haveCrit) return;
      // the REG entry of the unlinked FIFO is backed by a ghost file of the head alone: mode S_IFIFO | 0600
      const remaps = critDecode(path.join(img, 'remap-fpath.img')).entries as any[];
      expect(remaps).toHaveLength(1);
      const ghost = critDecode(path.join(img, `ghost-file-${Number(remaps[0].remap_id).toString(16)}.img`)).entries as any[];
      expect(ghost).toHaveLength(1);
      expect(Number(ghost[0].mode)).toBe(0o010600);
      expect(existsSync(`${dir}/two`)).toBe(false);
    });
  });

  it('pidfds: of the process itself (non-blocking), of its child (twice, one open file), of a child gone and reaped, of another gone (three open files, in two tasks, on one inode), the child\'s of its parent; a pidfd of a process outside the tree is refused by name', () => {
    roundTrip('pidfds', [], (pid, st) => expect(verdict(st, pid)).toBe('check ok'));
    const w = startWorkload('pidfds', ['outside']);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('pidfds-outside')]);
    expect(d.code).toBe(4);
    expect(d.stderr).toBe(`criu: task ${w.pid} fd 15 (anon_inode:[pidfd]): a pidfd of process 1, which is outside the dumped tree, is not supported (after a restore the number would name another process, or none)\n`);
    expect(w.check()).toBe('check ok');
    w.kill();
  });

  it('taskstate: parent-death signal, THP disabled, a robust list of its own, a membarrier registration, rseq, a timer signalling one thread, the audit login uid; a timer slack is refused by name', () => {
    roundTrip('taskstate', [], (pid, st) => expect(verdict(st, pid)).toMatch(/^check ok ticks=\+\d+$/), true, undefined, [
      { path: /\.threads\[\d+\]\.status\.SigPnd$/, why: 'the timer signals its thread every 10 ms: whether one is pending at the instant of a snapshot is chance' },
    ]);
    const w = startWorkload('taskstate', ['slack']);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('taskstate-slack')]);
    expect(d.code).toBe(4);
    expect(d.stderr).toBe(`criu: task ${w.pid}: timer slack 123457 ns (PR_SET_TIMERSLACK) is not supported (a restored task has 50000 ns)\n`);
    expect(w.check()).toMatch(/^check ok/);
    w.kill();
  });

  it('seccomp: filters per thread and per process (a worker thread and a forked child with chains of their own), kill filters on munmap/setresuid/rseq not triggered by the restore, a child in strict mode still answering', () => {
    roundTrip('seccomp', ['strict'], (pid, st) => {
      expect(treePids(pid)).toHaveLength(3);
      expect(verdict(st, pid)).toBe('check ok');
    }, true, undefined, [], (dir, pid) => {
      // CRIU 4.2's layout: each thread's seccomp_filter names its oldest filter, prev the next one
      const filters = ourCritDecode(path.join(dir, 'seccomp.img')).entries[0].seccomp_filters as { filter: string; prev?: number; flags: number }[];
      const tcs = readdirSync(dir).filter((f) => /^core-\d+\.img$/.test(f)).map((f) => ourCritDecode(path.join(dir, f)).entries[0].thread_core as { seccomp_mode?: string; seccomp_filter?: number });
      const chainLength = (i: number) => { let n = 1; for (let f = filters[i]!; f.prev !== undefined; f = filters[f.prev]!) n++; return n; };
      const filtered = tcs.filter((t) => t.seccomp_mode === 'filter').map((t) => chainLength(t.seccomp_filter!)).sort();
      expect(filtered).toEqual([2, 2, 3]); // main A+B, worker A+C, child A+B+D
      expect(tcs.filter((t) => t.seccomp_mode === 'strict')).toHaveLength(1);
      // the child alone has all its threads on one chain: recorded with TSYNC, as CRIU does
      expect(filters.filter((f) => f.flags === 1)).toHaveLength(3);
      if (haveCrit) {
        const ref = critDecode(path.join(dir, 'seccomp.img')).entries[0].seccomp_filters as { prev?: number; flags: number }[];
        expect(ref.map((f) => [f.prev, f.flags])).toEqual(filters.map((f) => [f.prev, f.flags]));
        expect(critDecode(path.join(dir, `core-${pid}.img`)).entries[0].thread_core.seccomp_mode).toBe('filter');
      }
      // (the fingerprint taken once the tree is frozen: its strict-mode child and worker run on
      // and may write a page they shared copy-on-write between a print of the running tree and
      // the freeze, seen once under load)
    }, [], [], true);
  });

  it('blockread: a read blocked in a pipe is restarted and gets its byte', () =>
    roundTrip('blockread', [], (pid, st) => expect(verdict(st, pid, 20_000)).toBe('check ok n=1')));

  it('evpoll: eventfd counter, signalfd mask and an epoll watching them and a pipe, with its data', () =>
    roundTrip('evpoll', [], (pid, st) => expect(verdict(st, pid)).toBe('check ok ready=3')));

  it('timerfds: time left, interval, clock and expirations not yet read', () =>
    roundTrip('timerfds', [], (pid, st) => expect(verdict(st, pid)).toMatch(/^check ok left=9\d\d$/)));

  it('inotify: watches back under their numbers (1 and 3), on the same directory and file', () =>
    roundTrip('inotify', [tmp('inotify')], (pid, st) => expect(verdict(st, pid)).toBe('check ok wds=1,3')));

  it('tail -f: a real program following a file (inotify) prints what is appended after the restore', () => {
    const dir = tmp('tail');
    const log = path.join(dir, 'log');
    const out = path.join(dir, 'out');
    writeFileSync(log, 'one\n');
    let n = 0;
    roundTrip('launch', ['/bin/sh', '-c', `exec tail -n +1 -f ${log} > ${out}`], () => {
      const line = `after-restore-${++n}`;
      writeFileSync(log, `${line}\n`, { flag: 'a' });
      let text = '';
      for (let i = 0; i < 300 && !text.includes(line); i++) {
        sleep(10);
        text = readFileSync(out, 'utf8');
      }
      expect(text).toContain(line);
    }, true, () => existsSync(out) && readFileSync(out, 'utf8').includes('one'));
  });

  it('file locks (--file-locks): a flock, a POSIX range lock and an OFD lock are held again, twice', () => {
    const dir = tmp('locks');
    const w = startWorkload('locks', [dir]);
    const lockLines = (pid: number) =>
      readdirSync(`/proc/${pid}/fdinfo`).flatMap((f) => readFileSync(`/proc/${pid}/fdinfo/${f}`, 'utf8').split('\n').filter((l) => l.startsWith('lock:')))
        .map((l) => l.replace(/^lock:\s+\d+: /, '').replace(/\s+/g, ' ')).sort();
    const before = lockLines(w.pid);
    expect(before).toHaveLength(3);
    // without --file-locks the dump refuses (and the task runs on, its locks still held)
    const refused = criu(['dump', '-t', String(w.pid), '-D', tmp('locks-refused')]);
    expect(refused.code).toBe(1);
    expect(oneLine(refused.stderr)).toMatch(/lock is held; dump with --file-locks/);
    expect(lockLines(w.pid)).toEqual(before);
    for (let round = 0; round < 2; round++) {
      const img = tmp(`locks-${round}`);
      dump(w.pid, img, ['--file-locks']);
      expect(waitReaped(w.pid)).toBe(true);
      expect(spawnSync('flock', ['-n', path.join(dir, 'a'), 'true']).status).toBe(0); // free while nobody holds it
      const r = restore(img);
      mine.push(w.pid);
      expect(r.code, r.stderr).toBe(0);
      expect(lockLines(w.pid)).toEqual(before); // same kinds, ranges, pid, inodes
      expect(spawnSync('flock', ['-n', path.join(dir, 'a'), 'true']).status).toBe(1); // held again
      expect(verdict(w.state, w.pid)).toBe('check ok');
    }
  });

  it('sockpair: unix stream/dgram/seqpacket pairs, queued data both ways, a shut-down end, one end in a child', () =>
    roundTrip('sockpair', [], (pid, st) => {
      expect(treePids(pid)).toHaveLength(2);
      expect(verdict(st, pid)).toBe('check ok');
      expect(verdict(st, pid)).toBe('check ok');
    }));

  it('unixconn: connections to a path and an abstract listener (accepted, and one waiting in the queue), a datagram sender connected to a bound receiver, a listener whose file was unlinked, an end in a child', () => {
    const dir = tmp('unixconn');
    roundTrip('unixconn', [dir], (pid, st) => {
      expect(treePids(pid)).toHaveLength(2);
      // names (getsockname/getpeername), queued data, the waiting connection accepted, every connection live
      expect(verdict(st, pid)).toBe('check ok');
      expect(verdict(st, pid)).toBe('check ok');
      expect(readdirSync(dir).filter((f) => f.endsWith('.sock')).sort()).toEqual(['l.sock', 'r.sock']); // u.sock stays unlinked
    });
  });

  it('ghost: an unlinked file kept open (offset, mode, contents) and an unlinked file mapped shared', () => {
    const dir = tmp('ghost');
    roundTrip('ghost', [dir], (pid, st) => {
      expect(verdict(st, pid)).toBe('check ok');
      expect(readdirSync(dir)).toEqual([]); // nothing of the restore is left under a name
      expect(readlinkSync(`/proc/${pid}/fd/3`)).toBe(`${dir}/open.txt (deleted)`);
    });
  });

  it('ghost sparse: an 8 MiB unlinked file with holes, open and mapped (its data under the default --ghost-limit, which counts blocks, not size, as CRIU), kept in chunks per data extent: data, holes, size, mode, owner and times (µs) come back; the same with --ghost-fiemap (accepted: the extents found as without it)', () => {
    for (const dumpArgs of [[], ['--ghost-fiemap']]) {
      const dir = tmp('ghost-sparse');
      const us = (ns: bigint) => ns / 1000n;
      roundTrip('ghost', [dir, 'sparse'], (pid, st) => {
        // the workload's own verdict: the bytes, zeros in the holes, the SEEK_DATA/SEEK_HOLE map,
        // size, mode, times, st_blocks no more than it had
        expect(verdict(st, pid, 10_000)).toBe('check ok');
        expect(readdirSync(dir)).toEqual([]);
        expect(readlinkSync(`/proc/${pid}/fd/5`)).toBe(`${dir}/sparse.bin (deleted)`);
        const s = statSync(`/proc/${pid}/fd/5`, { bigint: true }); // (stat reads nothing: atime stays)
        expect({ size: s.size, mode: s.mode, uid: s.uid, nlink: s.nlink, atime: us(s.atimeNs), mtime: us(s.mtimeNs) })
          .toEqual({ size: 8n << 20n, mode: 0o100604n, uid: 0n, nlink: 0n, atime: 1111111111123456n, mtime: 1222222222987654n });
        expect(s.blocks).toBeLessThan(8n * 4096n / 512n); // the holes stayed holes
      }, true, undefined, [], (img) => {
        const heads = readdirSync(img).filter((f) => f.startsWith('ghost-file-')).map((f) => ({ f, doc: ourCritDecode(path.join(img, f)) }));
        const chunked = heads.filter((h) => h.doc.entries[0].chunks === true);
        expect(chunked).toHaveLength(1); // the small ones stay whole, as CRIU keeps them
        const doc = chunked[0]!.doc;
        expect(doc.entries[0]).toMatchObject({ size: 8 << 20, mode: 0o100604, atim: { tv_sec: 1111111111, tv_usec: 123456 }, mtim: { tv_sec: 1222222222, tv_usec: 987654 } });
        const chunks = (doc.entries.slice(1) as { off: number; len: number }[]).map((c) => [c.off, c.len]);
        expect(chunks.reduce((n, c) => n + c[1]!, 0)).toBeLessThan(64 << 10); // data only, no holes
        if (haveCrit) expect(critDecode(path.join(img, chunked[0]!.f))).toEqual(doc);
      }, dumpArgs);
    }
  });

  it('pages behind PROT_NONE (64 pages here and there in 8 MiB, which vmsplice cannot take): every byte and every protection come back (CRIU zdtm maps04)', () =>
    roundTrip('protnone', [], (pid, st) => expect(verdict(st, pid, 10_000)).toBe('check ok nonepages=64')));

  it('vector registers: ymm8/ymm15 and xmm12 and, on an AVX-512 CPU, zmm8/zmm15 (their upper halves), zmm16/zmm23/zmm31 and k1/k4/k7 keep their patterns through each dump and restore (the program compares them all the while)', () =>
    roundTrip('vecregs', [], (pid, st) => expect(verdict(st, pid, 10_000)).toMatch(/^check ok level=avx(512)? bad=0$/)));

  it('zombies: children the parent never reaped come back as zombies with their exit status and signal', () =>
    roundTrip('zombies', [], (pid, st) => {
      expect(treePids(pid)).toHaveLength(3);
      expect(verdict(st, pid)).toBe('check ok');
    }));

  it('zombies: a process group whose leader is gone lives on in its members (a zombie and a live child) after each restore, the leader still gone', () =>
    roundTrip('zombies', ['group'], (pid, st) => {
      expect(treePids(pid)).toHaveLength(5);
      // (the workload checks the members' group and that no process has the leader's pid)
      expect(verdict(st, pid)).toBe('check ok');
    }));

  it('zombies: a leaderless process group whose members have different parents comes back through a helper forked by its first member, after each restore', () =>
    roundTrip('zombies', ['group2'], (pid, st) => {
      expect(treePids(pid)).toHaveLength(6);
      expect(verdict(st, pid)).toBe('check ok');
    }));

  // (the fingerprint holds each task's session and group: NSsid, NSpgid)
  it('zombies: an orphan reparented to a subreaper from a session of its own, whose leader lives (zdtm child_subreaper_and_reparent), comes back in that session through a helper the leader forks', () =>
    roundTrip('zombies', ['session'], (pid, st) => {
      expect(treePids(pid)).toHaveLength(5);
      expect(verdict(st, pid)).toBe('check ok');
    }));

  it('zombies: orphans (a live one, a zombie) of a session whose leader is gone come back under their subreaper in that session and its group, through a helper with the leader\'s pid, gone again', () =>
    roundTrip('zombies', ['gone'], (pid, st) => {
      // (the workload checks that no process has the leader's pid)
      expect(treePids(pid)).toHaveLength(5);
      expect(verdict(st, pid)).toBe('check ok');
    }));

  it('zombies: the orphan of a zombie session leader (zdtm zombie_leader) comes back in its session, through a helper the zombie forks before it exits', () =>
    roundTrip('zombies', ['zleader'], (pid, st) => {
      expect(treePids(pid)).toHaveLength(5);
      expect(verdict(st, pid)).toBe('check ok');
    }));

  it('zombies: a task forked before its parent made a session of its own (left in the session above) comes back there: the parent forks it before its setsid (CRIU\'s born sid)', () =>
    roundTrip('zombies', ['born'], (pid, st) => {
      expect(treePids(pid)).toHaveLength(5);
      expect(verdict(st, pid)).toBe('check ok');
    }));

  it('shmem: MAP_SHARED|MAP_ANONYMOUS memory comes back with its pages and still shared by parent and child', () =>
    roundTrip('shmem', ['shm'], (pid, st) => {
      expect(treePids(pid)).toHaveLength(2);
      const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
      expect(maps).toMatch(/ rw-s 00000000 00:\w+ \d+\s+\/dev\/zero \(deleted\)/);
      expect(verdict(st, pid)).toBe('check ok');
      expect(verdict(st, pid)).toBe('check ok'); // twice: a new token goes round again
    }));

  it('memfd: names, seals, sizes with a hole, positions and flags back on the shmem filesystem; descriptors and shared mappings in parent and child on one object; a private mapping', () =>
    roundTrip('memfd', [], (pid, st) => {
      const child = treePids(pid).filter((p) => p !== pid);
      expect(child).toHaveLength(1);
      // the workload's own verdict: contents, hole, size, seals (F_GET_SEALS), positions, flags, link text, f_type
      expect(verdict(st, pid)).toBe('check ok');
      expect(verdict(st, pid)).toBe('check ok'); // twice: a new token goes round through the child again
      expect(readlinkSync(`/proc/${pid}/fd/3`)).toBe('/memfd:crtools data (deleted)');
      // one inode for the descriptors and the shared mappings of both tasks
      const inode = (p: number, fd: number) => statSync(`/proc/${p}/fd/${fd}`).ino;
      const mapped = (p: number) => Number(/ rw-s 00000000 00:\w+ (\d+)\s+\/memfd:crtools data \(deleted\)/.exec(readFileSync(`/proc/${p}/maps`, 'utf8'))?.[1]);
      expect(inode(child[0]!, 3)).toBe(inode(pid, 3));
      expect(mapped(pid)).toBe(inode(pid, 3));
      expect(mapped(child[0]!)).toBe(inode(pid, 3));
      expect(readFileSync(`/proc/${pid}/maps`, 'utf8')).toMatch(/ rw-p 00000000 00:\w+ \d+\s+\/memfd:plain \(deleted\)/);
    }));

  it('shmemfd: shared anonymous memory held by descriptors (opened on map_files) and mapped private and shared through them comes back as that one object', () =>
    roundTrip('shmemfd', [], (pid, st) => {
      // the workload's own verdict: link text, f_type, flags, position, size, mode, contents; the
      // private mapping's written page its own, its untouched pages still the object's
      expect(verdict(st, pid)).toBe('check ok');
      expect(verdict(st, pid)).toBe('check ok');
      const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
      const ino = (re: RegExp) => [...maps.matchAll(re)].map((m) => Number(m[1]));
      const shared = ino(/ rw-s [0-9a-f]+ 00:\w+ (\d+)\s+\/dev\/zero \(deleted\)/g);
      const priv = ino(/ rw-p 00001000 00:\w+ (\d+)\s+\/dev\/zero \(deleted\)/g);
      expect(shared).toHaveLength(2);
      expect(priv).toHaveLength(1);
      // one inode: both shared areas, the private one and descriptor 3 (A)
      expect(new Set([...shared, ...priv, statSync(`/proc/${pid}/fd/3`).ino]).size).toBe(1);
      expect(readlinkSync(`/proc/${pid}/fd/4`)).toBe('/dev/zero (deleted)');
    }, true, undefined, [], (dir, pid) => {
      // as CRIU 4.2 writes them (decoded by Debian's crit): memfd.img inodes named /dev/zero,
      // MEMFD files naming them, the private area VMA_AREA_MEMFD | VMA_FILE_PRIVATE naming the
      // same file as the shared ones
      const inodes = (critDecode(path.join(dir, 'memfd.img')) as { entries: { name: string; size: number }[] }).entries;
      expect(inodes.map((m) => [m.name, Number(m.size)]).sort((x, y) => Number(x[1]) - Number(y[1]))).toEqual([['/dev/zero', 5], ['/dev/zero', 5 * 4096]]);
      const vmas = (critDecode(path.join(dir, `mm-${pid}.img`)).entries[0].vmas as { pgoff: number; shmid: number; status: number; flags: number }[])
        .filter((v) => v.status & VMA_AREA_MEMFD);
      expect(vmas).toHaveLength(3);
      const priv = vmas.filter((v) => v.status & VMA_FILE_PRIVATE);
      expect(priv.map((v) => Number(v.pgoff))).toEqual([4096]);
      expect(new Set(vmas.map((v) => v.shmid)).size).toBe(1);
      const files = (critDecode(path.join(dir, 'files.img')).entries as { type: string; id: number }[]).filter((f) => f.type === 'MEMFD');
      expect(files.map((f) => f.id)).toContain(vmas[0]!.shmid);
    }));

  it('memfd: a program run from a memfd (fexecve) is refused by name at dump, and runs on', () => {
    const w = startWorkload('launch', ['/usr/bin/python3', '-c', [
      'import os',
      'fd = os.memfd_create("sleeper", 0)',
      'os.write(fd, open("/bin/sleep", "rb").read())',
      'os.execv(f"/proc/self/fd/{fd}", ["sleep", "60"])',
    ].join('\n')]);
    for (let i = 0; i < 500 && !readlinkSync(`/proc/${w.pid}/exe`).startsWith('/memfd:'); i++) sleep(10);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('memfd-exec')]);
    expect(d.code).toBe(4);
    expect(d.stderr).toBe(`criu: task ${w.pid}: an executable run from a memfd (memfd:sleeper) is not supported yet\n`);
    expect(alive(w.pid)).toBe(true);
    w.kill();
  });

  it('shloop (sh -c loop via launch): the shell keeps forking children after restore', () => {
    // (a new child every 0.1 s: the tree changes shape as it runs, no fingerprint holds it)
    roundTrip('launch', ['/bin/sh', '-c', 'while :; do sleep 0.1; done'], (pid) => {
      const first = treePids(pid).slice(1);
      sleep(400);
      const later = treePids(pid).slice(1);
      expect(alive(pid)).toBe(true);
      expect(later.length).toBeGreaterThan(0);
      expect(later).not.toEqual(first);
    }, true, undefined, null);
  });

  // real interpreters, unchanged: each counts into a file; after every restore the count goes on
  function counting(prog: string, args: (file: string) => string[], frozen = false) {
    const file = path.join(tmp(`count-${path.basename(prog)}`), 'count');
    // the programs rewrite the file in place (truncate, then write): a read can fall between the
    // two and see it empty, so an empty read is read again
    const count = () => {
      for (let i = 0; i < 50; i++) {
        try {
          const text = readFileSync(file, 'utf8');
          if (text !== '') return Number(text) || 0;
        } catch {
          /* not written yet */
        }
        sleep(2);
      }
      return 0;
    };
    roundTrip(
      'launch',
      [prog, ...args(file)],
      (pid) => {
        const a = count();
        sleep(600);
        expect(alive(pid)).toBe(true);
        expect(count()).toBeGreaterThan(a);
      },
      false,
      () => count() > 0,
      // frozen: a program whose bytes are always in flight (a socketserver's client talks all
      // the time): fingerprints of the frozen tree and of the tree restored stopped
      [], undefined, [], [], frozen,
    );
  }

  it('python3: a time.sleep loop writing a counter', () =>
    counting('/usr/bin/python3', (f) => ['-c', `import time\nn = 0\nwhile True:\n    n += 1\n    open(${JSON.stringify(f)}, "w").write(str(n))\n    time.sleep(0.05)`]));

  it('python3: unix sockets made and never bound nor connected (stream, datagram, seqpacket) come back as they were', () =>
    counting('/usr/bin/python3', (f) => ['-c', `import socket, time\ns = [socket.socket(socket.AF_UNIX, t) for t in (1, 2, 5)]\ns[1].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 50000)\nn = 0\nwhile all(x.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == t for x, t in zip(s, (1, 2, 5))):\n    n += 1\n    open(${JSON.stringify(f)}, "w").write(str(n))\n    time.sleep(0.05)`]));

  it('python3: a memfd held open (sealed against writes) comes back with its name, contents and seals; the loop checking them counts on', () =>
    counting('/usr/bin/python3', (f) => ['-c', [
      'import fcntl, os, time',
      'fd = os.memfd_create("crt-test", os.MFD_ALLOW_SEALING)',
      'os.write(fd, b"x" * 100)',
      'fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE)',
      'n = 0',
      `while os.pread(fd, 200, 0) == b"x" * 100 and fcntl.fcntl(fd, fcntl.F_GET_SEALS) == fcntl.F_SEAL_WRITE and os.readlink(f"/proc/self/fd/{fd}") == "/memfd:crt-test (deleted)":`,
      '    n += 1',
      `    open(${JSON.stringify(f)}, "w").write(str(n))`,
      '    time.sleep(0.05)',
    ].join('\n')]));

  it('a task of another user (nobody): dumped with the default page transfer, restored as that user', () => {
    const dir = tmp('nobody');
    chmodSync(dir, 0o777);
    const ready = path.join(dir, 'ready');
    const prog = `import os, time\nos.setgid(65534)\nos.setuid(65534)\nopen(${JSON.stringify(ready)}, "w").write("ok")\nwhile True: time.sleep(0.1)`;
    roundTrip('launch', ['/usr/bin/python3', '-c', prog], (pid) => {
      expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/\nUid:\s+65534\s+65534\s+65534\s+65534\n/);
    }, false, () => existsSync(ready));
  });

  it('python3 asyncio: an event loop (epoll and its self-pipe socketpair) writing a counter', () =>
    counting('/usr/bin/python3', (f) => ['-c', `import asyncio\nasync def main():\n    n = 0\n    while True:\n        n += 1\n        open(${JSON.stringify(f)}, "w").write(str(n))\n        await asyncio.sleep(0.05)\nasyncio.run(main())`]));

  it('python3 TCP server: its listening socket (TCP_NODELAY and keepalive times set, as memcached sets them; and an IPv6 UDP one) come back bound, it serves again', () => {
    const dir = tmp('server');
    const portFile = path.join(dir, 'port');
    const prog = [
      'import socket',
      's = socket.socket()',
      's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      's.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)',
      's.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 600)',
      's.bind(("127.0.0.1", 0))',
      's.listen(5)',
      'u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)',
      'u.bind(("::1", 0))',
      `open(${JSON.stringify(portFile)}, "w").write("%d %d" % (s.getsockname()[1], u.getsockname()[1]))`,
      'while True:',
      '    c, _ = s.accept()',
      // (an accepted connection takes the listener's TCP_NODELAY)
      '    c.sendall(b"hello %d %d\\n" % (u.getsockname()[1], c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))',
      '    c.close()',
    ].join('\n');
    const ask = (port: number) =>
      spawnSync('/usr/bin/python3', ['-c', `import socket; s = socket.create_connection(("127.0.0.1", ${port}), timeout=5); print(s.recv(100).decode().strip())`], { encoding: 'utf8', timeout: 10_000 }).stdout.trim();
    roundTrip(
      'launch',
      ['/usr/bin/python3', '-c', prog],
      () => {
        const [tcp, udp] = readFileSync(portFile, 'utf8').split(' ').map(Number);
        expect(ask(tcp!)).toBe(`hello ${udp} 1`);
      },
      false,
      () => existsSync(portFile),
    );
  });

  it('socket options: keepalive and its TCP timers, linger, timeouts, priority, a filter, the buffer lock; one the format cannot keep is refused by name', () => {
    const dir = tmp('sockopts');
    const ready = path.join(dir, 'ready');
    const prog = (extra: string) => [
      'import socket, struct, time',
      's = socket.socket()',
      's.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)',
      's.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 77)',
      's.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4)',
      's.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 9))',
      's.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 3, 250000))',
      's.setsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY, 5)',
      's.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)',
      // a classic BPF filter accepting everything: ret #0xffff
      'import ctypes',
      'insns = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0xffff))',
      's.setsockopt(socket.SOL_SOCKET, 26, struct.pack("HL", 1, ctypes.addressof(insns)))',
      'u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      'u.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)',
      'u.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)',
      `u.bind("\\0crtools-sockopts-${process.pid}")`,
      extra,
      's.bind(("127.0.0.1", 0))',
      's.listen(2)',
      `open(${JSON.stringify(ready)}, "w").write("ok")`,
      'while True: time.sleep(1)',
    ].join('\n');
    // carried: the fingerprint of the round trip compares every option of both sockets
    roundTrip('launch', ['/usr/bin/python3', '-c', prog('')], () => expect(existsSync(ready)).toBe(true), false, () => existsSync(ready));
    rmSync(ready);
    // TCP_DEFER_ACCEPT on a listening socket (nginx's "deferred"): the format has no field for it
    const w = startWorkload('launch', ['/usr/bin/python3', '-c', prog('s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 5)')]);
    for (let i = 0; i < 500 && !existsSync(ready); i++) sleep(10);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('sockopts-img')]);
    expect(d.code).toBe(4);
    expect(d.stderr).toMatch(new RegExp(`^criu: task ${w.pid} fd \\d+: socket option TCP_DEFER_ACCEPT is not supported \\(set to \\d+, a new socket has 0\\)\\n$`));
    expect(alive(w.pid)).toBe(true);
    w.kill();
  });

  it('python3 unix server: a named listening socket (stale socket file replaced) and an abstract datagram one', () => {
    const dir = tmp('userver');
    const sock = path.join(dir, 'srv.sock');
    const prog = [
      'import socket',
      'd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      `d.bind("\\0crtools-test-${process.pid}")`,
      's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
      `s.bind(${JSON.stringify(sock)})`,
      's.listen(3)',
      'while True:',
      '    c, _ = s.accept()',
      '    c.sendall(b"unix hello " + d.getsockname()[1:])',
      '    c.close()',
    ].join('\n');
    const ask = () =>
      spawnSync('/usr/bin/python3', ['-c', `import socket; s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(${JSON.stringify(sock)}); print(s.recv(100).decode())`], { encoding: 'utf8', timeout: 10_000 }).stdout.trim();
    roundTrip('launch', ['/usr/bin/python3', '-c', prog], () => expect(ask()).toBe(`unix hello crtools-test-${process.pid}`), false, () => existsSync(sock));
  });

  it('python3 socketserver: a UnixStreamServer thread serving a client of the same process, which goes on talking to it', () =>
    counting('/usr/bin/python3', (f) => ['-c', [
      'import os, socket, socketserver, threading, time',
      `f = ${JSON.stringify(f)}`,
      'p = os.path.join(os.path.dirname(f), "srv.sock")',
      'class H(socketserver.StreamRequestHandler):',
      '    def handle(self):',
      '        for line in self.rfile:',
      '            self.wfile.write(line.upper())',
      'srv = socketserver.UnixStreamServer(p, H)',
      'threading.Thread(target=srv.serve_forever, daemon=True).start()',
      'c = socket.socket(socket.AF_UNIX)',
      'c.connect(p)',
      'r = c.makefile("rb")',
      'n = 0',
      'while True:',
      '    c.sendall(b"ping\\n")',
      '    if r.readline() == b"PING\\n" and c.getpeername() == p:',
      '        n += 1',
      '        open(f, "w").write(str(n))',
      '    time.sleep(0.05)',
    ].join('\n')], true));

  it('node: a setInterval program (libuv: epoll, eventfds, pipes, worker threads)', () =>
    counting(process.execPath, (f) => ['-e', `let n = 0; setInterval(() => require('fs').writeFileSync(${JSON.stringify(f)}, String(++n)), 50)`]));

  it('-s leaves every task stopped; SIGCONT resumes it', () => {
    const w = startWorkload('pattern', ['2']);
    const dir = tmp('rt-stopped');
    dump(w.pid, dir);
    expect(waitReaped(w.pid)).toBe(true);
    const r = restore(dir, ['-s']);
    mine.push(w.pid);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(`/proc/${w.pid}/stat`, 'utf8')).toMatch(/\) T /);
    process.kill(w.pid, 'SIGCONT');
    expect(verdict(w.state, w.pid, 10_000)).toBe('check ok bad=0');
  });

  it('-S restores the root as a sibling of criu; -o writes the log in the images dir', () => {
    const w = startWorkload('pattern', ['1']);
    const dir = tmp('rt-sibling');
    dump(w.pid, dir);
    expect(waitReaped(w.pid)).toBe(true);
    const criuJs = path.resolve(workloadBinDir, '../../packages/cli/bin/criu.js');
    const r = spawnSync('sh', ['-c', `${process.execPath} ${criuJs} restore -D ${dir} -S -d -o restore.log -v4; echo parent=$$`], { encoding: 'utf8', timeout: 30_000 });
    mine.push(w.pid);
    expect(r.status, r.stderr).toBe(0);
    const sh = Number(/parent=(\d+)/.exec(r.stdout)?.[1]);
    expect(sh).toBeGreaterThan(1);
    expect(readFileSync(path.join(dir, 'restore.log'), 'utf8')).toMatch(/Restored 1 task\(s\), root \d+/);
    expect(verdict(w.state, w.pid)).toBe('check ok bad=0');
  });

  it('without -d criu waits for the root and reports its exit', () => {
    const w = startWorkload('pattern', ['1']);
    const dir = tmp('rt-wait');
    dump(w.pid, dir);
    expect(waitReaped(w.pid)).toBe(true);
    // (the signal once the restore is done: its pidfile written; a fixed delay races a slow restore)
    const child = spawnSync('sh', ['-c', `( while [ ! -s ${dir}/root.pid ]; do sleep 0.05; done; kill -TERM ${w.pid} ) & exec ${process.execPath} ${path.resolve(workloadBinDir, '../../packages/cli/bin/criu.js')} restore -D ${dir} --pidfile ${dir}/root.pid`], { encoding: 'utf8', timeout: 60_000 });
    expect(child.status).toBe(128 + 15);
    expect(readFileSync(`${dir}/root.pid`, 'utf8')).toBe(String(w.pid));
    expect(waitReaped(w.pid)).toBe(true);
  });
});

describe('--inherit-fd: files outside the checkpoint handed over by the caller', () => {
  const criuJs = path.resolve(workloadBinDir, '../../packages/cli/bin/criu.js');
  /** criu restore with `fd` of ours as its descriptor 3 */
  const restoreWith = (dir: string, fd: number, resource: string) =>
    spawnSync(process.execPath, [criuJs, 'restore', '-D', dir, '-d', '--inherit-fd', `fd[3]:${resource}`], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe', fd] });
  /** every task of a checkpoint gone (reaped), so that its pids are free for the restore */
  const pidsFree = (img: string) => {
    for (const p of (ourCritDecode(path.join(img, 'pstree.img')).entries as { pid: number }[]).map((e) => e.pid)) expect(waitReaped(p)).toBe(true);
  };
  const waitFor = (pred: () => boolean) => {
    for (let i = 0; i < 500 && !pred(); i++) sleep(10);
    return pred();
  };
  /**
   * sh (outside) ─┬─ setsid LOOP (dumped: its own session)  ─pipe→  cat > dir/out (outside): the
   * loop and cat once the loop's first tick is in out (the starter and cat are killed at the end)
   */
  const pipedLoop = (dir: string, loopCmd: string): { loop: number; cat: number; out: string } => {
    const out = path.join(dir, 'out');
    const outer = spawnSync('sh', ['-c', `setsid sh -c 'cd ${dir}; setsid ${loopCmd} | cat > ${out}' </dev/null >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' });
    const starter = Number(outer.stdout.trim());
    let loop = 0;
    let cat = 0;
    expect(waitFor(() => {
      try {
        for (const k of childrenOf(starter)) {
          if (readFileSync(`/proc/${k}/comm`, 'utf8').trim() === 'cat') cat = k;
          else loop = k;
        }
      } catch {
        /* still starting */
      }
      return loop > 0 && cat > 0 && existsSync(out) && readFileSync(out, 'utf8').includes('tick');
    })).toBe(true);
    mine.push(starter, cat);
    return { loop, cat, out };
  };

  it('pipe:[ino]: a loop writing into a pipe read by a process outside the tree writes into that same pipe again', () => {
    const dir = tmp('inherit-pipe');
    const { loop, cat, out } = pipedLoop(dir, `sh -c "while :; do echo tick; sleep 0.05; done"`);
    const pipe = readlinkSync(`/proc/${loop}/fd/1`);
    expect(pipe).toMatch(/^pipe:\[\d+\]$/);
    // a write end of ours keeps the pipe (and cat) alive while the loop is gone
    const w = openSync(`/proc/${cat}/fd/0`, 'w');
    try {
      const img = tmp('inherit-pipe-img');
      dump(loop, img);
      expect(waitReaped(loop)).toBe(true);
      pidsFree(img);
      const before = readFileSync(out, 'utf8').length;
      const r = restoreWith(img, w, pipe);
      mine.unshift(loop);
      expect(r.status, r.stderr).toBe(0);
      expect(readlinkSync(`/proc/${loop}/fd/1`)).toBe(pipe); // the very pipe, not a new one
      expect(waitFor(() => readFileSync(out, 'utf8').length > before + 20)).toBe(true);
    } finally {
      closeSync(w);
    }
  });

  it("pipe:[ino] handed over by either end: the task gets an open file of its own on it with the flags it had (O_WRONLY|O_NONBLOCK), the caller's keeps its own (CRIU's test/others/pipes)", () => {
    const dir = tmp('inherit-pipe-flags');
    // the loop: python, its stdout non-blocking
    const loopPy = path.join(dir, 'loop.py');
    writeFileSync(loopPy, 'import fcntl, os, time\nfcntl.fcntl(1, fcntl.F_SETFL, fcntl.fcntl(1, fcntl.F_GETFL) | os.O_NONBLOCK)\nwhile True:\n    try:\n        os.write(1, b"tick\\n")\n    except BlockingIOError:\n        pass\n    time.sleep(0.05)\n');
    const { loop } = pipedLoop(dir, `/usr/bin/python3 ${loopPy}`);
    const fdFlags = (pid: number, fd: number) => parseInt(/^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))![1]!, 8);
    const O_NONBLOCK = 0o4000;
    expect(fdFlags(loop, 1) & (O_NONBLOCK | 3)).toBe(O_NONBLOCK | 1);
    const pipe = readlinkSync(`/proc/${loop}/fd/1`);
    const img = tmp('inherit-pipe-flags-img');
    dump(loop, img);
    expect(waitReaped(loop)).toBe(true);
    pidsFree(img);
    // a pipe of ours (a FIFO's), handed over by its read end (CRIU's pipes -r): the task gets a
    // write end of its own on it, non-blocking as it was; ours stays a read end
    const fifo = path.join(dir, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const ours = openSync(fifo, constants.O_RDONLY | O_NONBLOCK);
    try {
      const r = restoreWith(img, ours, pipe);
      mine.unshift(loop);
      expect(r.status, r.stderr).toBe(0);
      expect(readlinkSync(`/proc/${loop}/fd/1`)).toBe(fifo);
      expect(fdFlags(loop, 1) & (O_NONBLOCK | 3)).toBe(O_NONBLOCK | 1);
      expect(fdFlags(process.pid, ours) & (O_NONBLOCK | 3)).toBe(O_NONBLOCK);
      const buf = Buffer.alloc(64);
      // (waitFor asks once more at the end: what was read is kept)
      let got = 0;
      expect(waitFor(() => {
        try {
          got ||= readSync(ours, buf, 0, 64, null);
        } catch {
          /* EAGAIN: nothing written yet */
        }
        return got > 0;
      })).toBe(true);
      expect(buf.toString()).toMatch(/^tick\n/);
    } finally {
      closeSync(ours);
    }
  });

  it('a path: a log file gone since the dump is replaced by the file the caller opened', () => {
    const dir = tmp('inherit-file');
    const log = path.join(dir, 'log');
    const w = startWorkload('launch', ['/bin/sh', '-c', `exec > ${log}; while :; do echo tick; sleep 0.05; done`]);
    expect(waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes('tick'))).toBe(true);
    const img = tmp('inherit-file-img');
    dump(w.pid, img);
    expect(waitReaped(w.pid)).toBe(true);
    pidsFree(img);
    rmSync(log);
    const r0 = restore(img);
    expect(r0.code).not.toBe(0);
    expect(oneLine(r0.stderr)).toMatch(/no longer exists/);
    const fresh = path.join(dir, 'fresh');
    const fd = openSync(fresh, 'w');
    try {
      const r = restoreWith(img, fd, log.slice(1));
      mine.push(w.pid);
      expect(r.status, r.stderr).toBe(0);
    } finally {
      closeSync(fd);
    }
    expect(waitFor(() => readFileSync(fresh, 'utf8').includes('tick'))).toBe(true);
    expect(readlinkSync(`/proc/${w.pid}/fd/1`)).toBe(fresh);
  });

  it('a malformed argument, or a descriptor that is not open, is a usage error', () => {
    const dir = tmp('inherit-bad');
    for (const arg of ['fd3:pipe:[1]', 'fd[x]:a', 'fd[3]:']) {
      const r = criu(['restore', '-D', dir, '--inherit-fd', arg]);
      expect(r.code).toBe(1);
      expect(oneLine(r.stderr)).toMatch(/invalid --inherit-fd argument/);
    }
    const r = criu(['restore', '-D', dir, '--inherit-fd', 'fd[999]:pipe:[1]']);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toMatch(/descriptor 999 is not open/);
  });
});

describe('-j/--shell-job: a job of a shell, its session led from outside the tree', () => {
  it('dump refuses it without -j (and leaves it running); with -j it restores into criu\'s session and group', () => {
    const dir = tmp('shell-job');
    // a background job of a shell that exits: its session and group stay the shell's
    const r0 = spawnSync('sh', ['-c', `cd ${dir}; exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; /bin/sleep 1000 </dev/null >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' });
    const pid = Number(r0.stdout.trim());
    mine.push(pid);
    for (let i = 0; i < 100 && !existsSync(`/proc/${pid}`); i++) sleep(10);
    const stat = () => readFileSync(`/proc/${pid}/stat`, 'utf8').slice(readFileSync(`/proc/${pid}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
    const [, , pgid0, sid0] = stat().map(Number);
    expect(sid0).not.toBe(pid);
    const img = tmp('shell-job-img');
    const d0 = criu(['dump', '-t', String(pid), '-D', img]);
    expect(d0.code).toBe(1);
    expect(oneLine(d0.stderr)).toMatch(new RegExp(`root process ${pid} is not a session leader .*--shell-job`));
    expect(alive(pid)).toBe(true);
    expect(stat()[0]).not.toBe('T'); // not left stopped
    const d = criu(['dump', '-t', String(pid), '-D', img, '-j']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(pid)).toBe(true);
    const criuJs = path.resolve(workloadBinDir, '../../packages/cli/bin/criu.js');
    // criu runs in a session of its own (setsid): the job must not restore without -j there
    const r = spawnSync('setsid', ['-w', 'sh', '-c', `${process.execPath} ${criuJs} restore -D ${img} -d; echo rc=$?; ${process.execPath} ${criuJs} restore -D ${img} -d -j; echo rc=$?; echo me=$$`], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout).toMatch(/rc=1\nrc=0\n/);
    expect(r.stderr).toMatch(new RegExp(`root task ${pid} was not a session leader .*--shell-job`));
    const me = Number(/me=(\d+)/.exec(r.stdout)?.[1]);
    const [, , pgid, sid] = stat().map(Number);
    expect([pgid, sid]).toEqual([me, me]); // criu's group and session, as CRIU does
    expect(pgid0).not.toBe(me);
    expect(alive(pid)).toBe(true);
  });
});

describe('failures: one clear line, non-zero exit, nothing left running', () => {
  function dumped(keep = false) {
    const w = startWorkload('pattern', ['1']);
    const dir = tmp('bad');
    dump(w.pid, dir, keep ? ['-R'] : []);
    if (!keep) expect(waitReaped(w.pid)).toBe(true);
    return { w, dir };
  }

  it('a pid already in use is named', () => {
    const { w, dir } = dumped(true);
    const r = restore(dir);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toBe(`criu: pid ${w.pid} is already in use; the checkpoint needs it`);
    expect(verdict(w.state, w.pid)).toBe('check ok bad=0'); // the original is untouched
    w.kill();
  });

  it('a pid held by a process the dump killed and nobody reaped yet (a zombie for a second) is waited for: the restore right after the dump takes it', () => {
    // a parent that reaps its killed child a second after it died, as an init or subreaper may
    const py = [
      'import os, sys, time',
      'c = os.fork()',
      'if c == 0:',
      '    os.setsid(); os.execvp("sleep", ["sleep", "1000"])',
      'while open(f"/proc/{c}/stat").read().rsplit(")", 1)[1].split()[0] != "Z": time.sleep(0.01)',
      'time.sleep(1.0); os.waitpid(c, 0); time.sleep(100)',
    ].join('\n');
    const holder = spawn('/usr/bin/python3', ['-c', py], { stdio: 'ignore' });
    let pid = 0;
    try {
      const child = () => Number(readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8').trim());
      for (let i = 0; i < 500 && !child(); i++) sleep(10);
      pid = child();
      for (let i = 0; i < 500 && !(existsSync(`/proc/${pid}/exe`) && readlinkSync(`/proc/${pid}/exe`).endsWith('/sleep')); i++) sleep(10);
      const dir = tmp('zombie-pid');
      dump(pid, dir);
      expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/\) [ZX] /);
      const r = restore(dir);
      expect(r.code, r.stderr).toBe(0);
      expect(readlinkSync(`/proc/${pid}/exe`)).toMatch(/\/sleep$/);
    } finally {
      if (pid) killTree(pid);
      holder.kill('SIGKILL');
    }
  });

  it('a truncated core image', () => {
    const { w, dir } = dumped();
    const f = path.join(dir, `core-${w.pid}.img`);
    truncateSync(f, Math.floor(statSync(f).size / 2));
    const r = restore(dir);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toMatch(/core-\d+\.img at byte \d+: .*runs past the end of the file/);
    expect(existsSync(`/proc/${w.pid}`)).toBe(false);
  });

  it('a corrupt mm image', () => {
    const { w, dir } = dumped();
    const f = path.join(dir, `mm-${w.pid}.img`);
    const b = readFileSync(f);
    for (let i = 12; i < b.length; i += 7) b[i] = 0xff;
    writeFileSync(f, b);
    const r = restore(dir);
    expect(r.code).not.toBe(0);
    oneLine(r.stderr);
    expect(existsSync(`/proc/${w.pid}`)).toBe(false);
  });

  it('a truncated pages image is caught before any process starts', () => {
    const { w, dir } = dumped();
    truncateSync(path.join(dir, 'pages-1.img'), 4096);
    const r = restore(dir);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toMatch(/pages-1\.img: holds 4096 bytes, .*pagemap-\d+\.img needs \d+/);
    expect(existsSync(`/proc/${w.pid}`)).toBe(false);
  });

  it('shared memory whose pages are missing or truncated is caught before any process starts', () => {
    const w = startWorkload('shmem', ['shm']);
    const dir = tmp('bad-shm');
    dump(w.pid, dir);
    expect(waitReaped(w.pid)).toBe(true);
    const pm = readdirSync(dir).find((f) => /^pagemap-shmem-\d+\.img$/.test(f))!;
    // its pages image: the one its pagemap head names
    const pagesId = ourCritDecode(path.join(dir, pm)).entries[0].pages_id;
    const pages = path.join(dir, `pages-${pagesId}.img`);
    const saved = readFileSync(pages);
    truncateSync(pages, 4096);
    let r = restore(dir);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toMatch(new RegExp(`pages-${pagesId}\\.img: holds 4096 bytes`));
    writeFileSync(pages, saved);
    rmSync(path.join(dir, pm));
    r = restore(dir);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toMatch(/pagemap-shmem-\d+\.img: image missing/);
    expect(existsSync(`/proc/${w.pid}`)).toBe(false);
  });

  it('a file the checkpoint maps no longer exists', () => {
    const data = path.join(tmp('gone'), 'data');
    const w = startWorkload('filemap', [data]);
    const dir = tmp('bad-missing');
    dump(w.pid, dir);
    expect(waitReaped(w.pid)).toBe(true);
    rmSync(data);
    const r = restore(dir);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toContain(`${data} no longer exists`);
    expect(existsSync(`/proc/${w.pid}`)).toBe(false);
  });

  it('a missing images directory; without -D the current directory (as CRIU), here holding no checkpoint', () => {
    const r = restore('/nonexistent/images');
    expect(r.code).toBe(3);
    oneLine(r.stderr);
    const u = criu(['restore']);
    expect(u.code).toBe(3);
    expect(oneLine(u.stderr)).toMatch(/inventory\.img/);
  });
});
