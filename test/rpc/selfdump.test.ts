/**
 * Acceptance: an RPC client dumps itself (a DUMP without pid), as libcriu's criu_dump() and
 * pycriu's dump() are mostly used, and as CRIU's test/others/rpc (test-c.c, test.py) runs it:
 * the client started with `setsid ... < /dev/null &>> out`, then `criu restore -D DIR` (waiting
 * for the restored client) or with -d. The client is Debian's pycriu (selfdump-client.py): it
 * finds itself as it was after each answer (its pid, memory, an open file and its offset) and
 * writes what it found; so does a C client of Debian's libcriu (libcriu-self.c, criu_dump()).
 * Every process is cleaned up by pid.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { criuBin, workloadBinDir } from '../lib/paths.js';
import { critDecode, criu, haveCrit, killAllStarted, killTree, sleep, tmp, waitGone, waitReaped } from '../dump/helpers.js';

const PYTHON = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(new URL(import.meta.url).pathname), 'selfdump-client.py');
const havePycriu = spawnSync(PYTHON, ['-c', 'import pycriu.criu, pycriu.rpc_pb2'], { stdio: 'ignore' }).status === 0;
const isRoot = process.getuid?.() === 0;
// Debian's criu package ships libcriu and its header
const haveLibcriu = existsSync('/usr/include/criu/criu.h') && existsSync('/usr/lib/x86_64-linux-gnu/libcriu.so');
const LIBCRIU_SRC = path.join(path.dirname(new URL(import.meta.url).pathname), 'libcriu-self.c');
const LIBCRIU_BIN = path.join(workloadBinDir, 'libcriu-self');

interface Run {
  dir: string;
  img: string;
  out: string;
  pid: number;
  status: number | null;
  signal: NodeJS.Signals | null;
}

/** What the client wrote, one record a line. */
function records(out: string): Record<string, any>[] {
  if (!existsSync(out)) return [];
  return readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** Wait until the client has written n records. */
function waitRecords(out: string, n: number, ms = 20_000): Record<string, any>[] {
  const end = Date.now() + ms;
  while (Date.now() < end && records(out).length < n) sleep(20);
  return records(out);
}

const pids: number[] = [];

/** The client in a session of its own, stdin /dev/null, stdout and stderr appended to a file (as CRIU's run.sh); returns once it ended. */
function runClient(criuArg: string, leaveRunning: boolean, client: string[] = [PYTHON, CLIENT]): Run {
  const dir = tmp('selfdump');
  chmodSync(dir, 0o755);
  const img = path.join(dir, 'img');
  mkdirSync(img);
  const out = path.join(dir, 'out.jsonl');
  const log = openSync(path.join(dir, 'client.log'), 'a');
  try {
    // (setsid execs python in place: the client's pid is the child's)
    const r = spawnSync('/usr/bin/setsid', [...client, criuArg, img, out, ...(leaveRunning ? ['leave-running'] : [])], {
      cwd: dir, stdio: ['ignore', log, log], timeout: 120_000, killSignal: 'SIGKILL',
    });
    const pid = r.pid!;
    pids.push(pid);
    return { dir, img, out, pid, status: r.status, signal: r.signal };
  } finally {
    closeSync(log);
  }
}

const clientLog = (r: Run) => readFileSync(path.join(r.dir, 'client.log'), 'utf8');

/** Debian's crit on files.img: the unix socket records. */
function unixRecords(img: string): Record<string, any>[] {
  return critDecode(path.join(img, 'files.img')).entries.filter((e: any) => e.usk).map((e: any) => e.usk);
}

/** The client found itself as it was after an answer. */
function intact(rec: Record<string, any>, pid: number, restored: boolean): void {
  expect(rec, JSON.stringify(rec)).toEqual({ phase: 'answered', success: true, restored, pid, same_pid: true, memory_ok: true, file_ok: true, cwd_ok: true });
}

afterAll(() => {
  for (const p of pids.splice(0)) killTree(p);
  killAllStarted();
});

describe.skipIf(!havePycriu || !isRoot)('a client dumping itself over criu service (pycriu use_sk, a DUMP without pid)', () => {
  let service: ChildProcess;
  const sdir = tmp('selfdump-service');
  const address = path.join(sdir, 'criu.sock');
  beforeAll(() => {
    chmodSync(sdir, 0o755);
    service = spawn(process.execPath, [criuBin, 'service', '--address', address], { stdio: ['ignore', 'ignore', 'inherit'] });
    for (let i = 0; i < 500 && !existsSync(address); i++) sleep(20);
    expect(existsSync(address)).toBe(true);
  });
  afterAll(() => {
    if (service?.pid !== undefined) {
      service.kill('SIGTERM');
      if (!waitGone(service.pid, 5000)) killTree(service.pid);
    }
  });

  it('killed by its dump, no answer; its connection recorded as CRIU 4.2 does (uflags SERVICE); restored (-d) it reads restored: true and finds itself intact', () => {
    const r = runClient(`sk:${address}`, false);
    expect(r.signal, clientLog(r)).toBe('SIGKILL');
    expect(records(r.out)).toEqual([{ phase: 'dumping', pid: r.pid }]);
    expect(existsSync(path.join(r.img, 'inventory.img'))).toBe(true);
    if (haveCrit) {
      // the one unix socket: the client's connection, closed, without a peer, marked USK_SERVICE
      const usk = unixRecords(r.img);
      expect(usk, JSON.stringify(usk)).toHaveLength(1);
      expect(usk[0]).toMatchObject({ type: 5, state: 7, peer: 0, uflags: 2, name: '' });
    }
    expect(waitReaped(r.pid)).toBe(true);

    const rs = criu(['restore', '-D', r.img, '-d', '-o', 'restore.log']);
    expect(rs.code, rs.stderr).toBe(0);
    const recs = waitRecords(r.out, 2);
    expect(recs).toHaveLength(2);
    intact(recs[1]!, r.pid, true);
    expect(waitReaped(r.pid, 10_000)).toBe(true);
  });

  it('leave_running (CRIU\'s test-c and test.py): answered restored: false and running on; `criu restore` (not -d) brings it back to read restored: true, and waits for it', () => {
    const r = runClient(`sk:${address}`, true);
    expect(r.status, clientLog(r)).toBe(0);
    const first = records(r.out);
    expect(first).toHaveLength(2);
    intact(first[1]!, r.pid, false);
    expect(waitReaped(r.pid)).toBe(true);

    const rs = criu(['restore', '-D', r.img, '-o', 'restore.log']);
    expect(rs.code, rs.stderr + readFileSync(path.join(r.img, 'restore.log'), 'utf8').slice(-2000)).toBe(0);
    // (restore waited for the restored client, which wrote its record before it exited)
    const recs = records(r.out);
    expect(recs).toHaveLength(3);
    intact(recs[2]!, r.pid, true);
  });
});

describe.skipIf(!havePycriu || !isRoot)('a client dumping itself over criu swrk', () => {
  it('pycriu use_binary (swrk started as a daemon, outside the client\'s tree): killed by its dump, restored it reads restored: true', () => {
    const r = runClient(criuBin, false);
    expect(r.signal, clientLog(r)).toBe('SIGKILL');
    expect(records(r.out)).toEqual([{ phase: 'dumping', pid: r.pid }]);
    expect(waitReaped(r.pid)).toBe(true);
    const rs = criu(['restore', '-D', r.img, '-o', 'restore.log']);
    expect(rs.code, rs.stderr).toBe(0);
    const recs = records(r.out);
    expect(recs).toHaveLength(2);
    intact(recs[1]!, r.pid, true);
  });

  it('swrk as the client\'s own child (inside the tree it would dump): refused by name, answered, the client running on', () => {
    const img = tmp('selfdump-inside');
    const script = [
      'import json, os, socket, sys',
      'import pycriu.rpc_pb2 as rpc',
      'a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)',
      'pid = os.fork()',
      'if pid == 0:',
      '    a.close(); os.set_inheritable(b.fileno(), True)',
      '    os.execv(sys.argv[1], [sys.argv[1], "swrk", str(b.fileno())])',
      'b.close()',
      'req = rpc.criu_req(); req.type = rpc.DUMP',
      'req.opts.images_dir_fd = os.open(sys.argv[2], os.O_DIRECTORY); req.opts.log_file = "dump.log"',
      'a.send(req.SerializeToString())',
      'resp = rpc.criu_resp(); resp.ParseFromString(a.recv(65536))',
      '_, st = os.waitpid(pid, 0)',
      'print(json.dumps({"type": rpc.criu_req_type.Name(resp.type), "success": resp.success, "restored": resp.dump.restored, "errmsg": resp.cr_errmsg, "swrk_exit": os.waitstatus_to_exitcode(st)}))',
    ].join('\n');
    const r = spawnSync(PYTHON, ['-c', script, criuBin, img], { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
    expect(r.status, r.stderr).toBe(0);
    const a = JSON.parse(r.stdout.trim());
    expect(a).toMatchObject({ type: 'DUMP', success: false, restored: false, swrk_exit: 1 });
    // (opening with CRIU's words for it, which clients look for: CRIU's test/others/rpc/config_file.py)
    expect(a.errmsg).toMatch(/^The criu itself is within dumped tree: a dump without pid \(the client \d+ dumping itself\) from a client this criu \(pid \d+\) runs under, as criu swrk does, is not supported/);
    expect(readFileSync(path.join(img, 'dump.log'), 'utf8')).toContain('Error (rpc): The criu itself is within dumped tree: ');
    expect(existsSync(path.join(img, 'inventory.img'))).toBe(false);
  });
});

/** libcriu-self's lines: "dumping PID", "answer RET pid PID same_pid B memory_ok B file_ok B". */
function lines(out: string): string[] {
  return existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean) : [];
}

describe.skipIf(!isRoot || !haveLibcriu)("a libcriu client dumping itself (criu_dump() without pid; Debian's libcriu)", () => {
  beforeAll(() => {
    mkdirSync(workloadBinDir, { recursive: true });
    const cc = spawnSync('gcc', ['-O1', '-g', '-Wall', '-I/usr/include/criu', '-o', LIBCRIU_BIN, LIBCRIU_SRC, '-lcriu'], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).toBe(0);
  });

  it('over criu service: killed by its dump, restored (-d) criu_dump() returns 1 and it finds itself intact', () => {
    const sdir = tmp('selfdump-libcriu-service');
    chmodSync(sdir, 0o755);
    const address = path.join(sdir, 'criu.sock');
    const service = spawn(process.execPath, [criuBin, 'service', '--address', address], { stdio: ['ignore', 'ignore', 'inherit'] });
    try {
      for (let i = 0; i < 500 && !existsSync(address); i++) sleep(20);
      const r = runClient(`sk:${address}`, false, [LIBCRIU_BIN]);
      expect(r.signal, clientLog(r)).toBe('SIGKILL');
      expect(lines(r.out)).toEqual([`dumping ${r.pid}`]);
      expect(waitReaped(r.pid)).toBe(true);
      const rs = criu(['restore', '-D', r.img, '-d', '-o', 'restore.log']);
      expect(rs.code, rs.stderr).toBe(0);
      for (let i = 0; i < 1000 && lines(r.out).length < 2; i++) sleep(20);
      expect(lines(r.out)).toEqual([`dumping ${r.pid}`, `answer 1 pid ${r.pid} same_pid 1 memory_ok 1 file_ok 1`]);
      expect(waitReaped(r.pid, 10_000)).toBe(true);
    } finally {
      if (service.pid !== undefined) {
        service.kill('SIGTERM');
        if (!waitGone(service.pid, 5000)) killTree(service.pid);
      }
    }
  });

  it('over criu swrk with leave_running (CRIU\'s libcriu test_self): 0 and running on; `criu restore` brings it back to return 1', () => {
    const r = runClient(criuBin, true, [LIBCRIU_BIN]);
    expect(r.status, clientLog(r)).toBe(0);
    expect(lines(r.out)).toEqual([`dumping ${r.pid}`, `answer 0 pid ${r.pid} same_pid 1 memory_ok 1 file_ok 1`]);
    expect(waitReaped(r.pid)).toBe(true);
    const rs = criu(['restore', '-D', r.img, '-o', 'restore.log']);
    expect(rs.code, rs.stderr).toBe(0);
    expect(lines(r.out)).toEqual([`dumping ${r.pid}`, `answer 0 pid ${r.pid} same_pid 1 memory_ok 1 file_ok 1`, `answer 1 pid ${r.pid} same_pid 1 memory_ok 1 file_ok 1`]);
  });
});
