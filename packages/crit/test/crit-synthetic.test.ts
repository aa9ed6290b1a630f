/**
 * A synthetic checkpoint built from the sleep fixture with our own encoder: a unix socket, a
 * TCP socket and a memfd (fds 3-5), and a shared mapping of the memfd. Checks the x views that
 * the fixtures cannot exercise (sk, memfd naming), and that fds still print as CRIU's crit.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../src/decode.js';
import { encodeImage } from '../src/encode.js';
import { exploreDir } from '../src/x.js';
import { parseJson, type JsonValue } from '../src/index.js';
import { pyDumps } from '../src/pyjson.js';
import { collectOutput, criuFixtures, referenceCritUsable } from '@crtools/common/testing';

const fixtures = criuFixtures();
const haveFixtures = existsSync(fixtures);
const haveDebian = referenceCritUsable();
const tmp = mkdtempSync(path.join(tmpdir(), 'crit-synth-'));
const dir = path.join(tmp, 'ckpt');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Obj = { [k: string]: JsonValue };
async function load(file: string): Promise<{ magic: string; entries: Obj[] }> {
  const o = collectOutput();
  await decodeImage(path.join(dir, file), o.w);
  return parseJson(o.text()) as unknown as { magic: string; entries: Obj[] };
}
async function save(file: string, img: { magic: string; entries: Obj[] }): Promise<void> {
  const src = new PassThrough();
  src.end(pyDumps(img));
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(c, _e, cb) {
      chunks.push(Buffer.from(c));
      cb();
    },
  });
  await encodeImage(src, w, { name: file });
  writeFileSync(path.join(dir, file), Buffer.concat(chunks));
}

const fown = { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 };
const opts = { so_sndbuf: 212992, so_rcvbuf: 212992, so_snd_tmo_sec: 0, so_snd_tmo_usec: 0, so_rcv_tmo_sec: 0, so_rcv_tmo_usec: 0 };

beforeAll(async () => {
  if (!haveFixtures) return;
  cpSync(path.join(fixtures, 'sleep'), dir, { recursive: true });
  const files = await load('files.img');
  files.entries.push(
    { type: 'UNIXSK', id: 100, usk: { id: 100, ino: 5555, type: 1, state: 1, flags: 0, uflags: 0, backlog: 0, peer: 5556, fown, opts, name: '/tmp/sock' } },
    { type: 'INETSK', id: 101, isk: { id: 101, ino: 6666, family: 2, type: 1, proto: 6, state: 10, src_port: 8080, dst_port: 0, flags: 0, backlog: 128, src_addr: [16777343], dst_addr: [0], fown, opts } },
    { type: 'MEMFD', id: 102, memfd: { id: 102, flags: 2, pos: 0, fown, inode_id: 7 } },
  );
  await save('files.img', files);
  const fdinfo = await load('fdinfo-2.img');
  fdinfo.entries.push({ id: 100, flags: 0, type: 'UNIXSK', fd: 3 }, { id: 101, flags: 0, type: 'INETSK', fd: 4 }, { id: 102, flags: 0, type: 'MEMFD', fd: 5 });
  await save('fdinfo-2.img', fdinfo);
  await save('memfd.img', { magic: 'MEMFD_INODE', entries: [{ name: 'shared-buf', uid: 0, gid: 0, size: 4096, shmid: 0, seals: 0, inode_id: 7 }] });
  const mm = await load('mm-2680.img');
  const vmas = mm.entries[0]!.vmas as Obj[];
  const anon = vmas.find((v) => v.status === 0x201)!;
  anon.status = 1 | 0x80 | (1 << 14); // regular, file shared, memfd
  anon.shmid = 102;
  anon.flags = 1; // MAP_SHARED
  await save('mm-2680.img', mm);
});

describe.skipIf(!haveFixtures)('x views on a synthetic checkpoint with sockets and a memfd', () => {
  it('sk lists the unix and TCP sockets of the task', async () => {
    const o = collectOutput();
    await exploreDir(dir, 'sk', o.w);
    expect(o.text()).toBe('2680\n\t      3: unix stream ESTABLISHED ino 5555 /tmp/sock -> ino 5556\n\t      4: tcp stream LISTEN ino 6666 127.0.0.1:8080 -> 0.0.0.0:0\n');
    const j = collectOutput();
    await exploreDir(dir, 'sk', j.w, { format: 'json' });
    expect(JSON.parse(j.text())[0].sockets.map((s: { kind: string }) => s.kind)).toEqual(['unix', 'tcp']);
  });

  it('mems names the memfd mapping (CRIU crit prints "unknown path")', async () => {
    const o = collectOutput();
    await exploreDir(dir, 'mems', o.w);
    expect(o.text()).toMatch(/rw- memfd:shared-buf \(s\)\n/);
    expect(o.text()).not.toContain('unknown path');
  });

  it.skipIf(!haveDebian)('fds prints exactly what CRIU crit prints; mems differs only on the memfd line', async () => {
    const o = collectOutput();
    await exploreDir(dir, 'fds', o.w);
    const ref = spawnSync('/usr/bin/python3', ['/usr/bin/crit', 'x', dir, 'fds']).stdout.toString();
    expect(o.text()).toBe(ref);
    expect(ref).toContain('unix[5555 (5556) /tmp/sock]');
    const m = collectOutput();
    await exploreDir(dir, 'mems', m.w);
    const mref = spawnSync('/usr/bin/python3', ['/usr/bin/crit', 'x', dir, 'mems']).stdout.toString();
    const a = m.text().split('\n');
    const b = mref.split('\n');
    expect(a.length).toBe(b.length);
    const diff = a.map((l, i) => [l, b[i]]).filter(([x, y]) => x !== y);
    expect(diff).toHaveLength(1);
    expect(diff[0]![1]).toMatch(/unknown path \(s\)$/);
  });

  it('tree counts the extra files', async () => {
    const o = collectOutput();
    await exploreDir(dir, 'tree', o.w, { format: 'json' });
    const t = JSON.parse(o.text());
    expect(t[0].files.map((f: { fd: number }) => f.fd)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(t[0].files[5].type).toBe('MEMFD');
    expect(readFileSync(path.join(dir, 'memfd.img')).length).toBeGreaterThan(8);
  });
});
