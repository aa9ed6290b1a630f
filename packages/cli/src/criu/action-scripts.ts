import { resolve } from 'node:path';
import { CrtoolsError, ExitCode, type Notify } from '@crtools/common';

/**
 * criu's --action-script: the engines' notify hook as CRIU runs its scripts. Each script runs
 * at each action point with CRTOOLS_SCRIPT_ACTION (pre-dump, post-dump, pre-restore, ...),
 * CRTOOLS_IMAGE_DIR and, once known, CRTOOLS_INIT_PID (the root task, as criu's pid namespace
 * sees it: unset at pre-restore, before it exists); a script that fails
 * fails the operation.
 */
export function actionScripts(scripts: string[], imagesDir: string): Notify {
  let rootPid: number | undefined;
  return (action, info) => {
    // (as CRIU: query-ext-files asks an RPC client only; scripts are not run for it)
    if (action === 'query-ext-files') return;
    if (info.pid !== undefined && rootPid === undefined) rootPid = info.pid;
    for (const script of scripts) {
      const env: NodeJS.ProcessEnv = { ...process.env, CRTOOLS_SCRIPT_ACTION: action, CRTOOLS_IMAGE_DIR: resolve(imagesDir) };
      if (rootPid !== undefined) env['CRTOOLS_INIT_PID'] = String(rootPid);
      const r = process.getBuiltinModule('node:child_process').spawnSync(script, [], { env, stdio: ['ignore', 'inherit', 'inherit'] });
      const how = r.error ? (r.error as NodeJS.ErrnoException).code : r.signal ? `signal ${r.signal}` : r.status !== 0 ? `exit ${r.status}` : undefined;
      if (how) {
        throw new CrtoolsError('ACTION_SCRIPT', `action script ${script} failed at ${action} (${how})`, { context: { path: script }, exitCode: ExitCode.FAILED });
      }
    }
  };
}
