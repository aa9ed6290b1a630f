import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectTaskState, freezeProcess, listThreads, readMemory, resumeProcess, spawnDetached } from '../src/index.js';

const root = process.getuid?.() === 0;
const started: number[] = [];
afterAll(() => {
  for (const p of started) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

function status(pid: number): Record<string, string> {
  const o: Record<string, string> = {};
  for (const l of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = l.indexOf(':');
    if (i > 0) o[l.slice(0, i)] = l.slice(i + 1).trim();
  }
  return o;
}

/** The task's state once it has gone back to sleep (a resumed thread may not have run yet: R), or after 1 s. */
function asleepAgain(pid: number): string {
  let st = '';
  for (let i = 0; i < 200; i++) {
    st = status(pid)['State'] ?? '';
    if (st.startsWith('S')) break;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
  }
  return st;
}

describe.skipIf(!root)('live: seize, infect, collect, cure, resume (needs root for ptrace)', () => {
  it('a detached /bin/sleep: registers, sigactions, misc; resumed untraced and unchanged', () => {
    const pid = spawnDetached('/bin/sleep', ['sleep', '1000']);
    started.push(pid);
    // wait for the exec to land
    for (let i = 0; i < 200 && !readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('sleep'); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    const mapsBefore = readFileSync(`/proc/${pid}/maps`, 'utf8');
    const fdsBefore = readdirSync(`/proc/${pid}/fd`).sort();
    const threads = freezeProcess(pid);
    try {
      expect(threads.map((t) => t.tid)).toEqual(listThreads(pid));
      expect(status(pid)['TracerPid']).toBe(String(process.pid));
      const st = collectTaskState(pid, threads);
      expect(st.threads).toHaveLength(1);
      expect(st.threads[0]!.regs.orig_ax).toBe(230n); // clock_nanosleep
      expect(st.sigactions).toHaveLength(62);
      expect(st.sigactions.map((s) => s.sig)).not.toContain(9);
      expect(st.misc.brk).toBeGreaterThan(0n);
      expect(st.misc.dumpable).toBe(1);
      expect(st.threads[0]!.misc.sas.ss_flags).toBe(2); // SS_DISABLE
      // what the thread told of itself: its name, nice value and (not real-time) priority, as /proc's stat has them
      expect(st.threads[0]!.misc.comm).toBe(readFileSync(`/proc/${pid}/comm`, 'utf8').trimEnd());
      expect(st.threads[0]!.misc.nice).toBe(Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]));
      expect(st.threads[0]!.misc.rtPriority).toBe(0);
      expect(st.threads[0]!.tls).toHaveLength(3);
      // the parasite area and the shared memfd mapping are gone again, the fd table untouched
      expect(readFileSync(`/proc/${pid}/maps`, 'utf8')).toBe(mapsBefore);
      expect(readdirSync(`/proc/${pid}/fd`).sort()).toEqual(fdsBefore);
      // process_vm_readv into a caller buffer
      const stackLine = mapsBefore.split('\n').find((l) => l.endsWith('[stack]'))!;
      const start = BigInt(`0x${stackLine.split('-')[0]}`);
      const buf = Buffer.alloc(8192);
      expect(readMemory(pid, start, buf)).toBe(8192);
    } finally {
      resumeProcess(threads);
    }
    // back to its interrupted clock_nanosleep (restarted by the kernel), not woken for good
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    const s = status(pid);
    expect(s['TracerPid']).toBe('0');
    expect(s['State']).toMatch(/^S/);
  });

  it('seizing a missing pid fails with a Node-shaped ESRCH/ENOENT error', () => {
    expect(() => freezeProcess(999999999)).toThrow(/no process|ESRCH/);
  });
});

describe.skipIf(!root)('live: the shared memfd area', () => {
  it('is mapped in both processes while infected, and gone after cure', async () => {
    const { prepare, infect, cure } = await import('../src/remote.js');
    const pid = spawnDetached('/bin/sleep', ['sleep', '1000']);
    started.push(pid);
    for (let i = 0; i < 200 && !readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('sleep'); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    const threads = freezeProcess(pid);
    try {
      const inf = prepare(pid, threads);
      infect(inf);
      try {
        expect(readFileSync(`/proc/${pid}/maps`, 'utf8')).toMatch(/memfd:crtools-parasite/);
        // what we write into our mapping is what the tracee sees
        inf.shared!.write('hello from the dumper', 0);
        const b = Buffer.alloc(21);
        readMemory(pid, inf.sharedAddr, b);
        expect(b.toString()).toBe('hello from the dumper');
      } finally {
        expect(cure(inf)).toBeUndefined();
      }
      expect(readFileSync(`/proc/${pid}/maps`, 'utf8')).not.toMatch(/crtools-parasite/);
    } finally {
      resumeProcess(threads);
    }
  });

  it('a lazy infection: INIT rides in the first batch, which leaves the rescue record INIT was given in place', async () => {
    const { prepare, infect, cure } = await import('../src/remote.js');
    const { runCommands, miscCommand } = await import('../src/commands.js');
    const { PARASITE_AREA, PARASITE_STRUCTS } = await import('../src/gen-abi.js');
    const { restartableRegs, decodeGpRegs } = await import('../src/regs.js');
    const pid = spawnDetached('/bin/sleep', ['sleep', '1000']);
    started.push(pid);
    for (let i = 0; i < 200 && !readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('sleep'); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    const threads = freezeProcess(pid);
    try {
      const inf = prepare(pid, threads);
      infect(inf, true);
      expect(inf.shared).toBeUndefined();
      try {
        const [misc] = runCommands(inf, pid, [miscCommand()]);
        expect(misc.brk).toBeGreaterThan(0n);
        expect(inf.trapHandler).toBe(true);
        const R = PARASITE_STRUCTS.rescue;
        const rec = inf.shared!.subarray(PARASITE_AREA.sharedRescue, PARASITE_AREA.sharedRescue + R.size);
        expect(rec.readUInt32LE(R.fields.armed.offset)).toBe(1);
        expect(rec.readBigUInt64LE(R.fields.mask.offset)).toBe(inf.masks.get(pid));
        // sigregs: r8 ... flags, ip the 17th
        expect(rec.readBigUInt64LE(R.fields.sigregs.offset + 16 * 8)).toBe(restartableRegs(decodeGpRegs(inf.saved.get(pid)!)).ip);
      } finally {
        expect(cure(inf)).toBeUndefined();
      }
      expect(readFileSync(`/proc/${pid}/maps`, 'utf8')).not.toMatch(/crtools-parasite/);
    } finally {
      resumeProcess(threads);
    }
  });
});

describe.skipIf(!root)('live: the wait for a stop (blocking, with a deadline)', () => {
  it('times out when no stop comes, wakes at once when one does, and takes no CPU meanwhile', async () => {
    const { waitStop } = await import('../src/ptrace.js');
    const { native } = await import('../src/load-native.js');
    const pid = spawnDetached('/bin/sleep', ['sleep', '1000']);
    started.push(pid);
    for (let i = 0; i < 200 && !readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('sleep'); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    const threads = freezeProcess(pid);
    try {
      // stopped and waited for already: a wait now has nothing to report until the deadline
      native().cont(pid, 0);
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      expect(() => waitStop(pid, 300)).toThrow(/did not stop within 300 ms/);
      const waited = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      expect(waited).toBeGreaterThanOrEqual(299);
      expect(waited).toBeLessThan(2000);
      // asleep in waitpid, not polling (~3 ms of CPU here; the polling wait took ~22 ms)
      expect((cpu.user + cpu.system) / 1000).toBeLessThan(12);
      // a stop that comes while waiting ends the wait at once
      native().interrupt(pid);
      const t1 = performance.now();
      const st = waitStop(pid, 5000);
      expect(st.stopped).toBe(true);
      expect(performance.now() - t1).toBeLessThan(1000);
    } finally {
      resumeProcess(threads);
    }
    expect(status(pid)['TracerPid']).toBe('0');
  });
});

describe.skipIf(!root)('live: pages through the parasite (vmsplice into our pipe, splice into a file)', () => {
  /**
   * A sleeping process frozen; its areas readable and not writable (no [vvar] or [vsyscall]) as
   * runs: bytes nothing changes while it is stopped (a writable one can: the kernel writes the
   * rseq area's cpu_id when the task moves to another CPU)
   */
  function frozenSleep() {
    const pid = spawnDetached('/bin/sleep', ['sleep', '1000']);
    started.push(pid);
    for (let i = 0; i < 200 && !readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('sleep'); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
    const runs = maps.split('\n').filter((l) => l && /^r-/.test(l.split(/\s+/)[1]!) && !/\[(vvar|vvar_vclock|vsyscall)\]$/.test(l)).map((l) => {
      const [a, b] = l.split(' ')[0]!.split('-').map((x) => BigInt(`0x${x}`));
      return { vaddr: a!, nrPages: Number((b! - a!) / 4096n) };
    });
    return { pid, maps, runs, threads: freezeProcess(pid) };
  }

  it('streamed and batched: the same bytes as process_vm_readv, through a pipe far smaller than them', async () => {
    const { openPageTransfer, withInfection } = await import('../src/index.js');
    const { pid, maps, runs, threads } = frozenSleep();
    const dir = mkdtempSync(path.join(tmpdir(), 'crtools-parasite-pages-'));
    try {
      const bytes = runs.reduce((n, r) => n + r.nrPages * 4096, 0);
      expect(bytes).toBeGreaterThan(16 * 65536); // many pipe-fulls
      const expected = Buffer.alloc(bytes);
      let at = 0;
      for (const r of runs) at += readMemory(pid, r.vaddr, expected.subarray(at, at + r.nrPages * 4096));
      for (const stream of [true, false]) {
        const file = path.join(dir, `pages-${stream}`);
        const fd = openSync(file, 'w');
        try {
          await withInfection(pid, threads, (inf) => {
            const x = openPageTransfer(inf, 65536, stream);
            try {
              expect(x.capacity).toBe(65536);
              expect(x.transfer(runs, fd)).toBe(bytes);
            } finally {
              x.close();
            }
          });
        } finally {
          closeSync(fd);
        }
        expect(readFileSync(file).equals(expected), `stream=${stream}`).toBe(true);
      }
      expect(readFileSync(`/proc/${pid}/maps`, 'utf8')).toBe(maps);
    } finally {
      resumeProcess(threads);
      rmSync(dir, { recursive: true, force: true });
    }
    expect(status(pid)['TracerPid']).toBe('0');
    expect(asleepAgain(pid)).toMatch(/^S/);
  });

  it('a streamed command whose vmsplice fails midway: one error at once, the tracee cured and running on', async () => {
    const { openPageTransfer, withInfection } = await import('../src/index.js');
    const { pid, maps, runs, threads } = frozenSleep();
    const fd = openSync('/dev/null', 'w');
    const t0 = performance.now();
    try {
      // (more than the pipe holds first, then an address nothing is mapped at: EFAULT)
      const big = runs.find((r) => r.nrPages >= 64)!;
      await expect(withInfection(pid, threads, (inf) => {
        const x = openPageTransfer(inf, 65536, true);
        try {
          x.transfer([{ vaddr: big.vaddr, nrPages: 64 }, { vaddr: 0x10000n, nrPages: 4 }], fd);
        } finally {
          x.close();
        }
      })).rejects.toThrow(/vmsplice queued -14 of 278528 bytes/);
      expect(performance.now() - t0).toBeLessThan(3000);
      expect(readFileSync(`/proc/${pid}/maps`, 'utf8')).toBe(maps);
    } finally {
      closeSync(fd);
      resumeProcess(threads);
    }
    expect(status(pid)['TracerPid']).toBe('0');
    expect(asleepAgain(pid)).toMatch(/^S/);
  });
});

describe.skipIf(!root)('live: a dumper killed while the task runs its command', () => {
  const signals = (pid: number) => Object.fromEntries(Object.entries(status(pid)).filter(([k]) => /^(SigPnd|ShdPnd|SigBlk|SigIgn|SigCgt)$/.test(k)));
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('in the middle of a page transfer: the task takes back its registers, mask, SIGTRAP action and descriptors, and sleeps on, no SIGPIPE left', async () => {
    const { spawn } = await import('node:child_process');
    const { openPipe, closeFd } = await import('@crtools/sys');
    // SIGPIPE at its default (we ignore it, and it was passed on): one left pending would kill it
    const py = 'import signal, time\nsignal.signal(signal.SIGPIPE, signal.SIG_DFL)\ntime.sleep(1000)';
    const pid = spawnDetached('/usr/bin/python3', ['python3', '-c', py]);
    started.push(pid);
    let sleeping = false;
    for (let i = 0; i < 1000 && !sleeping; i++) {
      await pause(5);
      sleeping = readFileSync(`/proc/${pid}/syscall`, 'utf8').startsWith('230 ') && (BigInt(`0x${status(pid)['SigIgn']}`) & (1n << 12n)) === 0n;
    }
    expect(sleeping).toBe(true);
    const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
    const fds = readdirSync(`/proc/${pid}/fd`).sort();
    const sigs = signals(pid);
    // the dumper's output: a pipe that nobody empties
    const out = openPipe(65536);
    const child = spawn(process.execPath, [path.join(import.meta.dirname, 'helpers', 'dying-dumper.mjs'), String(pid)], { stdio: ['ignore', 'pipe', 'inherit', out.wr] });
    closeFd(out.wr);
    try {
      let said = '';
      child.stdout!.on('data', (d) => (said += d));
      const exited = new Promise((r) => child.on('exit', r));
      for (let i = 0; i < 2000 && !said.includes('transferring'); i++) await pause(5);
      expect(said).toContain('transferring');
      // the task inside its vmsplice (278), waiting for room in the dumper's pipe
      let inside = false;
      for (let i = 0; i < 1000 && !inside; i++) {
        inside = readFileSync(`/proc/${pid}/syscall`, 'utf8').startsWith('278 ');
        if (!inside) await pause(5);
      }
      expect(inside, said).toBe(true);
      await pause(50);
      child.kill('SIGKILL');
      await exited;
      // back to its sleep (clock_nanosleep: its EINTR, as a signal frame ends the restart block, taken by Python's loop)
      let back = false;
      for (let i = 0; i < 600 && !back; i++) {
        back = readFileSync(`/proc/${pid}/syscall`, 'utf8').startsWith('230 ') && status(pid)['State']!.startsWith('S');
        if (!back) await pause(5);
      }
      expect(back, readFileSync(`/proc/${pid}/stat`, 'utf8')).toBe(true);
      expect(status(pid)['TracerPid']).toBe('0');
      // no SIGPIPE of our vmsplice left pending, the task's mask and SIGTRAP action back
      expect(signals(pid)).toEqual(sigs);
      // the page pipe's write end closed by the rescue, its read end by the command
      expect(readdirSync(`/proc/${pid}/fd`).sort()).toEqual(fds);
      // the parasite's area is left mapped (nothing in the task can unmap the code it runs on)
      const added = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter((l) => !maps.split('\n').includes(l));
      expect(added).toHaveLength(2);
      expect(added[0]).toMatch(/ rwxp 00000000 00:00 0 *$/);
      expect(added[1]).toMatch(/ rw-s 00000000 [0-9a-f:]+ \d+ +\/memfd:crtools-parasite \(deleted\)$/);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      closeFd(out.rd);
    }
  });
});

describe.skipIf(!root)('live: the cure leaves SIGTRAP and SIGSEGV as they were', () => {
  const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  // FINI's fault where SIGSEGV is handled; the calls of the fallback where it is ignored
  it.each([
    ['handled (FINI)', 'signal.signal(signal.SIGSEGV, lambda s, f: None)\nsignal.signal(signal.SIGTRAP, lambda s, f: None)'],
    ['ignored (the fallback)', 'signal.signal(signal.SIGSEGV, signal.SIG_IGN)\nsignal.signal(signal.SIGTRAP, signal.SIG_IGN)'],
  ])('%s: actions, mask and maps as before, sleeping on', (_, setup) => {
    const pid = spawnDetached('/usr/bin/python3', ['python3', '-c', `import signal, time\n${setup}\ntime.sleep(1000)`]);
    started.push(pid);
    for (let i = 0; i < 1000 && !readFileSync(`/proc/${pid}/syscall`, 'utf8').startsWith('230 '); i++) pause(5);
    const before = status(pid);
    const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
    const bit = (v: string, sig: number) => (BigInt(`0x${v}`) >> BigInt(sig - 1)) & 1n;
    expect(bit(before[setup.includes('SIG_IGN') ? 'SigIgn' : 'SigCgt']!, 11)).toBe(1n);
    expect(bit(before[setup.includes('SIG_IGN') ? 'SigIgn' : 'SigCgt']!, 5)).toBe(1n);
    const threads = freezeProcess(pid);
    try {
      collectTaskState(pid, threads);
      expect(readFileSync(`/proc/${pid}/maps`, 'utf8')).toBe(maps);
    } finally {
      resumeProcess(threads);
    }
    expect(asleepAgain(pid)).toMatch(/^S/);
    const after = status(pid);
    for (const k of ['SigIgn', 'SigCgt', 'SigBlk', 'SigPnd', 'ShdPnd', 'TracerPid']) expect(after[k], k).toBe(before[k]);
  });
});
