import { execFile, execFileSync } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, workloadBinDir } from './paths.js';

/**
 * Build every workload program in test/workloads/*.c into test/.build/, one gcc per CPU, and give
 * the run one temporary directory of its own: the workers (forked after this) and everything they
 * start inherit TMPDIR, so every os.tmpdir()-based directory a test makes lands below it, and the
 * teardown removes it whole, whatever a test left behind (runs used to leave thousands of image
 * directories in /tmp, enough to fill the disk).
 */
export default async function setup(): Promise<() => void> {
  const runTmp = mkdtempSync(path.join(tmpdir(), 'crtools-e2e-'));
  chmodSync(runTmp, 0o1777); // as /tmp: tests run workloads under other uids (user namespaces)
  process.env['TMPDIR'] = runTmp;
  const src = path.join(repoRoot, 'test/workloads');
  mkdirSync(workloadBinDir, { recursive: true });
  const todo = readdirSync(src).filter((n) => n.endsWith('.c'));
  const gcc = async (): Promise<void> => {
    for (let f = todo.shift(); f; f = todo.shift()) {
      const out = path.join(workloadBinDir, f.slice(0, -2));
      const { stderr } = await promisify(execFile)('gcc', ['-O1', '-g', '-Wall', '-pthread', '-o', out, path.join(src, f)]);
      if (stderr) process.stderr.write(stderr);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, cpus().length) }, gcc));
  keepFixturePidsFree();
  return () => removeRunTmp(runTmp);
}

/**
 * Remove the run's temporary directory. A mount a test left below it (in this mount namespace) is
 * detached first, deepest first; if one will not go, the directory is left as it is (a bind
 * mount of the same file system would let rm reach beyond it).
 */
function removeRunTmp(dir: string): void {
  const below = (): string[] =>
    readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .map((m) => m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
      .filter((m) => m.startsWith(dir + '/'))
      .sort((a, b) => b.length - a.length);
  for (const m of below()) {
    try {
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    } catch {
      /* checked below */
    }
  }
  const left = below();
  if (left.length > 0) {
    process.stderr.write(`${dir} kept: mounts below it remain (${left.join(', ')})\n`);
    return;
  }
  try {
    execFileSync('rm', ['-rf', '--one-file-system', dir], { stdio: 'ignore' });
  } catch {
    process.stderr.write(`could not remove all of ${dir}\n`);
  }
}

/**
 * The CRIU 4.2 fixtures need their pids (2680-2929) free. The test workers and their threads,
 * forked after this and alive for the whole run, would keep any of those they got: when the
 * kernel is about to hand them out, it skips past them first (pid_max may be as low as 32768,
 * so the counter can be anywhere). Short-lived processes there are waited for by the tests.
 */
function keepFixturePidsFree(): void {
  try {
    const last = Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
    if (last >= 2400 && last < 3000) writeFileSync('/proc/sys/kernel/ns_last_pid', '3000');
  } catch {
    /* not root or no such file: the fixture tests skip a taken pid */
  }
}
