import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { judge, NO_SUCH_FS_EXIT, probeKerndat, setNativeBinding, type KerndatNative } from '../src/index.js';

/** A kernel that has none of the system calls: every syscall says ENOSYS, every child dies. */
const nothingWorks: KerndatNative = {
  syscall: () => ({ errno: 38, syscall: 'syscall' }),
  addressOf: () => 0x1000n,
  ptraceProbe: () => ({ seize: 1, interrupt: 1, interruptStop: false }),
  forkProbe: (_kind) => ({ pid: 0, timedOut: false, exited: false, code: -1, signal: 9 }),
  clone3SetTid: () => ({ errno: 38, syscall: 'clone3' }),
  vdsoMoveProbe: () => ({ errno: 38, syscall: 'mmap' }),
};

afterEach(() => setNativeBinding(undefined));

describe('probes against an injected binding', () => {
  it('a kernel without the system calls: probes answer false or report an error, never throw', () => {
    setNativeBinding(nothingWorks);
    const k = probeKerndat();
    // probes that must map memory cannot run: they say why
    expect(k.errors.stack_guard_gap).toMatch(/mmap.*ENOSYS/);
    expect(k.errors.page_size).toMatch(/ENOSYS/);
    // the others answer, and answer "no"
    expect(k.has_clone3_set_tid).toBe(false);
    expect(k.has_pidfd_open).toBe(false);
    expect(k.has_kcmp).toBe(false);
    expect(k.has_ptrace_seize).toBe(false);
    expect(k.has_breakpoints).toBe(false);
    expect(k.has_uffd).toBe(false);
    expect(k.has_tcp_repair).toBe(false);
    expect(k.sock_diag).toEqual({ unix: false, tcp: false, udp: false, tcp6: false, udp6: false, raw: false, raw6: false, packet: false, netlink: false });
    expect(k.vdso?.mremap_ok).toBe(false);
    expect(k.can_map_vdso).toBe(false);
    expect(k.vdso_hint_reliable).toBe(false);
    const r = judge(k);
    expect(r.verdict).toBe('bad');
    expect(r.stderr.at(-1)).toBe('Does not look good.');
  });
});

describe('a kernel without autofs or overlayfs (mount says ENODEV)', () => {
  const noFs = (code: number): KerndatNative => ({
    ...nothingWorks,
    forkProbe: (kind) => (kind === 'autofs' || kind === 'overlayfs_maps' ? { pid: 1, timedOut: false, exited: true, code, signal: 0 } : nothingWorks.forkProbe(kind)),
  });
  const autofsMounted = readFileSync('/proc/self/mountinfo', 'utf8').includes(' - autofs ');

  it('is an answer (has_autofs/has_overlayfs false), not a probe error', () => {
    setNativeBinding(noFs(NO_SUCH_FS_EXIT));
    const k = probeKerndat({ only: ['autofs', 'overlayfs_maps'] });
    expect(k.errors).toEqual({});
    expect(k.has_overlayfs).toBe(false);
    expect(k.has_overlayfs_maps).toBeUndefined();
    // an autofs mount already on this machine answers without mounting one
    expect(k.has_autofs).toBe(autofsMounted);
    if (!autofsMounted) expect(k.has_autofs_pipe_ino).toBeUndefined();
  });

  it('criu check judges it as CRIU does: required features unaffected, --all names both', async () => {
    const { machineDoc } = await import('./helpers.js');
    const k = { ...machineDoc(), has_autofs: false, has_autofs_pipe_ino: undefined, has_overlayfs: false, has_overlayfs_maps: undefined };
    expect(judge(k).verdict).toBe('good');
    const all = judge(k, { category: 'all' });
    expect(all.verdict).toBe('maybe');
    expect(all.stderr).toContain('autofs: autofs is not in this kernel; autofs mounts cannot be checkpointed');
    expect(all.stderr.some((l) => l.startsWith('overlayfs_maps: overlayfs is not in this kernel; '))).toBe(true);
    expect(judge(k, { feature: 'autofs' })).toMatchObject({ verdict: 'unsupported', exitCode: 1 });
  });

  it('a mount probe that fails otherwise is still a probe error, with the child status', () => {
    setNativeBinding(noFs(13));
    const k = probeKerndat({ only: ['overlayfs_maps'] });
    expect(k.errors.overlayfs_maps).toBe('overlayfs test could not run (child exit 13)');
    expect(k.has_overlayfs).toBeUndefined();
  });

  it('with autofs and overlayfs present: both answered', () => {
    setNativeBinding(noFs(0));
    const k = probeKerndat({ only: ['autofs', 'overlayfs_maps'] });
    expect(k.errors).toEqual({});
    expect(k).toMatchObject({ has_overlayfs: true, has_overlayfs_maps: true, has_autofs: true });
    expect(typeof k.has_autofs_pipe_ino).toBe('boolean');
  });
});
