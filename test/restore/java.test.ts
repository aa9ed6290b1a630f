/**
 * A real JVM (Debian's OpenJDK, default-jre-headless): a program of several threads — one
 * filling and verifying a heap of objects, one counting primes — with the JVM's own threads
 * (GC, JIT compilers, signal dispatcher), its class data sharing archive and its modules file
 * mapped. Round-tripped twice under the state fingerprint; after each restore it goes on
 * computing from where it was, and its heap checks out. Every process is killed by pid.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { alive, killAllStarted, sleep, tmp } from '../dump/helpers.js';
import { killRestored, roundTrip } from './roundtrip.js';

afterEach(killRestored);
afterAll(() => killAllStarted());

const JAVA = '/usr/bin/java';

// argv: progress file. The heap: 200,000 arrays of 64 longs, each word a function of its place;
// a thread rewrites one array at a time (keeping the rule) and checks the whole heap each pass.
// Another counts primes. The main thread writes "primes=N passes=M heap=ok|bad" every 50 ms.
const PROGRAM = `
import java.nio.file.*;
public class Compute {
  static volatile long primes = 0, passes = 0;
  static volatile boolean bad = false;
  static long word(int i, int j, long gen) { return (i * 64L + j) * 0x9E3779B97F4A7C15L ^ gen; }
  public static void main(String[] a) throws Exception {
    Path out = Paths.get(a[0]), tmpf = Paths.get(a[0] + ".tmp");
    final int N = 200_000;
    final long[][] heap = new long[N][];
    final long[] gen = new long[N];
    for (int i = 0; i < N; i++) { heap[i] = new long[64]; for (int j = 0; j < 64; j++) heap[i][j] = word(i, j, 0); }
    Thread mutator = new Thread(() -> {
      java.util.Random r = new java.util.Random(7);
      while (true) {
        for (int k = 0; k < 1000; k++) {
          int i = r.nextInt(N);
          synchronized (heap) { gen[i]++; long[] x = new long[64]; for (int j = 0; j < 64; j++) x[j] = word(i, j, gen[i]); heap[i] = x; }
        }
        synchronized (heap) {
          for (int i = 0; i < N; i++) for (int j = 0; j < 64; j += 7) if (heap[i][j] != word(i, j, gen[i])) bad = true;
        }
        passes++;
        try { Thread.sleep(5); } catch (InterruptedException e) { return; }
      }
    }, "mutator");
    Thread counter = new Thread(() -> {
      for (long n = 2; ; n++) {
        boolean p = true;
        for (long d = 2; d * d <= n; d++) if (n % d == 0) { p = false; break; }
        if (p) primes++;
        if (n % 20000 == 0) try { Thread.sleep(1); } catch (InterruptedException e) { return; }
      }
    }, "primes");
    mutator.setDaemon(true); counter.setDaemon(true);
    mutator.start(); counter.start();
    while (true) {
      Files.writeString(tmpf, "primes=" + primes + " passes=" + passes + " heap=" + (bad ? "bad" : "ok"));
      Files.move(tmpf, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      Thread.sleep(50);
    }
  }
}
`;

function progress(file: string): { primes: number; passes: number; heap: string } | null {
  try {
    const m = /^primes=(\d+) passes=(\d+) heap=(\w+)$/.exec(readFileSync(file, 'utf8'));
    return m ? { primes: Number(m[1]), passes: Number(m[2]), heap: m[3]! } : null;
  } catch {
    return null;
  }
}

it.skipIf(!existsSync(JAVA))('OpenJDK: a JVM computing in three threads goes on after each restore, its heap intact', () => {
  const dir = tmp('java');
  const src = path.join(dir, 'Compute.java');
  writeFileSync(src, PROGRAM);
  const file = path.join(dir, 'progress');
  // compiled first with the JRE's own javac module (default-jre-headless has no javac binary)
  const c = spawnSync(JAVA, ['-m', 'jdk.compiler/com.sun.tools.javac.Main', '-d', dir, src], { encoding: 'utf8', timeout: 60_000 });
  expect(c.status, c.stderr).toBe(0);
  // the CDS archive is mapped (-Xshare:auto); a fixed heap keeps the test's memory small and steady
  const args = [JAVA, '-Xmx256m', '-Xms256m', '-XX:+UseSerialGC', '-cp', dir, 'Compute', file];
  let last = { primes: 0, passes: 0 };
  roundTrip(
    'launch',
    args,
    (pid) => {
      const a = progress(file);
      expect(a?.heap).toBe('ok');
      // what it had reached before the dump is not lost: it counts on from there
      expect(a!.primes).toBeGreaterThanOrEqual(last.primes);
      for (let i = 0; i < 200; i++) {
        const b = progress(file);
        if (b && b.primes > a!.primes && b.passes > a!.passes) break;
        sleep(25);
      }
      const b = progress(file)!;
      expect(alive(pid)).toBe(true);
      expect(b.heap).toBe('ok');
      expect(b.primes).toBeGreaterThan(a!.primes);
      expect(b.passes).toBeGreaterThan(a!.passes);
      last = b;
    },
    false,
    () => (progress(file)?.passes ?? 0) > 2,
    [], undefined, [], [],
    // the JVM keeps growing its malloc arenas: fingerprints of the frozen and the stopped tree
    true,
  );
}, 120_000);
