import { describe, expect, it } from 'vitest';
import { collectVmas, iterMapsRaw, iterSmapsPieces, parseMaps, parseMapsLine, parseSmaps, PROCFS_PARSE, MAP, VMA, vmaStatusNames } from './lib.js';
import { generateMaps } from './gen-maps.js';

describe('maps: generated file with tens of thousands of areas', () => {
  const N = 40000;
  const { text, vmas } = generateMaps(N, 7);
  it(`parses ${N} lines to exactly the generated values`, () => {
    const got = parseMaps(text, { path: 'generated' });
    expect(got).toHaveLength(N);
    for (let i = 0; i < N; i++) {
      const g = got[i]!, w = vmas[i]!;
      if (g.start !== w.start || g.end !== w.end || g.name !== w.name || g.deleted !== w.deleted || g.ino !== w.ino || g.pgoff !== w.pgoff || g.kind !== w.kind || g.perms !== w.perms || g.devMinor !== w.devMinor)
        expect({ i, g, w }).toEqual({ i, g: w, w });
    }
  });
  it('raw view keeps the kernel text', () => {
    const raw = Array.from(iterMapsRaw(text));
    expect(raw).toHaveLength(N);
    expect(raw[0]!.start).toBe(vmas[0]!.start.toString(16).padStart(8, '0'));
  });
});

describe('maps: single lines', () => {
  it('takes the name from column 73 even when it starts or ends with spaces', () => {
    const head = '00400000-00401000 r--p 00000000 08:01 5 ';
    const v = parseMapsLine(head.padEnd(72) + ' ' + '  two leading, trailing  ');
    expect(v.name).toBe('  two leading, trailing  ');
  });
  it('decodes \\012 and strips " (deleted)" only at the end of a path', () => {
    const head = '00400000-00401000 r--p 00000000 08:01 5 '.padEnd(72) + ' ';
    expect(parseMapsLine(head + '/a\\012b (deleted)')).toMatchObject({ name: '/a\nb', deleted: true });
    expect(parseMapsLine(head + '/a (deleted)/b')).toMatchObject({ name: '/a (deleted)/b', deleted: false });
  });
  it('classifies [vvar_vclock] as a vvar area and collectVmas merges it into [vvar]', () => {
    const t = [
      '7f0000000000-7f0000004000 r--p 00000000 00:00 0                          [vvar]',
      '7f0000004000-7f0000006000 r--p 00000000 00:00 0                          [vvar_vclock]',
      '7f0000006000-7f0000008000 r-xp 00000000 00:00 0                          [vdso]',
    ].join('\n');
    const v = parseMaps(t);
    expect(v[1]).toMatchObject({ kind: 'vvar', status: VMA.AREA_REGULAR | VMA.AREA_VVAR | VMA.ANON_PRIVATE });
    expect(vmaStatusNames(v[1]!.status)).toEqual(['VMA_AREA_REGULAR', 'VMA_ANON_PRIVATE', 'VMA_AREA_VVAR']);
    const c = collectVmas(v);
    expect(c).toHaveLength(2);
    expect(c[0]).toMatchObject({ start: 0x7f0000000000n, end: 0x7f0000006000n });
    expect(v[0]!.end).toBe(0x7f0000004000n); // input untouched
  });
  it('names the file and line of a malformed line', () => {
    try {
      parseMaps('00400000-00401000 r--p 00000000 08:01 5\nnope\n', { path: '/proc/9/maps' });
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: PROCFS_PARSE, exitCode: 3, context: { path: '/proc/9/maps', line: 2 } });
      expect((e as Error).message).toContain('/proc/9/maps:2');
    }
  });
  it('keeps addresses above 2^53 exact', () => {
    const v = parseMapsLine('ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]');
    expect(v.start).toBe(0xffffffffff600000n);
    expect(v.kind).toBe('vsyscall');
  });
  it('empty text gives no areas', () => {
    expect(parseMaps('')).toEqual([]);
    expect(parseSmaps('')).toEqual([]);
  });
});

describe('smaps VmFlags', () => {
  const area = (hdr: string, flags: string) => `${hdr}\nSize:                  4 kB\nRss:                   0 kB\nVmFlags: ${flags} \n`;
  it('gd sets MAP_GROWSDOWN, dd the DONTDUMP madvise bit, io/pf marks unsupported areas except vvar', () => {
    const t =
      area('7f0000000000-7f0000010000 rw-p 00000000 00:00 0 ', 'rd wr mr mw me gd ac') +
      area('7f0000010000-7f0000011000 rw-p 00000000 00:00 0 ', 'rd wr mr mw me io pf') +
      area('7f0000011000-7f0000015000 r--p 00000000 00:00 0                          [vvar]', 'rd mr pf io de dd');
    const [g, io, vv] = parseSmaps(t);
    expect(g!.flags & MAP.GROWSDOWN).toBe(MAP.GROWSDOWN);
    expect(g!.smaps).toEqual({ Size: 4096, Rss: 0 });
    expect(io!.status & VMA.UNSUPP).not.toBe(0);
    expect(vv!.status & VMA.UNSUPP).toBe(0);
    expect(vv!.madv).toBe(1n << 16n);
  });
  it('several advice bits at once; the same areas without counters (their lines passed over), in pieces or whole', () => {
    const t =
      area('7f0000000000-7f0000010000 rw-p 00000000 00:00 0 ', 'rd wr mr mw me ac sr dc mg hg wf nr') +
      area('7f0000010000-7f0000011000 rw-p 00000000 00:00 0 ', 'rd wr mr mw me nh dd lo') +
      area('7f0000011000-7f0000015000 r--p 00000000 00:00 0 ', 'rd mr me ss');
    const full = parseSmaps(t);
    expect(full[0]!.madv).toBe((1n << 2n) | (1n << 10n) | (1n << 12n) | (1n << 14n) | (1n << 18n));
    expect(full[0]!.flags & MAP.NORESERVE).toBe(MAP.NORESERVE);
    expect(full[1]!.madv).toBe((1n << 15n) | (1n << 16n));
    expect(full[1]!.flags & MAP.LOCKED).toBe(MAP.LOCKED);
    expect(full[2]!.status & VMA.AREA_SHSTK).not.toBe(0);
    const bare = full.map(({ smaps: _, ...v }) => v);
    expect(parseSmaps(t, { counters: false })).toEqual(bare);
    // cut after every line, and after every second: an area's lines passed over across pieces
    for (const k of [1, 2]) {
      const lines = t.split(/(?<=\n)/);
      const pieces = Array.from({ length: Math.ceil(lines.length / k) }, (_, i) => lines.slice(i * k, i * k + k).join(''));
      expect([...iterSmapsPieces(pieces, { counters: false })]).toEqual(bare);
    }
  });
  it('areas whose VmFlags line is the same share one frozen list of its mnemonics', () => {
    const t =
      area('7f0000000000-7f0000001000 rw-p 00000000 00:00 0 ', 'rd wr mr mw me ac') +
      area('7f0000001000-7f0000002000 r--p 00000000 00:00 0 ', 'rd mr mw me ac') +
      area('7f0000002000-7f0000003000 rw-p 00000000 00:00 0 ', 'rd wr mr mw me ac');
    const [a, b, c] = parseSmaps(t, { counters: false });
    expect(a!.vmFlags).toEqual(['rd', 'wr', 'mr', 'mw', 'me', 'ac']);
    expect(c!.vmFlags).toBe(a!.vmFlags);
    expect(b!.vmFlags).toEqual(['rd', 'mr', 'mw', 'me', 'ac']);
    expect(Object.isFrozen(a!.vmFlags)).toBe(true);
    // (and the next parse finds the same list again)
    expect(parseSmaps(t)[0]!.vmFlags).toBe(a!.vmFlags);
  });
  it('a malformed line after passed-over counters is reported at its own line number', () => {
    const t = area('7f0000000000-7f0000010000 rw-p 00000000 00:00 0 ', 'rd wr') + 'Rss:    0 kB\n' + area('7f0000010000-7f0000011000 rw-p 0000zz00 00:00 0 ', 'rd wr');
    for (const counters of [true, false]) {
      const lines: number[] = [];
      parseSmaps(t, { counters, onError: (e) => lines.push(e.context.line as number) });
      // line 5: a counter after VmFlags (kept: reported nowhere, as before); line 6: the bad header
      expect(lines, `counters ${counters}`).toEqual([6]);
    }
  });
});

describe('MapsTable (compact form)', () => {
  it('gives exactly the records of parseMaps, for golden and generated inputs, with and without the guard gap', async () => {
    const { readFileSync, readdirSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { parseMapsTable, tableVmas } = await import('./lib.js');
    const dir = join(import.meta.dirname, 'golden');
    const texts = readdirSync(dir).filter((f) => /\.maps\.txt$/.test(f) && !f.startsWith('malformed')).map((f) => readFileSync(join(dir, f), 'utf8'));
    texts.push(generateMaps(5000, 3).text);
    for (const text of texts)
      for (const stackGuardGapHidden of [false, true]) {
        const a = parseMaps(text, { stackGuardGapHidden });
        const b = Array.from(tableVmas(parseMapsTable(text, { stackGuardGapHidden })));
        expect(b).toEqual(a);
      }
  });
  it('reports malformed lines the same way', async () => {
    const { parseMapsTable } = await import('./lib.js');
    const bad = '00400000-00401000 r--p 00000000 08:01 5\nnope\n';
    expect(() => parseMapsTable(bad, { path: 'x' })).toThrow(/x:2/);
    const errs: number[] = [];
    const t = parseMapsTable(bad, { onError: (e) => errs.push(e.context.line as number) });
    expect(t.length).toBe(1);
    expect(errs).toEqual([2]);
  });
});

describe('vmaJson', () => {
  it('writes the same JSON as JSON.stringify with hexReplacer', async () => {
    const { readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { vmaJson, hexReplacer, parseSmaps } = await import('./lib.js');
    const dir = join(import.meta.dirname, 'golden');
    const all = [
      ...parseMaps(readFileSync(join(dir, 'weird.maps.txt'), 'utf8'), { stackGuardGapHidden: true }),
      ...parseMaps(readFileSync(join(dir, 'zoo.maps.txt'), 'utf8')),
      ...parseSmaps(readFileSync(join(dir, 'zoo.smaps.txt'), 'utf8')),
    ];
    expect(all.some((v) => v.guardGap) && all.some((v) => v.shmid !== undefined)).toBe(true);
    for (const v of all) expect(vmaJson(v)).toBe(JSON.stringify(v, hexReplacer));
  });
});
