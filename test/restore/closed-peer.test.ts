/**
 * A unix connection whose other end was closed (the kernel shuts the survivor down both ways;
 * CRIU's "semi-closed connection"): what it had not read yet is still there after a restore,
 * then end of file; writing to it fails with EPIPE. Stream and seqpacket, in a real python3,
 * round-tripped twice under the fingerprint. Every process is killed by pid.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { killAllStarted, sleep, tmp } from '../dump/helpers.js';
import { killRestored, roundTrip } from './roundtrip.js';

afterEach(killRestored);
afterAll(() => killAllStarted());

// argv: ready file, trigger, result. Each pair's second end sends a message and is closed; on
// the trigger, the survivors are read (with MSG_PEEK, so the queue stays for the next round)
// and written to: "stream=left seqpacket=left eof=... epipe=..."
const PROGRAM = `
import os, socket, sys, time
ready, trigger, result = sys.argv[1:4]
pairs = {}
for name, kind in (('stream', socket.SOCK_STREAM), ('seqpacket', socket.SOCK_SEQPACKET)):
    a, b = socket.socketpair(socket.AF_UNIX, kind)
    b.send(b'left-' + name.encode())
    b.close()
    pairs[name] = a
open(ready, 'w').write('1')
while True:
    if os.path.exists(trigger):
        os.unlink(trigger)
        out = []
        for name, a in pairs.items():
            out.append(name + '=' + a.recv(64, socket.MSG_PEEK).decode())
            try:
                a.send(b'x')
                out.append('send=ok')
            except BrokenPipeError:
                out.append('send=epipe')
        open(result + '.tmp', 'w').write(' '.join(out))
        os.rename(result + '.tmp', result)
    time.sleep(0.02)
`;

it('python3: socketpairs (stream, seqpacket) whose other end was closed keep their unread message, then EOF; sending fails with EPIPE', () => {
  const dir = tmp('closed-peer');
  const [ready, trigger, result] = ['ready', 'trigger', 'result'].map((f) => path.join(dir, f)) as [string, string, string];
  const ask = (): string => {
    writeFileSync(result, '');
    writeFileSync(trigger, '');
    for (let i = 0; i < 300; i++) {
      const r = readFileSync(result, 'utf8');
      if (r) return r;
      sleep(10);
    }
    return 'no answer';
  };
  roundTrip('launch', ['/usr/bin/python3', '-c', PROGRAM, ready, trigger, result], () => {
    expect(ask()).toBe('stream=left-stream send=epipe seqpacket=left-seqpacket send=epipe');
  }, false, () => existsSync(ready));
});
