/**
 * Unix sockets whose peer is outside the dumped tree (the unixext workload): the outside peer,
 * and a restore handed the descriptor that stands in for a socket (--inherit-fd), made by a
 * python3 that connects a fresh (blocking) stream socket to the peer and execs the restore.
 */
import { readlinkSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startWorkload, tmp, type Workload } from '../dump/helpers.js';
import { criuBin } from '../lib/paths.js';

/** The outside end: a datagram socket on DIR/d.sock, a stream echo listener on DIR/s.sock. */
export function startUnixPeer(): { dir: string; peer: Workload } {
  const dir = tmp('unixext-peer');
  return { dir, peer: startWorkload('unixext', ['peer', dir]) };
}

/** The inode of the socket a task holds at fd (socket:[INO]). */
export function socketIno(pid: number, fd: number): number {
  return Number(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))![1]);
}

/** How many datagrams the peer has received (its state line). */
export function peerDgrams(peer: Workload): number {
  return Number(/dgrams=(\d+)/.exec(spawnSync('cat', [peer.state], { encoding: 'utf8' }).stdout)?.[1] ?? -1);
}

/**
 * `restore -D dir -d --inherit-fd fd[10]:socket:[ino] ...extra` with descriptor 10 a stream
 * socket connected to the peer's DIR/s.sock; `restorer`: a CRIU binary, else ours.
 */
export function restoreWithSocket(dir: string, peerDir: string, ino: number, extra: string[] = [], restorer?: string) {
  const argv = [...(restorer ? [restorer] : [process.execPath, criuBin]), 'restore', '-D', dir, '-d', '-o', 'restore.log', '--inherit-fd', `fd[10]:socket:[${ino}]`, ...extra];
  const py = [
    'import os, socket, sys',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
    `s.connect(${JSON.stringify(path.join(peerDir, 's.sock'))})`,
    'os.dup2(s.fileno(), 10)',
    's.close()',
    'argv = sys.argv[1:]',
    'os.execv(argv[0], argv)',
  ].join('\n');
  const r = spawnSync('/usr/bin/python3', ['-c', py, ...argv], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
