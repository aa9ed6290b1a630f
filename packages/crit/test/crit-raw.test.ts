import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeRaw, rawKind } from '../src/raw.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'crit-raw-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('raw images', () => {
  it('knows CRIU raw image names and nothing else', () => {
    expect(rawKind('/x/pages-1.img')).toMatch(/raw memory pages/);
    expect(rawKind('route6-9.img')).toMatch(/IPv6 routes/);
    expect(rawKind('tmpfs-dev-33.tar.gz.img')).toMatch(/tar archive/);
    expect(rawKind('iptables-9.img')).toMatch(/iptables-save/);
    expect(rawKind('netns-ct-4.img')).toMatch(/conntrack entries/); // raw in CRIU too (NETNF_CT_MAGIC is RAW_IMAGE_MAGIC)
    expect(rawKind('netns-4.img')).toBeUndefined();
    expect(rawKind('pagemap-1.img')).toBeUndefined();
    expect(rawKind('core-1.img')).toBeUndefined();
  });

  it('names the pagemap whose head has the pages id, with the page count', async () => {
    writeFileSync(path.join(tmp, 'pages-3.img'), Buffer.alloc(3 * 4096));
    writeFileSync(path.join(tmp, 'pagemap-10.img'), 'a');
    writeFileSync(path.join(tmp, 'pagemap-11.img'), 'b');
    const ids: Record<string, number> = { 'pagemap-10.img': 2, 'pagemap-11.img': 3 };
    const s = await describeRaw(path.join(tmp, 'pages-3.img'), { pagesId: async (f) => ids[path.basename(f)] });
    expect(s).toBe(`${path.join(tmp, 'pages-3.img')}: raw memory pages (4096 bytes each, no entries), 3 pages (12288 bytes); described by pagemap-11.img (pages_id 3): decode that instead`);
    const none = await describeRaw(path.join(tmp, 'pages-3.img'), { pagesId: async () => undefined });
    expect(none).toMatch(/no pagemap image with pages_id 3 next to it/);
    expect(await describeRaw(path.join(tmp, 'core-1.img'), { pagesId: async () => 1 })).toBeUndefined();
  });
});
