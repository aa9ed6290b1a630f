import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateTypes, getSchema, typeName, writeTypes } from '../src/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'images-types-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const tsc = join(__dirname, '..', 'node_modules', '.bin', 'tsc');

function compile(file: string): string {
  try {
    execFileSync(tsc, ['--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext', '--types', 'node', '--typeRoots', join(__dirname, '..', 'node_modules', '@types'), file], { cwd: tmp, stdio: 'pipe' });
    return '';
  } catch (e) {
    return String((e as { stdout?: Buffer }).stdout ?? e);
  }
}

describe('generated entry types (gen/types.d.ts)', () => {
  it('declare one interface per message', () => {
    const text = generateTypes();
    for (const m of getSchema().messages.values()) expect(text).toContain(`export interface ${typeName(m.name)} {`);
    expect(typeName('core_entry')).toBe('CoreEntry');
    expect(typeName('user_x86_regs_entry')).toBe('UserX86RegsEntry');
  });

  it('compile, and type entries the way the decoder produces them', () => {
    writeTypes(join(tmp, 'types.d.ts'));
    writeFileSync(
      join(tmp, 'good.ts'),
      `import type { CoreEntry, ImageEntry, VmaEntry } from './types.js';
const vma: VmaEntry = { start: 0xffffffffff600000n, end: 0xffffffffff601000n, pgoff: 0n, shmid: 0n, prot: 5, flags: 0x22, status: 0x205, fd: -1n };
const core: CoreEntry = { mtype: 'X86_64', tc: { task_state: 1, exit_code: 0, personality: 0, flags: 0, blk_sigset: 0n, comm: 'x' } };
const pm: ImageEntry<'PAGEMAP'> = { vaddr: 4096n, compat_nr_pages: 0, nr_pages: 1n };
const pd: ImageEntry<'PIPES_DATA'> = { pipe_id: 1, bytes: 1, extra: Buffer.from('x') };
export { vma, core, pm, pd };
`,
    );
    expect(compile('good.ts')).toBe('');
    writeFileSync(join(tmp, 'bad.ts'), `import type { VmaEntry } from './types.js';\nexport const v: VmaEntry = { start: 1, end: 2n, pgoff: 0n, shmid: 0n, prot: 5, flags: 0, status: 0, fd: 0n };\n`);
    expect(compile('bad.ts')).toMatch(/bigint/);
  }, 60_000);
});
