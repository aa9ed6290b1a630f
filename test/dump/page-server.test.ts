/**
 * `criu page-server` and `criu dump --page-server`: pages over TCP (loopback) to a page server
 * writing into the images directory, the rest of the images local; round trips held to the state
 * fingerprint, the failure cases (no server, a server dying mid-transfer, a client speaking
 * garbage), and interop with CRIU 4.2 both ways where such a binary is at hand.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { compareFingerprints, EXPECTED_CHANGES, fingerprint, NOT_CARRIED_YET } from '@crtools/inspect';
import { criuBin } from '../lib/paths.js';
import { alive, askVerdict, criu, killAllStarted, killTree, killTreeAndWait, sleep, startWorkload, tmp, treePids, waitGone, waitReaped } from './helpers.js';
import { killRestored, mapsOf, restoreDir } from '../restore/roundtrip.js';

// a real CRIU 4+ (crtools' own criu also says "Version: 4.2", with a "crtools:" line after it)
const CRIU = [process.env.CRIU, 'criu'].find((c) => {
  const v = c ? (spawnSync(c, ['--version'], { encoding: 'utf8' }).stdout ?? '') : '';
  return /Version: ([4-9]|\d\d)\./.test(v) && !/^crtools:/m.test(v);
});

const servers: number[] = [];
afterEach(() => {
  killRestored();
  for (const p of servers.splice(0)) killTree(p);
});
afterAll(() => killAllStarted());

/** A free TCP port on loopback (bound and released). */
function freePort(): number {
  const r = spawnSync(process.execPath, ['-e', "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

/** `criu page-server --daemon` (ours, or CRIU's): returns once it listens; its pid is remembered for cleanup. */
function daemonServer(dir: string, port: number, bin: 'ours' | string = 'ours'): number {
  const args = ['page-server', '-D', dir, '--port', String(port), '--daemon', '--pidfile', 'ps.pid', '-o', 'ps.log', '-v4'];
  const r = bin === 'ours' ? criu(args) : (() => {
    const x = spawnSync(bin, args, { encoding: 'utf8', timeout: 30_000 });
    return { code: x.status, stderr: x.stderr };
  })();
  expect(r.code, r.stderr).toBe(0);
  const pid = Number(readFileSync(path.join(dir, 'ps.pid'), 'utf8').trim());
  servers.push(pid);
  return pid;
}

/** A page-server in the foreground (async), with --status-fd 3: resolves once ready. */
async function foregroundServer(dir: string, extra: string[] = []): Promise<{ child: ChildProcess; exit: Promise<{ code: number | null; stderr: string }> }> {
  const child = spawn(process.execPath, [criuBin, 'page-server', '-D', dir, '--status-fd', '3', ...extra], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  servers.push(child.pid!);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exit = new Promise<{ code: number | null; stderr: string }>((r) => child.on('exit', (code) => r({ code, stderr })));
  const ready = await new Promise<Buffer>((resolve, reject) => {
    const s = child.stdio[3] as NodeJS.ReadableStream;
    let got = Buffer.alloc(0);
    s.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
    s.on('end', () => resolve(got));
    child.on('exit', () => reject(new Error(`page-server exited before ready: ${stderr}`)));
  });
  expect(ready).toEqual(Buffer.from([0]));
  return { child, exit };
}

const psIov = (cmd: number, nrPages: bigint, vaddr: bigint, dstId: bigint) => {
  const b = Buffer.alloc(32);
  b.writeUInt32LE(cmd, 0);
  b.writeBigUInt64LE(nrPages, 8);
  b.writeBigUInt64LE(vaddr, 16);
  b.writeBigUInt64LE(dstId, 24);
  return b;
};

const oneLine = (s: string) => s.trim().split('\n').filter(Boolean);

/** The pattern workload `w`, ended by its dump into `dir`: restored from it, its verdict intact, then killed. */
function restoredIntact(w: { pid: number; state: string }, dir: string, verdictMs?: number): void {
  expect(waitReaped(w.pid)).toBe(true);
  const r = restoreDir(dir);
  expect(r.code, r.stderr).toBe(0);
  expect(askVerdict(w.state, w.pid, verdictMs)).toBe('check ok bad=0');
  killTree(w.pid);
  expect(waitGone(w.pid)).toBe(true);
}

describe('dump --page-server to criu page-server, restore', () => {
  for (const [name, args, want, sameMaps] of [
    ['pattern', ['64'], /^check ok bad=0$/, true],
    ['shmem', ['shm'], /^check ok$/, true],
  ] as const) {
    it(`${name}: pages through the page server, twice in a row, fingerprint and verdict intact`, () => {
      const w = startWorkload(name, [...args]);
      const before = mapsOf(w.pid);
      for (let round = 0; round < 2; round++) {
        const dir = tmp(`ps-${name}-${round}`);
        const port = freePort();
        daemonServer(dir, port);
        const print = fingerprint(w.pid);
        const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '--page-server', '--address', '127.0.0.1', '--port', String(port)]);
        expect(d.code, d.stderr).toBe(0);
        // the pages came through the server (its ids start at 0x10001), none written by the dump
        const files = readdirSync(dir);
        expect(files.filter((f) => f.startsWith('pages-')).every((f) => Number(/\d+/.exec(f)![0]) >= 0x10001)).toBe(true);
        expect(files.some((f) => /^pagemap-\d+\.img$/.test(f))).toBe(true);
        if (name === 'shmem') expect(files.some((f) => /^pagemap-shmem-\d+\.img$/.test(f))).toBe(true);
        expect(readFileSync(path.join(dir, 'ps.log'), 'utf8')).toMatch(/Session over/);
        expect(waitReaped(w.pid)).toBe(true);
        const r = restoreDir(dir);
        expect(r.code, r.stderr).toBe(0);
        expect(compareFingerprints(print, fingerprint(w.pid), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET])).toEqual([]);
        if (sameMaps) expect(mapsOf(w.pid)).toEqual(before);
        expect(askVerdict(w.state, w.pid, 20_000)).toMatch(want);
      }
      killTreeAndWait(w.pid);
    });
  }

  it('without --port the kernel picks one, logged as CRIU logs it ("Using N port"); --status-fd says when it listens; the server exits after the dump', async () => {
    const dir = tmp('ps-port0');
    const { child, exit } = await foregroundServer(dir, ['--address', '127.0.0.1', '-o', 'ps.log', '-v4']);
    const m = /Using (\d+) port/.exec(readFileSync(path.join(dir, 'ps.log'), 'utf8'));
    expect(m).not.toBeNull();
    const w = startWorkload('pattern', ['4']);
    const d = spawn(process.execPath, [criuBin, 'dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '--page-server', '--address', '127.0.0.1', '--port', m![1]!], { stdio: 'ignore' });
    expect(await new Promise((r) => d.on('exit', r))).toBe(0);
    expect((await exit).code).toBe(0);
    expect(child.exitCode).toBe(0);
    restoredIntact(w, dir);
  });

  it('a page server that starts listening after the dump has started (`criu page-server ... & criu dump --page-server`, as CRIU\'s scripts run them): the dump waits for it, the tree untouched meanwhile', async () => {
    const w = startWorkload('pattern', ['4']);
    const dir = tmp('ps-late');
    const port = freePort();
    const d = spawn(process.execPath, [criuBin, 'dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '-v4', '--page-server', '--address', '127.0.0.1', '--port', String(port)], { stdio: 'ignore' });
    const dumped = new Promise((r) => d.on('exit', r));
    // the dump is refused by the port for a while: nothing of the tree is touched meanwhile
    await new Promise((r) => setTimeout(r, 1000));
    expect(d.exitCode).toBeNull();
    expect(readFileSync(`/proc/${w.pid}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
    const { exit } = await foregroundServer(dir, ['--address', '127.0.0.1', '--port', String(port), '-o', 'ps.log']);
    expect(await dumped).toBe(0);
    expect((await exit).code).toBe(0);
    expect(readdirSync(dir).some((f) => f === 'pages-65537.img')).toBe(true);
    restoredIntact(w, dir);
  });
});

describe('over RPC', () => {
  it("a DUMP request's ps (address, port) sends the pages to the page server; ps.fd is refused by name", async () => {
    const { CriuClient } = await import('@crtools/rpc');
    const client = new CriuClient({ criu: criuBin });
    const w = startWorkload('pattern', ['8']);
    const dir = tmp('ps-rpc');
    const refused = await client.dump({ imagesDir: dir, pid: w.pid, ps: { address: '127.0.0.1', port: 1, fd: 5 } }).catch((e) => e);
    expect(String(refused?.message)).toMatch(/ps\.fd: a page-server socket handed by the client is not supported/);
    expect(askVerdict(w.state, w.pid)).toBe('check ok bad=0');
    const port = freePort();
    daemonServer(dir, port);
    expect(await client.dump({ imagesDir: dir, pid: w.pid, log_file: 'dump.log', ps: { address: '127.0.0.1', port } })).toEqual({ restored: false });
    expect(readFileSync(path.join(dir, 'ps.log'), 'utf8')).toMatch(/Session over/);
    expect(readdirSync(dir).some((f) => f === 'pages-65537.img')).toBe(true);
    restoredIntact(w, dir, 20_000);
  });
});

describe('failures', () => {
  it('no server listening: one line, exit 1, the tree goes on untouched, nothing written', () => {
    const w = startWorkload('pattern', ['4']);
    const dir = tmp('ps-none');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '--page-server', '--address', '127.0.0.1', '--port', String(freePort())]);
    expect(d.code).toBe(1);
    expect(oneLine(d.stderr)).toHaveLength(1);
    expect(d.stderr).toMatch(/can't connect to the page server at 127\.0\.0\.1:\d+: ECONNREFUSED/);
    expect(readdirSync(dir)).toEqual([]);
    expect(alive(w.pid)).toBe(true);
    expect(readFileSync(`/proc/${w.pid}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
    expect(askVerdict(w.state, w.pid)).toBe('check ok bad=0');
    w.kill();
    expect(waitGone(w.pid)).toBe(true);
  });

  it('the server dies mid-transfer: one line, exit 1, the tree resumed intact, no images left', () => {
    const w = startWorkload('pattern', ['64']);
    const dir = tmp('ps-dies');
    const port = freePort();
    // a server that answers OPEN2 and drops the connection after 1 MiB of pages
    const fake = spawn(process.execPath, ['-e', `
      const net = require('net');
      const s = net.createServer((c) => { let n = 0, opened = false;
        c.on('data', (d) => { n += d.length; if (!opened && n >= 32) { opened = true; c.write(Buffer.from([0])); }
          if (n > (1 << 20)) { c.destroy(); s.close(); process.exit(0); } });
        c.on('error', () => {}); });
      s.listen(${port}, '127.0.0.1', () => process.stdout.write('ready\\n'));`], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    servers.push(fake.pid!);
    for (let i = 0; i < 500 && !existsSync(`/proc/${fake.pid}`); i++) sleep(10);
    // wait until it listens
    for (let i = 0; i < 300; i++) {
      const probe = spawnSync(process.execPath, ['-e', `require('net').connect(${port},'127.0.0.1').on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))`]);
      if (probe.status === 0) break;
      sleep(20);
    }
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '--page-server', '--address', '127.0.0.1', '--port', String(port)]);
    expect(d.code).toBe(1);
    expect(oneLine(d.stderr)).toHaveLength(1);
    expect(d.stderr).toMatch(/page-server connection was lost|doesn't answer/);
    expect(readdirSync(dir)).toEqual([]);
    expect(alive(w.pid)).toBe(true);
    expect(readFileSync(`/proc/${w.pid}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
    expect(askVerdict(w.state, w.pid, 10_000)).toBe('check ok bad=0');
    w.kill();
    expect(waitGone(w.pid)).toBe(true);
  });

  it('a client speaking garbage: the server says so in one line, exits non-zero, writes nothing', async () => {
    const dir = tmp('ps-garbage');
    const { exit } = await foregroundServer(dir, ['--address', '127.0.0.1', '-o', 'ps.log', '-v4']);
    const port = Number(/Using (\d+) port/.exec(readFileSync(path.join(dir, 'ps.log'), 'utf8'))![1]);
    const c = connect(port, '127.0.0.1');
    c.on('error', () => {});
    await new Promise((r) => c.once('connect', r));
    c.end(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n and some more bytes'));
    const e = await exit;
    expect(e.code).toBe(3);
    expect(oneLine(e.stderr)).toHaveLength(1);
    expect(e.stderr).toMatch(/page server: unknown command/);
    expect(readdirSync(dir).filter((f) => f.endsWith('.img'))).toEqual([]);
  });

  it('a client that dies mid-transfer: exit 3 (truncated stream), no half-written pagemap or pages image left', async () => {
    const dir = tmp('ps-halfway');
    const { exit } = await foregroundServer(dir, ['--address', '127.0.0.1', '-o', 'ps.log', '-v4']);
    const port = Number(/Using (\d+) port/.exec(readFileSync(path.join(dir, 'ps.log'), 'utf8'))![1]);
    const c = connect(port, '127.0.0.1');
    c.on('error', () => {});
    await new Promise((r) => c.once('connect', r));
    c.write(psIov(4, 0n, 0n, (1234n << 8n) | 1n)); // OPEN2 task 1234
    await new Promise((r) => c.once('data', r)); // has_parent
    c.write(psIov((4 << 16) | 6, 16n, 0x7f0000000000n, (1234n << 8n) | 1n)); // ADD_F PE_PRESENT, 16 pages
    c.write(Buffer.alloc(5 * 4096, 7));
    await new Promise((r) => setTimeout(r, 200));
    expect(readdirSync(dir).some((f) => f.endsWith('.img'))).toBe(true); // being written
    c.destroy();
    const e = await exit;
    expect(e.code).toBe(3);
    expect(oneLine(e.stderr)).toHaveLength(1);
    expect(readdirSync(dir).filter((f) => f.endsWith('.img'))).toEqual([]);
  });

  it('bad arguments: --port 0 or garbage, an address that is not one, a missing images dir, --page-server without --port', () => {
    const dir = tmp('ps-args');
    for (const [args, re] of [
      [['page-server', '-D', dir, '--port', '0'], /invalid argument for --port: 0/],
      [['page-server', '-D', dir, '--port', 'http'], /invalid argument for --port: http/],
      [['page-server', '-D', dir, '--address', 'not-an-ip', '--port', '1'], /invalid page server address "not-an-ip"/],
      [['page-server', '-D', path.join(dir, 'nope'), '--port', '1'], /can't open the images directory/],
      [['dump', '-t', '2', '-D', dir, '--page-server', '--address', '127.0.0.1'], /--page-server needs --address and --port/],
    ] as const) {
      const r = criu([...args]);
      expect(r.code, r.stderr).not.toBe(0);
      expect(oneLine(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe.skipIf(!CRIU)(`page-server interop with CRIU 4.2 (${CRIU ?? 'no CRIU 4+ binary here'})`, () => {
  it('crtools dump --page-server → CRIU 4.2 page-server; restored by crtools and by CRIU', () => {
    const w = startWorkload('pattern', ['32']);
    const dir = tmp('ps-to-criu');
    const port = freePort();
    daemonServer(dir, port, CRIU!);
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '--page-server', '--address', '127.0.0.1', '--port', String(port)]);
    expect(d.code, d.stderr).toBe(0);
    expect(readFileSync(path.join(dir, 'ps.log'), 'utf8')).toMatch(/Session over/);
    expect(waitReaped(w.pid)).toBe(true);
    let r = restoreDir(dir);
    expect(r.code, r.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid, 20_000)).toBe('check ok bad=0');
    killTree(w.pid);
    expect(waitReaped(w.pid)).toBe(true);
    const c = spawnSync(CRIU!, ['restore', '-D', dir, '-d', '-o', 'restore.log'], { encoding: 'utf8', timeout: 30_000 });
    expect(c.status, c.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid, 20_000)).toBe('check ok bad=0');
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
  });

  it('CRIU 4.2 dump --page-server → crtools page-server; restored by crtools and by CRIU', () => {
    for (const [name, args, want] of [['pattern', ['32'], 'check ok bad=0'], ['shmem', ['shm'], 'check ok']] as const) {
      const w = startWorkload(name, [...args]);
      const dir = tmp(`ps-from-criu-${name}`);
      mkdirSync(dir, { recursive: true });
      const port = freePort();
      daemonServer(dir, port);
      const d = spawnSync(CRIU!, ['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '--page-server', '--address', '127.0.0.1', '--port', String(port)], { encoding: 'utf8', timeout: 60_000 });
      expect(d.status, `CRIU dump: ${d.stderr}`).toBe(0);
      expect(readFileSync(path.join(dir, 'ps.log'), 'utf8')).toMatch(/Session over/);
      expect(readdirSync(dir).filter((f) => f.startsWith('pages-')).every((f) => Number(/\d+/.exec(f)![0]) >= 0x10001)).toBe(true);
      expect(waitReaped(w.pid)).toBe(true);
      const r = restoreDir(dir);
      expect(r.code, r.stderr).toBe(0);
      expect(askVerdict(w.state, w.pid, 20_000)).toBe(want);
      const pids = treePids(w.pid);
      killTree(w.pid);
      for (const p of pids) expect(waitReaped(p)).toBe(true);
      const c = spawnSync(CRIU!, ['restore', '-D', dir, '-d', '-o', 'restore.log'], { encoding: 'utf8', timeout: 30_000 });
      expect(c.status, c.stderr).toBe(0);
      expect(askVerdict(w.state, w.pid, 20_000)).toBe(want);
      const pids2 = treePids(w.pid);
      killTree(w.pid);
      for (const p of pids2) expect(waitGone(p)).toBe(true);
    }
  });
});
