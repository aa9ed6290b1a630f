/**
 * images → restore plan on the CRIU 4.2 fixtures (no processes started): what the composition
 * in packages/cli/src/restore hands the restorer.
 */
import { cpSync, existsSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturesDir } from '../lib/paths.js';
import { buildRestorePlan, fxsaveFrom } from '@crtools/restorer';
import { readImageFile, writeImageFile } from '@crtools/images';

const have = existsSync('/tmp/criu-fixtures/bin/pipetree');

describe.skipIf(!have)('restore plan from CRIU 4.2 images (needs /tmp/criu-fixtures/bin as the fixtures README says)', () => {
  it('pipetree: tree order, shared pipes with their buffered bytes, fds per task', async () => {
    const plan = await buildRestorePlan(path.join(fixturesDir, 'pipetree'));
    expect(plan.tasks.map((t) => [t.pid, t.parent])).toEqual([[2806, -1], [2810, 0], [2811, 0]]);
    expect(plan.tasks.every((t) => t.sid === 2806 && t.pgid === 2806)).toBe(true);
    const pipes = plan.files.filter((f) => f.kind !== 'reg');
    expect(pipes.length).toBeGreaterThanOrEqual(6);
    expect(new Set(pipes.map((p) => ('pipeId' in p ? p.pipeId : undefined))).size).toBe(pipes.length / 2);
    expect(plan.tasks[0]!.cwd).toBe('/tmp/criu-fixtures/run');
    expect(plan.tasks[0]!.exe).toBe('/tmp/criu-fixtures/bin/pipetree');
    for (const t of plan.tasks) {
      expect(t.fds.slice(0, 3).map((f) => f.fd)).toEqual([0, 1, 2]);
      expect(t.sigactions).toHaveLength(64);
      expect(t.pages.length).toBeGreaterThan(0);
      expect(t.vmas.filter((v) => v.kind === 'vdso')).toHaveLength(1);
    }
  });

  it('threads: one thread plan per core image, tids in pstree order', async () => {
    const plan = await buildRestorePlan(path.join(fixturesDir, 'threads'));
    expect(plan.tasks[0]!.threads.map((t) => t.tid)).toEqual([2759, 2763, 2764, 2765, 2766]);
    expect(plan.tasks[0]!.threads.every((t) => t.fxsave.length === 512 && t.xstateBv === 0xa2n)).toBe(true);
    expect(plan.tasks[0]!.threads[1]!.rseq?.sig).toBe(0x53053053);
  });

  it('a task in its own namespace is refused as unsupported, not restored wrongly', async () => {
    const d = mkdtempSync(path.join(tmpdir(), 'crtools-plan-'));
    cpSync(path.join(fixturesDir, 'sleep'), d, { recursive: true });
    const ids = await readImageFile(path.join(d, 'ids-2680.img'));
    // (every kind is recreated alone; a network namespace inside a user namespace only with a
    // pid namespace of the tree's own: the pids are set from inside the user namespace)
    Object.assign(ids.entries[0] as Record<string, unknown>, { user_ns_id: 99, net_ns_id: 98 });
    await writeImageFile(path.join(d, 'ids-2680.img'), ids);
    await expect(buildRestorePlan(d)).rejects.toMatchObject({ exitCode: 4, message: expect.stringMatching(/^pid 2680 lives in its own user namespace and its own net namespace but in criu's pid namespace, which restore does not recreate yet/) });
  });

  it('seccomp: a thread\'s chain is followed from its seccomp_filter through prev (oldest first, flags kept); strict mode, old per-task fields, bad indexes and unknown flags', async () => {
    const d = mkdtempSync(path.join(tmpdir(), 'crtools-plan-'));
    cpSync(path.join(fixturesDir, 'sleep'), d, { recursive: true });
    const prog = (n: number) => Buffer.alloc(8 * n, n);
    const withSeccomp = async (tc: Record<string, unknown>, filters: Record<string, unknown>[], task: Record<string, unknown> = {}) => {
      const core = await readImageFile(path.join(fixturesDir, 'sleep', 'core-2680.img'));
      const e = core.entries[0] as Record<string, any>;
      delete e.thread_core.seccomp_mode;
      delete e.thread_core.seccomp_filter;
      Object.assign(e.thread_core, tc);
      Object.assign(e.tc, task);
      await writeImageFile(path.join(d, 'core-2680.img'), core);
      await writeImageFile(path.join(d, 'seccomp.img'), { magic: 'SECCOMP', entries: [{ seccomp_filters: filters }] });
      return buildRestorePlan(d);
    };
    // CRIU's layout: newest first, each older one's prev naming the one installed after it
    const chain = [{ filter: prog(3), flags: 0 }, { filter: prog(2), prev: 0, flags: 2 }, { filter: prog(1), prev: 1, flags: 0 }];
    let plan = await withSeccomp({ seccomp_mode: 'filter', seccomp_filter: 2 }, chain);
    expect(plan.tasks[0]!.threads[0]!.seccomp).toEqual({ strict: false, filters: [{ filter: prog(1), flags: 0 }, { filter: prog(2), flags: 2 }, { filter: prog(3), flags: 0 }] });
    plan = await withSeccomp({ seccomp_mode: 'filter', seccomp_filter: 0 }, chain);
    expect(plan.tasks[0]!.threads[0]!.seccomp?.filters).toEqual([{ filter: prog(3), flags: 0 }]);
    plan = await withSeccomp({ seccomp_mode: 'strict' }, []);
    expect(plan.tasks[0]!.threads[0]!.seccomp).toEqual({ strict: true, filters: [] });
    plan = await withSeccomp({}, chain);
    expect(plan.tasks[0]!.threads[0]!.seccomp).toBeUndefined();
    // images of before per-thread seccomp: the task's fields, for the main thread, with TSYNC
    plan = await withSeccomp({}, chain, { old_seccomp_mode: 'filter', old_seccomp_filter: 1 });
    expect(plan.tasks[0]!.threads[0]!.seccomp?.filters).toEqual([{ filter: prog(2), flags: 3 }, { filter: prog(3), flags: 1 }]);
    await expect(withSeccomp({ seccomp_mode: 'filter', seccomp_filter: 3 }, chain)).rejects.toMatchObject({ exitCode: 3, message: expect.stringMatching(/seccomp filter 3 .* is not in seccomp.img \(3 filters\)/) });
    await expect(withSeccomp({ seccomp_mode: 'filter', seccomp_filter: 0 }, [{ filter: prog(1), prev: 0, flags: 0 }])).rejects.toMatchObject({ exitCode: 3, message: 'seccomp.img: the chain of thread 2680 loops' });
    await expect(withSeccomp({ seccomp_mode: 'filter', seccomp_filter: 0 }, [{ filter: Buffer.alloc(12), flags: 0 }])).rejects.toMatchObject({ exitCode: 3 });
    // SECCOMP_FILTER_FLAG_NEW_LISTENER: the listener is not in the images
    await expect(withSeccomp({ seccomp_mode: 'filter', seccomp_filter: 0 }, [{ filter: prog(1), flags: 8 }])).rejects.toMatchObject({ exitCode: 4, message: 'seccomp.img: filter 0 of thread 2680 has flags 0x8, some of which restore does not install' });
  });

  it('two processes sharing memory or fs (CLONE_VM, CLONE_FS), or siblings sharing a descriptor table, are refused by name, not given a copy each', async () => {
    const withIds = async (pid: number, k: string, from: number) => {
      const d = mkdtempSync(path.join(tmpdir(), 'crtools-plan-'));
      cpSync(path.join(fixturesDir, 'pipetree'), d, { recursive: true });
      const other = (await readImageFile(path.join(d, `ids-${from}.img`))).entries[0] as Record<string, unknown>;
      const ids = await readImageFile(path.join(d, `ids-${pid}.img`));
      (ids.entries[0] as Record<string, unknown>)[k] = other[k];
      await writeImageFile(path.join(d, `ids-${pid}.img`), ids);
      return { d, value: other[k] };
    };
    for (const k of ['vm_id', 'fs_id']) {
      const { d, value } = await withIds(2810, k, 2806);
      await expect(buildRestorePlan(d)).rejects.toMatchObject({
        exitCode: 4, message: `pid 2810 shares its ${k.replace('_id', '')} (${k} ${value}) with pid 2806, which restore does not recreate`,
      });
    }
    // a child sharing its parent's table is made with CLONE_FILES; two siblings sharing one are refused
    const shared = await withIds(2810, 'files_id', 2806);
    const plan = await buildRestorePlan(shared.d);
    const child = plan.tasks.find((t) => t.pid === 2810)!;
    expect(child.shareFiles).toBe(true);
    expect(child.fds).toEqual([]);
    expect(plan.tasks.find((t) => t.pid === 2806)!.fds.length).toBeGreaterThan(0);
    const siblings = await withIds(2811, 'files_id', 2810);
    await expect(buildRestorePlan(siblings.d)).rejects.toMatchObject({
      exitCode: 4, message: `pid 2811 shares its files (files_id ${siblings.value}) with pid 2810, which restore does not recreate (only a table a child shares with its parent is)`,
    });
  });

  it('a stopped task (CRIU TASK_STOPPED) is planned to stop again with its own stop signal; other states are refused', async () => {
    const d = mkdtempSync(path.join(tmpdir(), 'crtools-plan-'));
    cpSync(path.join(fixturesDir, 'sleep'), d, { recursive: true });
    const withState = async (tc: Record<string, unknown>) => {
      const core = await readImageFile(path.join(fixturesDir, 'sleep', 'core-2680.img'));
      Object.assign((core.entries[0] as Record<string, any>).tc, tc);
      await writeImageFile(path.join(d, 'core-2680.img'), core);
      return buildRestorePlan(d);
    };
    expect((await buildRestorePlan(d)).tasks[0]!.stopSigno).toBeUndefined();
    expect((await withState({ task_state: 3, stop_signo: 20 })).tasks[0]!.stopSigno).toBe(20); // SIGTSTP
    // an image without a stop signal (older CRIU), or with one that stops nothing: SIGSTOP
    expect((await withState({ task_state: 3 })).tasks[0]!.stopSigno).toBe(19);
    expect((await withState({ task_state: 3, stop_signo: 5 })).tasks[0]!.stopSigno).toBe(19);
    // a SIGCONT queued on it (blocked or handled) came after the stop: the task was continued meanwhile
    const sigcont = Buffer.alloc(128);
    sigcont.writeInt32LE(18, 0);
    const continued = (await withState({ task_state: 3, stop_signo: 19, signals_s: { signals: [{ siginfo: sigcont }] } })).tasks[0]!;
    expect(continued.stopSigno).toBeUndefined();
    expect(continued.pendingSignals?.map((b) => b.readInt32LE(0))).toEqual([18]);
    await expect(withState({ task_state: 4 })).rejects.toMatchObject({ exitCode: 4, message: 'pid 2680: task state 4 is not restored yet' });
  });

  it('a corrupt or truncated image is a clear BAD_INPUT error', async () => {
    const d = mkdtempSync(path.join(tmpdir(), 'crtools-plan-'));
    cpSync(path.join(fixturesDir, 'sleep'), d, { recursive: true });
    writeFileSync(path.join(d, 'mm-2680.img'), Buffer.from([0x19, 0x43, 0x56, 0x54, 0x2a, 0x01, 0x00]));
    await expect(buildRestorePlan(d)).rejects.toMatchObject({ exitCode: 3 });
  });
});

describe('register and FPU details', () => {
  it('fxsaveFrom lays out the legacy FXSAVE area', () => {
    const b = fxsaveFrom({ cwd: 0x37f, swd: 1, twd: 0xff, fop: 2, rip: 3n, rdp: 4n, mxcsr: 0x1f80, mxcsr_mask: 0xffff, st_space: [5], xmm_space: [6] });
    expect(b.readUInt16LE(0)).toBe(0x37f);
    expect(b.readUInt16LE(4)).toBe(0xff);
    expect(b.readBigUInt64LE(8)).toBe(3n);
    expect(b.readUInt32LE(24)).toBe(0x1f80);
    expect(b.readUInt32LE(32)).toBe(5);
    expect(b.readUInt32LE(160)).toBe(6);
  });
});
