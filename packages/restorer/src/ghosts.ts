/**
 * Unlinked files for a restore: each ghost of the plan is written out (contents, mode, owner)
 * under a temporary name beside its original one and linked at the original name when that is
 * free, so the tasks reopen it by the name they had; both names are removed once the tasks hold
 * it (or the restore failed), leaving it unlinked again as dumped.
 */
import { chmodSync, chownSync, linkSync, unlinkSync, writeFileSync } from 'node:fs';
import { ExitCode } from '@crtools/common';
import type { RestorePlan } from './plan.js';
import { RestoreErrorCode, restoreError } from './errors.js';

export interface GhostFiles {
  /** the name each task opens ghost i by */
  paths: string[];
  /** unlink every name made (idempotent) */
  release(): void;
}

export function createGhosts(plan: RestorePlan): GhostFiles {
  const made: string[] = [];
  const release = () => {
    for (const p of made.splice(0)) {
      try {
        unlinkSync(p);
      } catch {
        /* gone already */
      }
    }
  };
  const paths: string[] = [];
  try {
    (plan.ghosts ?? []).forEach((g, i) => {
      const tmp = `${g.path}.cr.${(i + 1).toString(16)}.ghost`;
      try {
        writeFileSync(tmp, g.data, { flag: 'wx', mode: 0o600 });
        made.push(tmp);
        chownSync(tmp, g.uid, g.gid);
        chmodSync(tmp, g.mode & 0o7777);
      } catch (e) {
        throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot recreate the unlinked file ${g.path}: ${(e as Error).message}`, { path: g.path }, ExitCode.FAILED, e);
      }
      let name = tmp;
      try {
        linkSync(tmp, g.path);
        made.push(g.path);
        name = g.path;
      } catch {
        /* the original name is taken again: the tasks get the temporary one */
      }
      paths.push(name);
    });
  } catch (e) {
    release();
    throw e;
  }
  return { paths, release };
}
