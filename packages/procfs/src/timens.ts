/**
 * /proc/PID/timens_offsets: the offsets of CLOCK_MONOTONIC and CLOCK_BOOTTIME in the time
 * namespace the task's children are born in (time_for_children), from the host's clocks; one
 * line per clock, "<name> <seconds> <nanoseconds>" (seconds may be negative, nanoseconds are
 * 0…999999999). Written back as "<clockid> <seconds> <nanoseconds>" lines (formatTimensOffsets).
 */
import { parseError, type ParseOptions } from './errors.js';
import { readProcText, type ProcOptions, type Target } from './read.js';

/** A clock offset (or a clock's value): whole seconds and nanoseconds (0…999999999). */
export interface Timespec {
  sec: bigint;
  nsec: bigint;
}

export interface TimensOffsets {
  monotonic: Timespec;
  boottime: Timespec;
}

const NSEC = 1_000_000_000n;

/** clock ids written to timens_offsets */
const CLOCK_ID = { monotonic: 1, boottime: 7 } as const;

export function parseTimensOffsets(text: string, opts?: ParseOptions): TimensOffsets {
  const out: Partial<TimensOffsets> = {};
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const m = /^(monotonic|boottime)\s+(-?\d{1,20})\s+(\d{1,9})$/.exec(line.trim());
    if (!m) throw parseError(opts?.path, i + 1, 'expected "monotonic|boottime SECONDS NANOSECONDS"', line);
    out[m[1] as keyof TimensOffsets] = { sec: BigInt(m[2]!), nsec: BigInt(m[3]!) };
  });
  if (!out.monotonic || !out.boottime) throw parseError(opts?.path, 1, 'expected the monotonic and boottime offsets', text.trim());
  return out as TimensOffsets;
}

export const readTimensOffsets = (t: Target, o?: ProcOptions): TimensOffsets => {
  const r = readProcText(t, 'timens_offsets', o);
  return parseTimensOffsets(r.text, { path: r.path });
};

/** a + b - c, normalized (nanoseconds 0…999999999). */
export function timespecAdd(a: Timespec, b: Timespec, c: Timespec = { sec: 0n, nsec: 0n }): Timespec {
  const t = (a.sec + b.sec - c.sec) * NSEC + a.nsec + b.nsec - c.nsec;
  const sec = t >= 0n ? t / NSEC : -((-t + NSEC - 1n) / NSEC);
  return { sec, nsec: t - sec * NSEC };
}

/** The text that sets these offsets through timens_offsets (clock ids, as CRIU writes them). */
export function formatTimensOffsets(o: TimensOffsets): string {
  return `${CLOCK_ID.monotonic} ${o.monotonic.sec} ${o.monotonic.nsec}\n${CLOCK_ID.boottime} ${o.boottime.sec} ${o.boottime.nsec}\n`;
}
