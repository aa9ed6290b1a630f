import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, workloadBinDir } from './paths.js';

/** Build every workload program in test/workloads/*.c into test/.build/. */
export default function setup(): void {
  const src = path.join(repoRoot, 'test/workloads');
  mkdirSync(workloadBinDir, { recursive: true });
  for (const f of readdirSync(src).filter((n) => n.endsWith('.c'))) {
    const out = path.join(workloadBinDir, f.slice(0, -2));
    execFileSync('gcc', ['-O1', '-g', '-Wall', '-pthread', '-o', out, path.join(src, f)], { stdio: 'inherit' });
  }
}
