import { closeSync, mkdtempSync, openSync, readFileSync, realpathSync, rmSync, constants as fsc } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSelfDump, mapOptions, unsupportedFields, type CriuOpts, type MapContext } from '../src/index.js';

const dump: MapContext = { command: 'dump', peerPid: process.pid, swrk: true };
const restore: MapContext = { command: 'restore', peerPid: process.pid, swrk: true };

function withDir<T>(fn: (dir: string, fd: number) => T): T {
  const dir = mkdtempSync(path.join(tmpdir(), 'crtools-rpc-opts-'));
  const fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    return fn(dir, fd);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('criu_opts → CriuOptions', () => {
  it('the images directory is the client\'s descriptor, reached through /proc/<peer>/fd and held open as ours', () =>
    withDir((dir, fd) => {
      const m = mapOptions({ images_dir_fd: fd, pid: 1234, leave_running: true, log_level: 4, notify_scripts: true }, dump);
      try {
        expect(m.options.images_dir).toMatch(new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
        expect(realpathSync(m.options.images_dir!)).toBe(realpathSync(dir));
        expect(m.options).toMatchObject({ pid: 1234, leave_running: true, log_level: 4, notify_scripts: true, log_file: 'criu.log' });
        expect(m.logPath).toBe(path.join(m.options.images_dir!, 'criu.log'));
      } finally {
        m.release();
      }
    }));

  it('work_dir_fd, log_file in it, log_to_stderr; images_dir as a path', () =>
    withDir((dir, fd) => {
      const m = mapOptions({ images_dir_fd: -1, images_dir: dir, work_dir_fd: fd, log_file: 'd.log', pid: 9 }, dump);
      expect(m.options.images_dir).toBe(dir);
      expect(realpathSync(m.options.work_dir!)).toBe(realpathSync(dir));
      expect(m.logPath).toBe(path.join(m.options.work_dir!, 'd.log'));
      m.release();
      const e = mapOptions({ images_dir_fd: -1, images_dir: dir, log_to_stderr: true, pid: 9 }, dump);
      expect(e.options.log_file).toBeUndefined();
      expect(e.logPath).toBeUndefined();
    }));

  it('a request sending fields at their defaults (as runc sends every bool) is no refusal', () => {
    const opts = { images_dir_fd: -1, images_dir: '/tmp', pid: 9, tcp_established: false, ext_unix_sk: false, manage_cgroups: false, ghost_limit: 1048576, cpu_cap: 0xffffffff, pre_dump_mode: 'SPLICE', network_lock: 'IPTABLES', orphan_pts_master: false } as CriuOpts;
    expect(unsupportedFields(opts)).toEqual([]);
    const m = mapOptions(opts, dump);
    // (but manage_cgroups false: CRIU's ignore mode)
    expect(Object.keys(m.options).sort()).toEqual(['images_dir', 'log_file', 'log_level', 'manage_cgroups_mode', 'pid']);
    expect(m.options.manage_cgroups_mode).toBe('ignore');
  });

  it('a field crtools does not carry out is refused by its rpc.proto name', () => {
    const base: CriuOpts = { images_dir_fd: -1, images_dir: '/tmp', pid: 9 };
    for (const [field, v] of [['ghost_limit', 5], ['unprivileged', true], ['tls', true], ['pidfd_store_sk', 3]] as const) {
      expect(() => mapOptions({ ...base, [field]: v } as CriuOpts, dump)).toThrow(expect.objectContaining({ code: 'RPC_UNSUPPORTED_OPTION', message: `RPC option ${field} is not supported by crtools yet` }));
    }
  });

  it("a DUMP's ps: address and port to the engine; ps.fd, a restore's ps, or a half one refused", () => {
    const base: CriuOpts = { images_dir_fd: -1, images_dir: '/tmp', pid: 9 };
    expect(mapOptions({ ...base, ps: { address: '10.0.0.2', port: 1234 } }, dump).options.ps).toEqual({ address: '10.0.0.2', port: 1234 });
    expect(() => mapOptions({ ...base, ps: { address: 'h', port: 1, fd: 3 } }, dump)).toThrow(expect.objectContaining({ code: 'RPC_UNSUPPORTED_OPTION', message: expect.stringMatching(/^ps\.fd: /) }));
    expect(() => mapOptions({ images_dir_fd: -1, images_dir: '/tmp', ps: { address: 'h', port: 1 } }, restore)).toThrow(expect.objectContaining({ code: 'RPC_UNSUPPORTED_OPTION', message: expect.stringMatching(/^ps: a page server for restore/) }));
    expect(() => mapOptions({ ...base, ps: { port: 1 } }, dump)).toThrow(/^ps: a page server needs both address and port/);
  });

  it("a DUMP with lazy_pages: ps is where the lazy pages are served (port needed, address any when unset), not a page server to send to", () => {
    const base: CriuOpts = { images_dir_fd: -1, images_dir: '/tmp', pid: 9, lazy_pages: true };
    expect(mapOptions({ ...base, ps: { port: 1234 } }, dump).options).toMatchObject({ lazy_pages: true, ps: { address: '0.0.0.0', port: 1234 } });
    expect(mapOptions({ ...base, ps: { address: '127.0.0.1', port: 1234 } }, dump).options.ps).toEqual({ address: '127.0.0.1', port: 1234 });
    expect(mapOptions({ ...base, ps: { port: 1234 } }, dump).options.use_page_server).toBeUndefined();
    expect(() => mapOptions(base, dump)).toThrow(/^ps: lazy_pages needs ps\.port/);
    expect(() => mapOptions({ ...base, ps: { port: 1, fd: 3 } }, dump)).toThrow(expect.objectContaining({ code: 'RPC_UNSUPPORTED_OPTION', message: expect.stringMatching(/^ps\.fd: /) }));
  });

  it('fields CriuOptions models go to the engine under the same name (the engine refuses them by name)', () => {
    const m = mapOptions({ images_dir_fd: -1, images_dir: '/tmp', pid: 9, tcp_established: true, tcp_skip_in_flight: true, network_lock: 'NFTABLES', external: ['x'] } as CriuOpts, dump);
    expect(m.options).toMatchObject({ tcp_established: true, tcp_skip_in_flight: true, network_lock: 'nftables', external: ['x'] });
  });

  it('unix_sk_ino with ext_unix_sk: each inode a socket whose peer may be outside (external unix[INO], as --ext-unix-sk=INO); without ext_unix_sk they name nothing, as CRIU', () => {
    const base: CriuOpts = { images_dir_fd: -1, images_dir: '/tmp', pid: 9 };
    expect(unsupportedFields({ ...base, ext_unix_sk: true, unix_sk_ino: [{ inode: 7 }] })).toEqual([]);
    const m = mapOptions({ ...base, ext_unix_sk: true, unix_sk_ino: [{ inode: 4242 }, { inode: 17 }], external: ['mnt[/a]:b'] }, dump);
    expect(m.options.ext_unix_sk).toBe(true);
    expect(m.options.external).toEqual(['mnt[/a]:b', 'unix[4242]', 'unix[17]']);
    expect(mapOptions({ ...base, unix_sk_ino: [{ inode: 4242 }] }, dump).options.external).toBeUndefined();
    expect(() => mapOptions({ ...base, ext_unix_sk: true, unix_sk_ino: [{ inode: 0 }] }, dump)).toThrow(expect.objectContaining({ code: 'RPC_BAD_OPTION' }));
  });

  it('a DUMP without pid (0 as absent) is the client dumping itself: its pid (SO_PEERCRED), our end of its connection; a pre-dump without pid is refused by name', () => {
    for (const pid of [undefined, 0]) {
      const m = mapOptions({ images_dir_fd: -1, images_dir: '/tmp', ...(pid === undefined ? {} : { pid }) }, { ...dump, peerPid: 4321, serviceSkIno: 777 });
      expect(m.options).toMatchObject({ pid: 4321, service_sk_ino: 777 });
    }
    expect(isSelfDump(undefined)).toBe(true);
    expect(isSelfDump({ images_dir_fd: -1, pid: 9 })).toBe(false);
    // (a dump of another tree records no connection to us)
    expect(mapOptions({ images_dir_fd: -1, images_dir: '/tmp', pid: 9 }, { ...dump, serviceSkIno: 777 }).options.service_sk_ino).toBeUndefined();
    expect(() => mapOptions({ images_dir_fd: -1, images_dir: '/tmp' }, { ...dump, command: 'pre-dump' })).toThrow(expect.objectContaining({ code: 'RPC_UNSUPPORTED_OPTION', message: expect.stringMatching(/^pid: a pre-dump without pid/) }));
  });

  it('bad requests: no images directory, a log_file with a slash, a sibling outside swrk', () => {
    expect(() => mapOptions({ images_dir_fd: -1, pid: 9 }, dump)).toThrow(/neither images_dir_fd nor images_dir/);
    expect(() => mapOptions({ images_dir_fd: -1, images_dir: '/tmp', pid: 9, log_file: 'a/b.log' }, dump)).toThrow(/^log_file: No subdirs are allowed in log_file name \('a\/b.log'\)$/);
    expect(() => mapOptions({ images_dir_fd: -1, images_dir: '/tmp', rst_sibling: true }, { ...restore, swrk: false })).toThrow(/^rst_sibling:/);
    expect(() => mapOptions({ images_dir_fd: 987 }, restore)).toThrow(/images_dir_fd: cannot open the client's descriptor 987/);
  });

  it('restore: detached always (the answer comes once the tasks run), rst_sibling, inherit_fd, cpu_cap 0 is none', () => {
    const m = mapOptions({ images_dir_fd: -1, images_dir: '/tmp', rst_sibling: true, inherit_fd: [{ key: 'pipe:[1]', fd: 5 }], cpu_cap: 0 }, restore);
    expect(m.options).toMatchObject({ restore_detached: true, rst_sibling: true, inherit_fd: [{ key: 'pipe:[1]', fd: 5 }], cpu_cap: 0 });
  });

  it('CHECK needs no directory and logs only to a named file, which needs one (as CRIU)', () => {
    expect(mapOptions(undefined, { ...dump, command: 'check' }).options).toEqual({ log_level: 2 });
    expect(() => mapOptions({ images_dir_fd: -1, log_file: 'check.log' }, { ...dump, command: 'check' })).toThrow(/^log_file: images_dir, images_dir_fd or work_dir_fd is required when using a log file$/);
    expect(mapOptions({ images_dir_fd: -1, images_dir: '/tmp', log_file: 'check.log' }, { ...dump, command: 'check' }).options).toMatchObject({ images_dir: '/tmp', log_file: 'check.log' });
    expect(mapOptions({ images_dir_fd: -1, log_file: 'check.log', log_to_stderr: true }, { ...dump, command: 'check' }).options).toMatchObject({ log_level: 2 });
  });

  it('config_file: read by the given reader, its options win over the request\'s; refused without a reader', () => {
    const seen: string[] = [];
    const m = mapOptions({ images_dir_fd: -1, images_dir: '/tmp', pid: 9, config_file: '/etc/x.conf', log_level: 1 }, {
      ...dump,
      config: (file, command) => {
        seen.push(`${file} ${command}`);
        return { log_level: 4, log_file: 'from-conf.log', leave_running: true };
      },
    });
    expect(seen).toEqual(['/etc/x.conf dump']);
    expect(m.options).toMatchObject({ log_level: 4, log_file: 'from-conf.log', leave_running: true });
    expect(() => mapOptions({ images_dir_fd: -1, images_dir: '/tmp', pid: 9, config_file: '/etc/x.conf' }, dump)).toThrow(/^config_file:/);
  });

  // what runc 1.1.5 (Debian 12) sends for `runc checkpoint` of a busybox container, as traced
  const runcDump = (fd: number): CriuOpts => ({
    images_dir_fd: fd, pid: 4242, leave_running: false, ext_unix_sk: false, tcp_established: false, shell_job: false, file_locks: false,
    log_level: 4, log_file: 'dump.log', notify_scripts: true, root: '/run/bundle/rootfs', auto_dedup: false,
    ext_mnt: [{ key: '/sys/fs/cgroup/cpu', val: '/sys/fs/cgroup/cpu' }, { key: '/proc/keys', val: '/dev/null' }],
    manage_cgroups: true, empty_ns: 0x40000000, freeze_cgroup: '/sys/fs/cgroup/freezer/c1', lazy_pages: false, orphan_pts_master: true,
    config_file: '/etc/criu/runc.conf',
  });

  it("runc's DUMP request: every field it sets is mapped, or passed to the engine under its name (which refuses it by name)", () =>
    withDir((dir, fd) => {
      const m = mapOptions(runcDump(fd), { ...dump, config: () => ({}) });
      try {
        expect(m.options).toMatchObject({
          pid: 4242, log_level: 4, log_file: 'dump.log', notify_scripts: true, root: '/run/bundle/rootfs', manage_cgroups: true, empty_ns: 0x40000000,
          freeze_cgroup: '/sys/fs/cgroup/freezer/c1', orphan_pts_master: true, ext_mnt: [{ key: '/sys/fs/cgroup/cpu', val: '/sys/fs/cgroup/cpu' }, { key: '/proc/keys', val: '/dev/null' }],
        });
        expect(realpathSync(m.options.images_dir!)).toBe(realpathSync(dir));
        expect(m.logPath).toBe(path.join(m.options.images_dir!, 'dump.log'));
      } finally {
        m.release();
      }
    }));

  it("runc's RESTORE cg_root: per controller (ctrl) or for all (no ctrl)", () => {
    const m = mapOptions({ images_dir_fd: -1, images_dir: '/tmp', manage_cgroups: true, cg_root: [{ ctrl: 'memory', path: '/a/c1' }, { path: '/c1' }] } as CriuOpts, restore);
    expect(m.options).toMatchObject({ manage_cgroups: true, cg_root: [{ ctrl: 'memory', path: '/a/c1' }, { path: '/c1' }] });
  });

  it('RESTORE veths (criu_veth_pair): passed to the engine as the list of inside and outside names', () => {
    const m = mapOptions({ images_dir_fd: -1, images_dir: '/tmp', veths: [{ if_in: 'eth0', if_out: 'veth-c1' }, { if_in: 'eth1', if_out: 'veth-c2@br0' }] } as CriuOpts, restore);
    expect(m.options.veths).toEqual([{ if_in: 'eth0', if_out: 'veth-c1' }, { if_in: 'eth1', if_out: 'veth-c2@br0' }]);
  });

  it('manage_cgroups_mode: criu_cg_mode by name or number (DEFAULT is soft) sets manage_cgroups too, as CRIU; an unknown one is a bad request', () => {
    const base: CriuOpts = { images_dir_fd: -1, images_dir: '/tmp', pid: 9 };
    for (const [v, mode] of [['SOFT', 'soft'], ['FULL', 'full'], ['STRICT', 'strict'], ['PROPS', 'props'], ['CG_NONE', 'none'], ['IGNORE', 'ignore'], ['DEFAULT', 'soft'], [4, 'full']] as const) {
      expect(mapOptions({ ...base, manage_cgroups_mode: v } as unknown as CriuOpts, dump).options, String(v)).toMatchObject({ manage_cgroups: true, manage_cgroups_mode: mode });
    }
    expect(mapOptions({ ...base, manage_cgroups: true }, dump).options.manage_cgroups_mode).toBeUndefined();
    expect(mapOptions(base, dump).options.manage_cgroups_mode).toBeUndefined();
    expect(() => mapOptions({ ...base, manage_cgroups_mode: 9 } as unknown as CriuOpts, dump)).toThrow(expect.objectContaining({ code: 'RPC_BAD_OPTION', message: 'manage_cgroups_mode: 9 is no mode CRIU knows' }));
  });

  it('empty_ns: only CLONE_NEWNET, as CRIU', () => {
    expect(() => mapOptions({ images_dir_fd: -1, images_dir: '/tmp', pid: 9, empty_ns: 0x40000000 | 0x20000000 }, dump)).toThrow(expect.objectContaining({
      code: 'RPC_BAD_OPTION', message: 'empty_ns: 0x60000000: only CLONE_NEWNET (0x40000000) can be left empty',
    }));
  });

  it('join_ns: each namespace as CriuOptions names it (ns_file as file, extra_opt as extra)', () => {
    const r = mapOptions({ images_dir_fd: -1, images_dir: '/tmp', join_ns: [{ ns: 'net', ns_file: '1234' }, { ns: 'user', ns_file: '/proc/1/ns/user', extra_opt: '0,0' }] }, restore);
    expect(r.options.join_ns).toEqual([{ ns: 'net', file: '1234' }, { ns: 'user', file: '/proc/1/ns/user', extra: '0,0' }]);
  });

  it('a refusal once the log is known is told to logFailure (the directory still open), one before it is not', () =>
    withDir((dir, fd) => {
      const told: string[] = [];
      const logFailure = (logPath: string, level: number, e: unknown) => {
        told.push(`${level} ${(e as Error).message}`);
        expect(path.basename(logPath)).toBe('dump.log');
        expect(realpathSync(path.dirname(logPath))).toBe(realpathSync(dir)); // reachable while told
      };
      expect(() => mapOptions({ ...runcDump(fd), unprivileged: true }, { ...dump, config: () => ({}), logFailure })).toThrow(/^RPC option unprivileged/);
      expect(() => mapOptions({ ...runcDump(fd), empty_ns: 1 }, { ...dump, config: () => ({}), logFailure })).toThrow(/^empty_ns:/);
      expect(told).toEqual(['4 RPC option unprivileged is not supported by crtools yet', '4 empty_ns: 0x1: only CLONE_NEWNET (0x40000000) can be left empty']);
      expect(() => mapOptions({ images_dir_fd: -1, pid: 9, unprivileged: true }, { ...dump, logFailure })).toThrow(/neither images_dir_fd nor images_dir/);
      expect(told).toHaveLength(2);
      expect(() => readFileSync(path.join(dir, 'dump.log'))).toThrow(); // mapOptions itself writes nothing
    }));
});
