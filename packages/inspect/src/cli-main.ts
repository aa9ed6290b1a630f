import { readFileSync } from 'node:fs';
import { defineCommand, runCommand, showUsage } from 'citty';
import { ExitCode } from '@crtools/common';
import { compareFingerprints } from './compare.js';
import { fingerprint, type Fingerprint } from './fingerprint.js';

/**
 * `crtools-inspect PID`: the fingerprint of the tree rooted at PID, one JSON document on stdout.
 * `crtools-inspect --compare BEFORE.json AFTER.json`: the fields that differ, one JSON line
 * each; exit 1 when any does.
 */
export const inspectCommand = defineCommand({
  meta: { name: 'crtools-inspect', description: 'the state fingerprint of a process tree, or what differs between two' },
  args: {
    pid: { type: 'positional', required: false, description: 'root of the tree' },
    compare: { type: 'boolean', description: 'compare two fingerprint files instead (BEFORE AFTER)' },
  },
  run({ args }) {
    if (args.compare) {
      const [a, b] = (args._ as string[]).slice(0, 2);
      if (!a || !b) throw new Error('--compare takes two fingerprint files');
      const read = (p: string): Fingerprint => JSON.parse(readFileSync(p, 'utf8')) as Fingerprint;
      const diffs = compareFingerprints(read(a), read(b));
      for (const d of diffs) process.stdout.write(JSON.stringify(d) + '\n');
      return diffs.length ? ExitCode.FAILED : ExitCode.OK;
    }
    const pid = Number(args.pid);
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`not a pid: ${args.pid ?? ''}`);
    process.stdout.write(JSON.stringify(fingerprint(pid), null, 1) + '\n');
    return ExitCode.OK;
  },
});

export async function main(argv = process.argv.slice(2)): Promise<void> {
  try {
    if (argv.includes('--help') || argv.includes('-h') || !argv.length) {
      await showUsage(inspectCommand);
      if (!argv.length) process.exitCode = ExitCode.USAGE;
      return;
    }
    const { result } = await runCommand(inspectCommand, { rawArgs: argv });
    process.exitCode = typeof result === 'number' ? result : ExitCode.OK;
  } catch (e) {
    process.stderr.write(`crtools-inspect: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = (e as { code?: string }).code === 'ESRCH' ? ExitCode.FAILED : ExitCode.USAGE;
  }
}
