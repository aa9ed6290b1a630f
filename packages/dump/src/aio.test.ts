import { describe, expect, it } from 'vitest';
import { aioNrReq } from './aio.js';

describe('aioNrReq', () => {
  it('gives the io_setup argument that makes a ring of that size again (CRIU 4.2 writes the same for these rings)', () => {
    // io_setup(8) on 2 CPUs: max(8, 2 * 4) * 2 + 2 = 18 events, one page of 127
    expect(aioNrReq(4096n)).toBe(62);
    // io_setup(64): 130 events, two pages of 255
    expect(aioNrReq(8192n)).toBe(126);
  });
});
