import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** CRIU 4.2 reference checkpoints (shared/ sits beside the repository). */
export const fixturesDir = path.resolve(repoRoot, '../shared/fixtures/criu-4.2');
/** Where the suite builds its workload programs (gitignored). */
export const workloadBinDir = path.join(repoRoot, 'test/.build');
/** The bins a user runs. */
export const criuBin = path.join(repoRoot, 'packages/cli/bin/criu.js');
export const critBin = path.join(repoRoot, 'packages/cli/bin/crit.js');
