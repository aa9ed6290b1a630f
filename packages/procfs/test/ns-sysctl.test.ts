import { describe, expect, it } from 'vitest';
import { countSysvipc, formatIpcSysctl, parseIpcSysctl, parseSysctlString } from '../src/ns-sysctl.js';

describe('namespace sysctl files', () => {
  it('parses the UTS names and the IPC sysctls as CRIU keeps them, and writes them back', () => {
    expect(parseSysctlString('ns-host\n')).toBe('ns-host');
    expect(parseSysctlString('')).toBe('');
    expect(parseIpcSysctl('u32[]', '32000\t1024000000\t500\t32000\n')).toEqual([32000, 1024000000, 500, 32000]);
    expect(parseIpcSysctl('u32', '77\n')).toBe(77);
    expect(parseIpcSysctl('u32', '-1\n')).toBe(0xffffffff); // a *_next_id not set
    expect(parseIpcSysctl('u64', '18446744073692774399\n')).toBe(18446744073692774399n);
    expect(formatIpcSysctl('u32[]', [32000, 1024000000, 500, 32000])).toBe('32000 1024000000 500 32000');
    expect(formatIpcSysctl('u64', 18446744073692774399n)).toBe('18446744073692774399');
  });

  it('counts the objects of a /proc/sysvipc list (none: the header only)', () => {
    expect(countSysvipc('       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n')).toBe(0);
    expect(countSysvipc('       key      msqid perms ...\n     24301          0   600 0 0 0 0 0 0 0 0 0 0 1\n')).toBe(1);
  });
});
