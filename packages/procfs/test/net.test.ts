import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { socketNetRow } from '../src/net.js';

const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A fake /proc with process 77's net tables (removed after the file's tests). */
function fakeProc(tables: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'procfs-net-'));
  made.push(root);
  mkdirSync(path.join(root, '77', 'net'), { recursive: true });
  for (const [name, text] of Object.entries(tables)) writeFileSync(path.join(root, '77', 'net', name), text);
  return root;
}

const INET_HEAD = '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n';

describe('socketNetRow: a socket in /proc/PID/net', () => {
  it('a connected UDP socket: queues, state and peer (address words as the kernel prints them)', () => {
    const procRoot = fakeProc({
      udp: INET_HEAD + '  5: 0100007F:8EA2 0100007F:BA25 01 00000000:00000340 00:00000000 00000000     0        0 4994189 2 0000000000000000 0\n',
    });
    expect(socketNetRow(77, 4994189, { procRoot })).toEqual({ table: 'udp', receive: 0x340, send: 0, state: 1, remote: { words: [0x0100007f], port: 0xba25 } });
    expect(socketNetRow(77, 1, { procRoot })).toBeUndefined();
  });

  it('an IPv6 ping socket, a netlink and a packet socket', () => {
    const procRoot = fakeProc({
      icmp6: INET_HEAD + '  1: 00000000000000000000000001000000:408F 00000000000000000000000000000000:0000 07 00000010:00000000 00:00000000 00000000     0        0 42 2 0000000000000000 0\n',
      netlink: 'sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n0000000029c7c9b4 0   2704       00400000 1280     0        0     2        0        43\n',
      packet: 'sk               RefCnt Type Proto  Iface R Rmem   User   Inode\n0000000000000000 3      2    88b5   1     1 2304   0      44\n',
    });
    expect(socketNetRow(77, 42, { procRoot })).toEqual({ table: 'icmp6', receive: 0, send: 16, state: 7, remote: { words: [0, 0, 0, 0], port: 0 } });
    expect(socketNetRow(77, 43, { procRoot })).toEqual({ table: 'netlink', receive: 1280, send: 0 });
    expect(socketNetRow(77, 44, { procRoot })).toEqual({ table: 'packet', receive: 2304, send: 0 });
  });
});
