import { spawn } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { seqpacketConnect, seqpacketListen, seqpacketPair } from '../src/index.js';

describe('SOCK_SEQPACKET sockets', () => {
  it('keep message boundaries: three quick sends are three receives, never merged', async () => {
    const [a, b] = seqpacketPair();
    try {
      a.send(Buffer.from('one'));
      a.send(Buffer.alloc(70_000, 7)); // bigger than a 64 KiB read buffer
      a.send(Buffer.from('three'));
      expect((await b.receive())!.data.toString()).toBe('one');
      const big = (await b.receive())!.data;
      expect(big.length).toBe(70_000);
      expect(big.every((x) => x === 7)).toBe(true);
      expect((await b.receive())!.data.toString()).toBe('three');
    } finally {
      a.close();
      b.close();
    }
  });

  it('a receive waits on the event loop, not in the call: timers run meanwhile', async () => {
    const [a, b] = seqpacketPair();
    try {
      let ticks = 0;
      const iv = setInterval(() => ticks++, 5);
      setTimeout(() => a.send(Buffer.from('late')), 60);
      const p = await b.receive();
      clearInterval(iv);
      expect(p!.data.toString()).toBe('late');
      expect(ticks).toBeGreaterThan(3);
    } finally {
      a.close();
      b.close();
    }
  });

  it('null once the peer closes; close() ends a pending receive', async () => {
    const [a, b] = seqpacketPair();
    setTimeout(() => a.close(), 20);
    expect(await b.receive()).toBeNull();
    b.close();
    const [c, d] = seqpacketPair();
    const pending = d.receive();
    setTimeout(() => d.close(), 20);
    expect(await pending).toBeNull();
    c.close();
  });

  it('pass descriptors (SCM_RIGHTS) and tell the peer (SO_PEERCRED)', async () => {
    const [a, b] = seqpacketPair();
    const fd = openSync('/dev/null', 'r');
    try {
      a.send(Buffer.from('x'), [fd]);
      const p = (await b.receive())!;
      expect(p.fds).toHaveLength(1);
      expect(fstatSync(p.fds[0]!).rdev).toBe(fstatSync(fd).rdev);
      closeSync(p.fds[0]!);
      expect(b.peer()).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
    } finally {
      closeSync(fd);
      a.close();
      b.close();
    }
  });

  it('another process on an inherited end: its packets arrive one by one', async () => {
    const [a, b] = seqpacketPair();
    // the child writes three messages on its fd 3 with three write(2) calls, back to back
    const child = spawn('/usr/bin/python3', ['-c', 'import os\nfor m in (b"a", b"bb", b"ccc"): os.write(3, m)'], { stdio: ['ignore', 'ignore', 'inherit', b.fd] });
    b.close();
    const got: string[] = [];
    for (let p = await a.receive(); p; p = await a.receive()) got.push(p.data.toString());
    a.close();
    await new Promise((r) => child.on('exit', r));
    expect(got).toEqual(['a', 'bb', 'ccc']);
  });

  it('listen, connect, accept: the server sees the client as its peer', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'crtools-seqpacket-'));
    const srv = seqpacketListen(path.join(dir, 'sock'));
    try {
      const accepted = srv.accept();
      const c = seqpacketConnect(path.join(dir, 'sock'));
      const s = (await accepted)!;
      c.send(Buffer.from('hi'));
      expect((await s.receive())!.data.toString()).toBe('hi');
      expect(s.peer().pid).toBe(process.pid);
      c.close();
      s.close();
      const pending = srv.accept();
      srv.close();
      expect(await pending).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
