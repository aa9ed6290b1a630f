import type { Writable } from 'node:stream';
import { ExitCode } from '@crtools/common';
import { countCritEntries } from './_images.js';
import { pyDumps } from './pyjson.js';
import { inputName, withFsErrors, type Input } from './io.js';
import { usage } from './errors.js';
import { refuseRaw } from './decode.js';

/**
 * `crit info`: the magic and the number of entries, as `{"magic": ..., "count": N}` indented
 * by 4. Entries are counted as decode shows them (the pagemap head is not counted, as crit
 * does), and extra payloads are skipped by their real size, so images with payloads
 * (pipes-data, ghost files, sk-queues…) are counted right.
 */
export async function infoImage(input: Input, output: Writable, opts: { name?: string } = {}): Promise<number> {
  const name = opts.name ?? inputName(input);
  await refuseRaw(input);
  const { magic, count } = await withFsErrors(name, () => countCritEntries(input, name));
  output.write(pyDumps({ magic, count }, 4) + '\n');
  return ExitCode.OK;
}
