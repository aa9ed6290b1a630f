import { magicByName, messageSpec, type MessageSpec } from '../../src/index.js';

/**
 * Debian's crit is 3.17: some 4.x fields are unknown to it (it drops them) and pagemap field 2
 * is called nr_pages there. View our JSON through 3.17's schema (by field number) to compare.
 * Returns the view and whether anything had to be dropped or renamed.
 */
export function through317(v: unknown, spec: MessageSpec, deb: Record<string, Record<string, string>>): { v: unknown; changed: boolean } {
  let changed = false;
  const walk = (o: Record<string, unknown>, s: MessageSpec): Record<string, unknown> => {
    const known = deb[s.name];
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) {
      if (k === 'extra') {
        out[k] = x;
        continue;
      }
      const f = s.byName.get(k)!;
      const name = known?.[String(f.id)];
      if (name === undefined) {
        changed = true;
        continue;
      }
      if (name !== k) changed = true;
      out[name] = f.message ? (Array.isArray(x) ? x.map((y) => walk(y as any, f.message!)) : walk(x as any, f.message)) : x;
    }
    return out;
  };
  const doc = v as { magic: string; entries: Record<string, unknown>[] };
  const info = magicByName(doc.magic)!;
  const first = info.firstMessage ? messageSpec(info.firstMessage) : spec;
  return { v: { magic: doc.magic, entries: doc.entries.map((e, i) => walk(e, i === 0 ? first : spec)) }, changed };
}

