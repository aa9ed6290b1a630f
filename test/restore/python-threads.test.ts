/**
 * A multithreaded python3 holding ~75 MiB of objects: dump, kill, restore, and check that the
 * objects are intact and that both threads go on. Its layout is the one that once failed at
 * "pages" with ENOENT: the ticker thread's stack (MADV_NOHUGEPAGE) is mapped right below the
 * objects' mappings, so one pagemap entry runs from the stack into the objects, across two areas
 * the restore keeps apart. Every process is found and killed by pid.
 */
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { alive, criu, killAllStarted, killTree, sleep, startWorkload, tmp, waitGone, waitReaped } from '../dump/helpers.js';

const mine: number[] = [];
afterEach(() => {
  for (const p of mine.splice(0)) killTree(p);
});
afterAll(() => killAllStarted());

// argv: tick file, check trigger, result file. Five objects of 15 MiB (each its own mapping, as
// glibc maps big allocations, every page written), then the ticker thread, whose stack goes right
// below them; the main thread polls for the trigger and answers with its counter and the checksum.
const PROGRAM = `
import hashlib, os, sys, threading, time
tick_file, trigger, result = sys.argv[1:4]
data = [os.urandom(15 << 20) for i in range(5)]
expected = hashlib.sha256(b''.join(data)).hexdigest()
def tick():
    n = 0
    while True:
        n += 1
        with open(tick_file + '.tmp', 'w') as f:
            f.write(str(n))
        os.rename(tick_file + '.tmp', tick_file)
        time.sleep(0.1)
threading.Thread(target=tick, daemon=True).start()
loops = 0
while True:
    loops += 1
    if os.path.exists(trigger):
        os.unlink(trigger)
        ok = hashlib.sha256(b''.join(data)).hexdigest() == expected
        with open(result + '.tmp', 'w') as f:
            f.write('%s %d %d' % ('intact' if ok else 'CORRUPT', len(data), loops))
        os.rename(result + '.tmp', result)
    time.sleep(0.05)
`;

function readOr(file: string, otherwise = ''): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return otherwise;
  }
}

function waitFor<T>(what: () => T | undefined, ms: number): T | undefined {
  const end = Date.now() + ms;
  for (;;) {
    const v = what();
    if (v !== undefined || Date.now() > end) return v;
    sleep(20);
  }
}

it('python3, two threads, ~75 MiB of objects: restored intact and both threads go on', () => {
  const work = tmp('py-threads');
  const tickFile = path.join(work, 'tick');
  const trigger = path.join(work, 'check');
  const result = path.join(work, 'result');
  const ticks = () => Number(readOr(tickFile, '0')) || 0;
  /** the main thread's answer: [verdict, objects, its loop counter] */
  const ask = (): string[] => {
    rmSync(result, { force: true });
    writeFileSync(trigger, '');
    const line = waitFor(() => (existsSync(result) ? readOr(result) : undefined), 10_000);
    expect(line, 'the main thread never answered').toBeDefined();
    return line!.split(' ');
  };

  const w = startWorkload('launch', ['/usr/bin/python3', '-c', PROGRAM, tickFile, trigger, result], work);
  mine.push(w.pid);
  expect(waitFor(() => (ticks() > 0 ? true : undefined), 10_000), 'the ticker never ticked').toBe(true);
  const before = ask();
  expect(before.slice(0, 2)).toEqual(['intact', '5']);
  expect(readdirSync(`/proc/${w.pid}/task`)).toHaveLength(2);

  const dir = tmp('py-threads-img');
  const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
  expect(d.code, d.stderr).toBe(0);
  expect(waitReaped(w.pid)).toBe(true);
  const ticksAtDump = ticks();
  // the images hold the ~75 MiB
  const pagesBytes = readdirSync(dir).filter((f) => /^pages-\d+\.img$/.test(f)).reduce((n, f) => n + readFileSync(path.join(dir, f)).length, 0);
  expect(pagesBytes).toBeGreaterThan(75 << 20);

  const r = criu(['restore', '-D', dir, '-d', '-v4', '-o', 'restore.log'], 60_000);
  expect(r.code, `${r.stderr}\n${readOr(path.join(dir, 'restore.log'))}`).toBe(0);
  expect(alive(w.pid)).toBe(true);
  expect(readdirSync(`/proc/${w.pid}/task`)).toHaveLength(2);

  // the ticker goes on from where it was
  const t1 = waitFor(() => (ticks() > ticksAtDump ? ticks() : undefined), 5000);
  expect(t1, 'the ticker thread did not go on').toBeGreaterThan(ticksAtDump);
  expect(t1!).toBeLessThan(ticksAtDump + 50);
  // the main thread goes on, and every object is as it was
  const after = ask();
  expect(after.slice(0, 2)).toEqual(['intact', '5']);
  expect(Number(after[2])).toBeGreaterThan(Number(before[2]));
  sleep(300);
  expect(ticks()).toBeGreaterThan(t1!);

  killTree(w.pid);
  expect(waitGone(w.pid)).toBe(true);
});
