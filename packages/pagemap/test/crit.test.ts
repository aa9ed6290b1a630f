import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PE_LAZY, PE_PARENT, PE_PRESENT } from '../src/constants.js';
import { bufferPageSource, writePagemap } from '../src/writer.js';
import { REFERENCE_CRIT, referenceCritUsable } from '@crtools/common/testing';

const PY = REFERENCE_CRIT.python;
const CRIT = REFERENCE_CRIT.crit;
const critWorks = referenceCritUsable();
const tmp = mkdtempSync(join(tmpdir(), 'pagemap-crit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!critWorks)("Debian's crit decodes our pagemap (skipped: /usr/bin/crit with /usr/bin/python3 not usable)", { timeout: 60_000 }, () => {
  it('decodes head and entries (crit 3.17 knows only compat_nr_pages, which CRIU 4.2 leaves 0)', async () => {
    const base = 0x7f0000001000n;
    const entries = [
      { vaddr: base, nrPages: 2, flags: PE_PRESENT },
      { vaddr: base + 0x5000n, nrPages: 1, flags: PE_PARENT },
      { vaddr: base + 0x10000n, nrPages: 3, flags: PE_PRESENT | PE_LAZY },
    ];
    await writePagemap({ dir: tmp, id: 4242, pagesId: 3, parent: null, entries, source: bufferPageSource(base, Buffer.alloc(0x20000)) });
    const out = execFileSync(PY, [CRIT, 'decode', '-i', join(tmp, 'pagemap-4242.img')], { encoding: 'utf8' });
    const img = JSON.parse(out);
    expect(img.magic).toBe('PAGEMAP');
    expect(img.entries[0]).toEqual({ pages_id: 3 });
    expect(img.entries.slice(1)).toEqual(
      entries.map((e) => ({ vaddr: Number(e.vaddr), nr_pages: 0, flags: e.flags })),
    );
    const pretty = JSON.parse(execFileSync(PY, [CRIT, 'decode', '--pretty', '-i', join(tmp, 'pagemap-4242.img')], { encoding: 'utf8' }));
    expect(pretty.entries[3]).toEqual({ vaddr: '0x7f0000011000', nr_pages: 0, flags: 'PE_LAZY | PE_PRESENT' });
  });
});
