/** A seeded generator of maps text in the kernel's exact layout, with the values each line must parse to. */
export interface GenVma {
  start: bigint;
  end: bigint;
  perms: string;
  pgoff: bigint;
  devMajor: number;
  devMinor: number;
  ino: bigint;
  name: string;
  deleted: boolean;
  kind: string;
}

function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = (v: bigint, w: number) => v.toString(16).padStart(w, '0');

/** One maps line exactly as fs/proc/task_mmu.c prints it. */
export function mapsLine(v: GenVma, escapedName: string | null): string {
  const head = `${hex(v.start, 8)}-${hex(v.end, 8)} ${v.perms} ${hex(v.pgoff, 8)} ${hex(BigInt(v.devMajor), 2)}:${hex(BigInt(v.devMinor), 2)} ${v.ino} `;
  if (escapedName === null) return head;
  return head.padEnd(72, ' ') + ' ' + escapedName;
}

export function generateMaps(count: number, seed = 1): { text: string; vmas: GenVma[] } {
  const r = rng(seed);
  const vmas: GenVma[] = [];
  const out: string[] = [];
  let addr = 0x10000000n;
  for (let i = 0; i < count; i++) {
    const pages = BigInt(1 + Math.floor(r() * 16));
    const start = addr;
    const end = start + pages * 4096n;
    addr = end + (r() < 0.3 ? 4096n : 0n);
    const perms = (r() < 0.9 ? 'r' : '-') + (r() < 0.5 ? 'w' : '-') + (r() < 0.2 ? 'x' : '-') + (r() < 0.1 ? 's' : 'p');
    const pick = r();
    let v: GenVma;
    let esc: string | null;
    if (pick < 0.5) {
      v = { start, end, perms, pgoff: 0n, devMajor: 0, devMinor: 0, ino: 0n, name: '', deleted: false, kind: 'anon' };
      esc = null;
    } else if (pick < 0.55) {
      v = { start, end, perms, pgoff: 0n, devMajor: 0, devMinor: 0, ino: 0n, name: `[anon:gen ${i}]`, deleted: false, kind: 'anon' };
      esc = v.name;
    } else {
      const deleted = r() < 0.1;
      const base = r() < 0.2 ? `/data/with space ${i}` : r() < 0.1 ? `/data/new\nline${i}` : `/usr/lib/lib${i % 97}.so`;
      v = { start, end, perms, pgoff: BigInt(Math.floor(r() * 1000)) * 4096n, devMajor: 254, devMinor: Math.floor(r() * 4), ino: BigInt(1 + Math.floor(r() * 1e9)), name: base, deleted, kind: 'file' };
      if (r() < 0.01) v.ino = 18446744073709551615n; // pushes the name past column 73
      esc = base.split('\n').join('\\012') + (deleted ? ' (deleted)' : '');
    }
    vmas.push(v);
    out.push(mapsLine(v, esc));
  }
  return { text: out.join('\n') + '\n', vmas };
}
