import { describe, expect, it } from 'vitest';
import { sockoptCalls } from './plan.js';
import { filterProgram, filterWords } from './filter.js';

describe('sockoptCalls: sk_opts_entry back into setsockopt calls', () => {
  it('only what differs from a new socket, the buffer lock last', () => {
    const calls = sockoptCalls({ so_sndbuf: 4608, so_rcvbuf: 4608, so_snd_tmo_sec: 0n, so_snd_tmo_usec: 0n, so_rcv_tmo_sec: 2n, so_rcv_tmo_usec: 500n, so_keepalive: true, so_rcvlowat: 1, so_priority: 0, so_linger: 7, so_buf_lock: 0 }, false);
    expect(calls.map((c) => [c.level, c.name])).toEqual([[1, 20], [1, 9], [1, 13], [1, 72]]);
    expect(calls[0]!.value.readBigInt64LE(0)).toBe(2n);
    expect(calls[0]!.value.readBigInt64LE(8)).toBe(500n);
    expect([calls[2]!.value.readInt32LE(0), calls[2]!.value.readInt32LE(4)]).toEqual([1, 7]);
  });

  it('TCP keepalive timers only for TCP; a filter as its instructions', () => {
    const o = { so_sndbuf: 0, so_rcvbuf: 0, so_snd_tmo_sec: 0n, so_snd_tmo_usec: 0n, so_rcv_tmo_sec: 0n, so_rcv_tmo_usec: 0n, so_keepalive: true, tcp_keepidle: 30, tcp_keepcnt: 3, tcp_keepintvl: 5, so_filter: [0x0000000000000006n, 0xffff000000000006n] };
    expect(sockoptCalls(o, true).map((c) => [c.level, c.name])).toEqual([[1, 9], [6, 6], [6, 4], [6, 5], [1, 26]]);
    expect(sockoptCalls(o, false).map((c) => [c.level, c.name])).toEqual([[1, 9], [1, 26]]);
    expect(sockoptCalls(o, true).at(-1)!.value.length).toBe(16);
  });

  it("a filter's instructions as CRIU 4.2 keeps them: code, jt, jf, k from the top bits down", () => {
    // ld [14]; jeq #0x70005712, 0, 1; ret #0xffff; ret #0 (words from a CRIU 4.2 dump)
    const words = [0x2000000000000en, 0x15000170005712n, 0x600000000ffffn, 0x6000000000000n];
    const prog = Buffer.alloc(32);
    [[0x20, 0, 0, 14], [0x15, 0, 1, 0x70005712], [0x06, 0, 0, 0xffff], [0x06, 0, 0, 0]].forEach(([code, jt, jf, k], i) => {
      prog.writeUInt16LE(code!, 8 * i);
      prog[8 * i + 2] = jt!;
      prog[8 * i + 3] = jf!;
      prog.writeUInt32LE(k!, 8 * i + 4);
    });
    expect(filterWords(prog)).toEqual(words);
    expect(filterProgram(words)).toEqual(prog);
    expect(filterProgram(words.map(Number))).toEqual(prog);
  });
});
