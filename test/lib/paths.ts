import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { criuFixtures } from '@crtools/common/testing';

/** The repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** CRIU 4.2 reference checkpoints ($CRTOOLS_FIXTURES, else shared/ beside the repository). */
export const fixturesDir = criuFixtures();
/** Where the suite builds its workload programs (gitignored). */
export const workloadBinDir = path.join(repoRoot, 'test/.build');
/** The bins a user runs. */
export const criuBin = path.join(repoRoot, 'packages/cli/bin/criu.js');
export const critBin = path.join(repoRoot, 'packages/cli/bin/crit.js');
