import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { seqpacketPair, type SeqpacketSocket } from '@crtools/sys';
import { decodeResponse, encodeRequest, isOwnAncestor, serveConnection, type CriuReq, type CriuResp } from '../src/index.js';

/** A directory of a test's, removed once the file's tests are done. */
const made: string[] = [];
const scratch = (prefix: string): string => {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A server on one end of a socketpair, a raw client on the other. */
function connection(opts: Parameters<typeof serveConnection>[1] = {}) {
  const [client, server] = seqpacketPair();
  const served = serveConnection(server, { stderr: () => {}, ...opts }).finally(() => server.close());
  const ask = async (req: CriuReq | Buffer): Promise<CriuResp> => {
    client.send(Buffer.isBuffer(req) ? req : encodeRequest(req));
    const p = await client.receive();
    if (!p) throw new Error('no answer');
    return decodeResponse(p.data);
  };
  return { client, served, ask };
}

async function closeAll(c: { client: SeqpacketSocket; served: Promise<unknown> }) {
  c.client.close();
  await c.served.catch(() => undefined);
}

describe('serveConnection', () => {
  it('VERSION: CRIU 4.2, crtools beside it', async () => {
    const c = connection();
    const r = await c.ask({ type: 'VERSION' });
    expect(r).toMatchObject({ type: 'VERSION', success: true, version: { major_number: 4, minor_number: 2 } });
    expect(r.version!.sublevel).toBeUndefined();
    expect(r.version!.name).toMatch(/^crtools /);
    expect(await c.served).toEqual({ requests: 1, success: true });
    c.client.close();
  });

  it("FEATURE_CHECK: mem_track from kerndat's dirty-track method, lazy_pages from userfaultfd's events, pidfd_store false (not carried out yet)", async () => {
    const noncoop = (1n << 1n) | (1n << 2n) | (1n << 3n) | (1n << 6n);
    for (const [method, uffd, want] of [['uffd-wp', noncoop, true], ['soft-dirty', 1n << 1n, true], ['none', 0n, false]] as const) {
      const c = connection({ kerndat: () => ({ mem_dirty_track_method: method, has_uffd: uffd !== 0n, uffd_features: uffd }) as never });
      const r = await c.ask({ type: 'FEATURE_CHECK', features: { mem_track: true, lazy_pages: true, pidfd_store: true } });
      expect(r).toMatchObject({ type: 'FEATURE_CHECK', success: true, features: { mem_track: want, lazy_pages: uffd === noncoop, pidfd_store: false } });
      await closeAll(c);
    }
  });

  it('PAGE_SERVER without a way to start one (no startPageServer given) is refused with a reason', async () => {
    const dir = scratch('crtools-rpc-ps-');
    const c = connection();
    const r = await c.ask({ type: 'PAGE_SERVER', keep_open: true, opts: { images_dir_fd: -1, images_dir: dir, log_to_stderr: true } });
    expect(r).toMatchObject({ type: 'PAGE_SERVER', success: false });
    expect(r.cr_errmsg).toMatch(/starts no page servers/);
    await closeAll(c);
  });

  it('keep_open: several requests on one connection; what is not served is refused by name, never dropped', async () => {
    const c = connection();
    const refused: [CriuReq['type'], RegExp][] = [
      // (served, but this one has no images directory: refused by the field)
      ['CPUINFO_CHECK', /^images_dir_fd: neither images_dir_fd nor images_dir was given$/],
      [99, /^request type 99 is unknown$/],
      ['EMPTY', /EMPTY request is not/],
      // (a NOTIFY is an answer, not a request: answered with type EMPTY, as CRIU does)
      ['NOTIFY', /NOTIFY request is not/],
    ];
    for (const [type, msg] of refused) {
      const r = await c.ask({ type, keep_open: true, opts: { images_dir_fd: -1 } });
      expect(r.success).toBe(false);
      expect(r.cr_errno).toBe(56);
      expect(r.cr_errmsg).toMatch(msg);
      expect(r.type).toBe(typeof type === 'number' || type === 'NOTIFY' ? 'EMPTY' : type);
    }
    // WAIT_PID for a pid that is no child of this process: ECHILD, the connection kept
    expect(await c.ask({ type: 'WAIT_PID', keep_open: true, pid: process.pid })).toMatchObject({ type: 'WAIT_PID', success: false, cr_errno: 10 });
    expect((await c.ask({ type: 'VERSION', keep_open: true })).success).toBe(true);
    // a packet that is no criu_req is answered too (and ends the connection: it asked nothing)
    const bad = await c.ask(Buffer.from([0xff, 0xff, 0xff]));
    expect(bad).toMatchObject({ type: 'EMPTY', success: false });
    expect(bad.cr_errmsg).toMatch(/^malformed request/);
    expect(await c.served).toEqual({ requests: refused.length + 3, success: false });
    c.client.close();
  });

  it('DUMP with an option crtools does not carry out: success false naming it, the engine never called', async () => {
    const c = connection();
    const r = await c.ask({ type: 'DUMP', opts: { images_dir_fd: -1, images_dir: '/nonexistent-never-created', pid: 12345, unprivileged: true } });
    expect(r).toMatchObject({ type: 'DUMP', success: false, dump: { restored: false }, cr_errno: 56, cr_errmsg: 'RPC option unprivileged is not supported by crtools yet' });
    await closeAll(c);
  });

  it('RESTORE that fails answers pid -1 and the reason, also written in its log (the engine refused before it had one)', async () => {
    const c = connection();
    const dir = scratch('crtools-rpc-server-');
    // (a restore carries manage_cgroups now, issue 17; freeze_cgroup it does not)
    const r = await c.ask({ type: 'RESTORE', opts: { images_dir_fd: -1, images_dir: dir, rst_sibling: true, freeze_cgroup: '/sys/fs/cgroup/freezer/x' } });
    expect(r).toMatchObject({ type: 'RESTORE', success: false, restore: { pid: -1 } });
    expect(r.cr_errmsg).toBe('restore: option freeze_cgroup is not supported by crtools yet');
    expect(readFileSync(path.join(dir, 'criu.log'), 'utf8')).toMatch(/^\(\d\d\.\d{6}\) Error \(rpc\): restore: option freeze_cgroup is not supported by crtools yet\n$/);
    await closeAll(c);
  });

  it('a DUMP option refused by the RPC layer is written in the request\'s log too (runc 1.1 shows only the log)', async () => {
    const c = connection();
    const dir = scratch('crtools-rpc-server-');
    const r = await c.ask({ type: 'DUMP', opts: { images_dir_fd: -1, images_dir: dir, pid: 12345, log_file: 'dump.log', log_level: 4, unprivileged: true } });
    expect(r).toMatchObject({ type: 'DUMP', success: false, cr_errno: 56, cr_errmsg: 'RPC option unprivileged is not supported by crtools yet' });
    expect(readFileSync(path.join(dir, 'dump.log'), 'utf8')).toMatch(/^\(\d\d\.\d{6}\) Error \(rpc\): RPC option unprivileged is not supported by crtools yet\n$/);
    await closeAll(c);
  });

  it('a DUMP without pid from a client this server runs under (criu swrk as its child): refused by name, answered, nothing dumped', async () => {
    // (the client here is this very process, SO_PEERCRED's pid: the tree would hold the server)
    const c = connection();
    const dir = scratch('crtools-rpc-self-');
    const r = await c.ask({ type: 'DUMP', opts: { images_dir_fd: -1, images_dir: dir, log_file: 'dump.log' } });
    expect(r).toMatchObject({ type: 'DUMP', success: false, dump: { restored: false } });
    expect(r.cr_errmsg).toMatch(new RegExp(`^The criu itself is within dumped tree: a dump without pid \\(the client ${process.pid} dumping itself\\) .* is not supported; a client dumps itself through criu service$`));
    expect(readFileSync(path.join(dir, 'dump.log'), 'utf8')).toContain('The criu itself is within dumped tree: ');
    expect(await c.served).toEqual({ requests: 1, success: false });
    c.client.close();
  });

  it('a DUMP without pid asking for notifications (the client, frozen, could never answer them): refused by name', async () => {
    const other = spawn('/bin/sleep', ['5'], { stdio: 'ignore' });
    try {
      // (a client that is not this server's ancestor: the refusal is the notifications')
      const c = connection({ peer: { pid: other.pid!, uid: 0, gid: 0 } });
      const r = await c.ask({ type: 'DUMP', opts: { images_dir_fd: -1, images_dir: scratch('crtools-rpc-self-'), notify_scripts: true } });
      expect(r).toMatchObject({ type: 'DUMP', success: false, dump: { restored: false } });
      expect(r.cr_errmsg).toMatch(/^notify_scripts: a dump without pid \(the client dumping itself\) with notifications is not supported/);
      await closeAll(c);
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('isOwnAncestor: this process and its parents, not a child of its own', async () => {
    expect(isOwnAncestor(process.pid)).toBe(true);
    expect(isOwnAncestor(process.ppid)).toBe(true);
    const child = spawn('/bin/sleep', ['5'], { stdio: 'ignore' });
    try {
      expect(isOwnAncestor(child.pid!)).toBe(false);
      expect(isOwnAncestor(process.pid, child.pid!)).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a client that leaves before asking anything: RPC_CLIENT_GONE', async () => {
    const [client, server] = seqpacketPair();
    const served = serveConnection(server);
    client.close();
    await expect(served).rejects.toMatchObject({ code: 'RPC_CLIENT_GONE' });
    server.close();
  });
});
