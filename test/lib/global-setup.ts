import { execFile } from 'node:child_process';
import { cpus } from 'node:os';
import { promisify } from 'node:util';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, workloadBinDir } from './paths.js';

/** Build every workload program in test/workloads/*.c into test/.build/, one gcc per CPU. */
export default async function setup(): Promise<void> {
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
