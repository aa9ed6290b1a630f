/**
 * AIO rings (io_setup): mm.img's aios, as CRIU 4.2 writes them. The ring's area (`/[aio]`,
 * VMA_AREA_AIORING) is dumped with its pages like private memory; its entry gives the ring's
 * address (the context id), length and the number of events to ask io_setup for so that the
 * kernel makes a ring of the same size. The ring's header is read from the frozen task and must
 * be the kernel's (magic, features, header length, events for its size).
 *
 * Not seen: requests submitted and not completed yet (the kernel shows them nowhere); a
 * restored context has none. Refused by name: a ring whose header is not the kernel's, and one
 * that several tasks map (a child forked after io_setup has the area but not the context).
 */
import { CrtoolsError, ExitCode, PAGE_SIZE_BIGINT } from '@crtools/common';
import type { CriuVma } from '@crtools/procfs';
import { readMemory } from '@crtools/parasite';
import type { Entry } from '@crtools/files/dump';

/** struct aio_ring's header: id, nr, head, tail, magic, compat and incompat features, header length */
const HEADER = 32;
/** struct io_event */
const EVENT = 32;
const AIO_RING_MAGIC = 0xa10a10a1;

/**
 * The io_setup argument that gives back a ring of `len` bytes: the kernel doubles what it is
 * asked (at least 4 per CPU), adds 2 and rounds the ring up to pages, so the events the ring
 * holds, less 2, halved (CRIU's estimate).
 */
export function aioNrReq(len: bigint): number {
  const events = Number((len - BigInt(HEADER)) / BigInt(EVENT));
  return Math.floor((events - 2) / 2);
}

/** Which task first mapped each ring (by the inode of its area), to refuse one mapped twice. */
export class AioRings {
  private readonly owners = new Map<bigint, number>();

  /** The aios entry of task pid's ring area v (frozen), or a refusal by name. */
  entry(pid: number, v: CriuVma): Entry {
    const where = `task ${pid}: AIO ring ${v.start.toString(16)}-${v.end.toString(16)}`;
    const refuse = (why: string): never => {
      throw new CrtoolsError('UNSUPPORTED_VMA', `${where} ${why}`, { context: { pid }, exitCode: ExitCode.UNSUPPORTED });
    };
    const owner = this.owners.get(v.ino);
    if (owner !== undefined && owner !== pid) refuse(`is task ${owner}'s ring too (a child forked after io_setup maps it without its context): not supported`);
    this.owners.set(v.ino, pid);
    const len = v.end - v.start;
    const h = Buffer.alloc(HEADER);
    if (len % PAGE_SIZE_BIGINT !== 0n || len < BigInt(HEADER) || readMemory(pid, v.start, h) !== HEADER) refuse('cannot be read');
    const [, nr, head, tail, magic, compat, incompat, headerLength] = Array.from({ length: 8 }, (_, i) => h.readUInt32LE(4 * i)) as number[];
    const fits = Number((len - BigInt(HEADER)) / BigInt(EVENT));
    if (magic !== AIO_RING_MAGIC || compat !== 1 || incompat !== 0 || headerLength !== HEADER || nr !== fits || head! >= nr! || tail! >= nr!) {
      refuse(`has a header that is not the kernel's (magic ${magic!.toString(16)}, ${nr} events for ${fits}, head ${head}, tail ${tail}): not supported`);
    }
    const nrReq = aioNrReq(len);
    if (nrReq <= 0) refuse(`is too small for a ring io_setup makes (${len} bytes)`);
    return { id: v.start, ring_len: Number(len), nr_req: nrReq };
  }
}
