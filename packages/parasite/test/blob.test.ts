import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PARASITE_AREA, PARASITE_CMD, PARASITE_STRUCTS } from '../src/gen-abi.js';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const elf = path.join(pkg, 'blobs/parasite.elf');

describe.skipIf(!existsSync(elf))('parasite blob (built by scripts/build-blob.sh)', () => {
  it('needs no relocation and starts with its entry', () => {
    expect(execFileSync('readelf', ['-rW', elf], { encoding: 'utf8' })).not.toMatch(/R_X86_64/);
    const nm = execFileSync('nm', [elf], { encoding: 'utf8' });
    expect(nm).toMatch(/^0000000000000000 T parasite_entry$/m);
    // entry: and rsp; call parasite_main; int3 at offset 9 (the trap the TS side expects at +10)
    const bin = readFileSync(path.join(pkg, 'blobs/parasite.bin'));
    expect(bin[9]).toBe(0xcc);
  });

  it('fits the area between the blob offset and the data', () => {
    const bin = readFileSync(path.join(pkg, 'blobs/parasite.bin'));
    expect(PARASITE_AREA.blob + bin.length).toBeLessThanOrEqual(PARASITE_AREA.data);
    expect(PARASITE_AREA.data + PARASITE_STRUCTS.posix_timers_args.size).toBeLessThan(PARASITE_AREA.stackTop - 4096);
  });
});

describe('generated ABI', () => {
  it('describes the commands and layouts once, for both sides', () => {
    const h = readFileSync(path.join(pkg, 'gen/parasite-abi.h'), 'utf8');
    for (const [name, nr] of Object.entries(PARASITE_CMD)) expect(h).toContain(`#define PARASITE_CMD_${name} ${nr}`);
    for (const [name, s] of Object.entries(PARASITE_STRUCTS)) expect(h).toContain(`sizeof(struct parasite_${name}) == ${s.size}`);
    expect(PARASITE_STRUCTS.sigaction.size).toBe(32);
    expect(PARASITE_STRUCTS.thread_args.fields.ss_size.offset).toBe(24);
  });
});
