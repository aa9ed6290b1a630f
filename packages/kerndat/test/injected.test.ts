import { afterEach, describe, expect, it } from 'vitest';
import { judge, probeKerndat, setNativeBinding, type KerndatNative } from '../src/index.js';

/** A kernel that has none of the system calls: every syscall says ENOSYS, every child dies. */
const nothingWorks: KerndatNative = {
  syscall: () => ({ ret: -1n, errno: 38 }),
  addressOf: () => 0x1000n,
  cpuid: () => [0, 0, 0, 0],
  xgetbv: () => 0n,
  ptraceProbe: () => ({ forkErrno: 0, seize: 1, interrupt: 1, interruptStop: false }),
  forkProbe: (_kind) => ({ pid: 0, timedOut: false, exited: false, code: -1, signal: 9 }),
  clone3SetTid: () => ({ pid: -1, errno: 38 }),
  vdsoMoveProbe: () => ({ errno: 38 }),
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
