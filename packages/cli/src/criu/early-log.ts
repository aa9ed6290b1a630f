import path from 'node:path';
import { CriuLog } from '@crtools/common';

/** The value of the last `--name V`, `--name=V` or `-x V` / `-xV` among the words. */
function optionValue(args: readonly string[], long: string, short: string): string | undefined {
  let v: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a === `--${long}` || a === `-${short}`) v = args[++i];
    else if (a.startsWith(`--${long}=`)) v = a.slice(long.length + 3);
    else if (a.startsWith(`-${short}`) && !a.startsWith('--')) v = a.slice(2);
  }
  return v;
}

/**
 * CRIU opens its log file (-o, in the work directory, else the images directory) before it
 * looks at anything else, so an option it refuses or a bad value is in the log the caller reads
 * on failure (zdtm does). A command of ours that failed before its library opened the log
 * writes its error line there now, in the log's own shape.
 */
export function logEarlyFailure(command: string, args: readonly string[], line: string): void {
  if (CriuLog.fileOpened) return;
  const file = optionValue(args, 'log-file', 'o');
  if (!file || file === '-') return;
  const dir = optionValue(args, 'work-dir', 'W') ?? optionValue(args, 'images-dir', 'D') ?? '.';
  new CriuLog(1, path.resolve(dir, file)).error(command, line);
}
