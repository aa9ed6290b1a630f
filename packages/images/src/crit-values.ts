/**
 * Value conversions used by crit's JSON (facts from CRIU's pycriu pb2dict.py): base64 as
 * Python's encodebytes writes it, quoted-printable for unix socket names, device numbers,
 * flag tables, value dictionaries and IP addresses for --pretty.
 */
import { encodeBytes } from './pyjson.js';
import { AF, CRIT_VMA_STATUS, decodeDev as decodeUserDev, decodeKdev, encodeDev as encodeUserDev, encodeKdev, IPPROTO, namesOf, PE, SOCK_TYPE, TCP_STATE, VMA } from './facts/index.js';

/** base64 with a newline after every 76 characters and at the end (Python's encodebytes). */
export const b64encode = encodeBytes;

const B64 = /^[A-Za-z0-9+/=\s]*$/;

/** Decode base64 text; null when it holds characters outside the alphabet. */
export function b64decode(s: string): Buffer | null {
  if (!B64.test(s)) return null;
  return Buffer.from(s.replace(/\s+/g, ''), 'base64');
}

const HEX = '0123456789ABCDEF';

/** Quoted-printable encoding as Python's binascii.b2a_qp (istext, no quotetabs, no header). */
export function qpEncode(data: Uint8Array): string {
  const MAX = 76;
  const n = data.length;
  let crlf = false;
  for (let i = 0; i < n; i++)
    if (data[i] === 0x0a) {
      crlf = i > 0 && data[i - 1] === 0x0d;
      break;
    }
  const out: number[] = [];
  let linelen = 0;
  const soft = () => {
    out.push(0x3d);
    if (crlf) out.push(0x0d);
    out.push(0x0a);
    linelen = 0;
  };
  const hex = (c: number) => out.push(0x3d, HEX.charCodeAt(c >> 4), HEX.charCodeAt(c & 15));
  let i = 0;
  while (i < n) {
    const c = data[i]!;
    const next = i + 1 < n ? data[i + 1] : undefined;
    if (
      c > 126 ||
      c === 0x3d ||
      (c === 0x2e && linelen === 0 && (next === undefined || next === 0x0a || next === 0x0d || next === 0)) ||
      ((c === 0x09 || c === 0x20) && i + 1 === n) ||
      (c < 33 && c !== 0x0d && c !== 0x0a && c !== 0x09 && c !== 0x20)
    ) {
      if (linelen + 3 >= MAX) soft();
      hex(c);
      i++;
      linelen += 3;
    } else if (c === 0x0a || (c === 0x0d && next === 0x0a)) {
      linelen = 0;
      const last = out[out.length - 1];
      if (out.length && (last === 0x20 || last === 0x09)) {
        out.pop();
        hex(last!);
      }
      if (crlf) out.push(0x0d);
      out.push(0x0a);
      i += c === 0x0d ? 2 : 1;
    } else {
      if (i + 1 !== n && next !== 0x0a && linelen + 1 >= MAX) soft();
      linelen++;
      out.push(c);
      i++;
    }
  }
  return Buffer.from(out).toString('latin1');
}

/** Quoted-printable decoding as Python's binascii.a2b_qp (no header). */
export function qpDecode(s: string): Buffer {
  const src = Buffer.from(s, 'latin1');
  const out: number[] = [];
  const isHex = (c: number | undefined) => c !== undefined && ((c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102));
  for (let i = 0; i < src.length; ) {
    const c = src[i]!;
    if (c === 0x3d) {
      if (i + 1 >= src.length) {
        i++;
        continue;
      }
      const a = src[i + 1];
      if (a === 0x0a || (a === 0x0d && src[i + 2] === 0x0a)) {
        i += a === 0x0a ? 2 : 3;
        continue;
      }
      if (a === 0x0d) {
        i += 2;
        continue;
      }
      const b = src[i + 2];
      if (isHex(a) && isHex(b)) {
        out.push(parseInt(String.fromCharCode(a!, b!), 16));
        i += 3;
        continue;
      }
      out.push(0x3d);
      i++;
      continue;
    }
    out.push(c);
    i++;
  }
  return Buffer.from(out);
}

export const FLAG_TABLES: Record<string, [string, number][]> = {
  'mmap.prot': [['PROT_READ', 0x1], ['PROT_WRITE', 0x2], ['PROT_EXEC', 0x4]],
  'mmap.flags': [['MAP_SHARED', 0x1], ['MAP_PRIVATE', 0x2], ['MAP_DROPPABLE', 0x08], ['MAP_ANON', 0x20], ['MAP_GROWSDOWN', 0x0100]],
  'mmap.status': CRIT_VMA_STATUS.map((k) => [`VMA_${k}`, VMA[k]]),
  'rfile.flags': [
    ['O_WRONLY', 0o1], ['O_RDWR', 0o2], ['O_CREAT', 0o100], ['O_EXCL', 0o200], ['O_NOCTTY', 0o400], ['O_TRUNC', 0o1000],
    ['O_APPEND', 0o2000], ['O_NONBLOCK', 0o4000], ['O_DSYNC', 0o10000], ['FASYNC', 0o20000], ['O_DIRECT', 0o40000],
    ['O_LARGEFILE', 0o100000], ['O_DIRECTORY', 0o200000], ['O_NOFOLLOW', 0o400000], ['O_NOATIME', 0o1000000], ['O_CLOEXEC', 0o2000000],
  ],
  'pmap.flags': Object.entries(PE).map(([k, v]) => [`PE_${k}`, v]),
  'seals.flags': [['F_SEAL_SEAL', 0x1], ['F_SEAL_SHRINK', 0x2], ['F_SEAL_GROW', 0x4], ['F_SEAL_WRITE', 0x8], ['F_SEAL_FUTURE_WRITE', 0x10]],
};

/** "A | B | 0x40" as crit --pretty writes flags ("" for 0). */
export function mapFlags(value: bigint, table: [string, number][]): string {
  const parts: string[] = [];
  let all = 0n;
  for (const [name, bit] of table) {
    const b = BigInt(bit);
    all |= b;
    if (value & b) parts.push(name);
  }
  const rest = value & ~all;
  if (rest) parts.push('0x' + rest.toString(16));
  return parts.join(' | ');
}

/** Inverse of mapFlags: names or numbers (any base) joined by "|"; null when a part is not understood. */
export function unmapFlags(s: string, table: [string, number][]): bigint | null {
  if (s === '') return 0n;
  let v = 0n;
  for (const raw of s.split('|')) {
    const p = raw.trim();
    const hit = table.find(([n]) => n === p);
    if (hit) v += BigInt(hit[1]);
    else {
      const n = pyInt(p);
      if (n === null) return null;
      v += n;
    }
  }
  return v;
}

/** Python's int(s, 0): decimal, 0x, 0o, 0b, optional sign and underscores. */
export function pyInt(s: string): bigint | null {
  const t = s.trim();
  const m = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0+|[1-9][0-9_]*)$/.exec(t);
  if (!m) return null;
  const body = m[2]!.replace(/_/g, '');
  if (/^0+$/.test(body)) return 0n;
  const v = /^0[oO]/.test(body) ? BigInt('0o' + body.slice(2)) : /^0[bB]/.test(body) ? BigInt('0b' + body.slice(2)) : BigInt(body);
  return m[1] === '-' ? -v : v;
}

export const DICT_TABLES: Record<string, Record<string, Record<number, string>>> = {
  gen: { task_state: { 1: 'Alive', 3: 'Zombie', 6: 'Stopped' } },
  // pycriu's 'sk' dict names these (a subset of the kernel's, as CRIU's crit prints them)
  sk: {
    family: namesOf(AF),
    type: namesOf(SOCK_TYPE, ['STREAM', 'DGRAM', 'RAW', 'SEQPACKET', 'PACKET']),
    state: namesOf(TCP_STATE, ['ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN']),
    proto: namesOf(IPPROTO, ['IP', 'TCP', 'UDP', 'UDPLITE']),
  },
};

/** "major:minor" of a device number; odev uses glibc's encoding, dev the kernel's (20 minor bits). */
export function decodeDev(v: bigint, odev: boolean): string {
  const d = odev ? decodeUserDev(v) : decodeKdev(v);
  return `${d.major}:${d.minor}`;
}

export function encodeDev(s: string, odev: boolean): bigint | null {
  const parts = s.split(':');
  if (parts.length !== 2) return null;
  const [a, b] = parts.map((p) => pyInt(p));
  if (a === null || b === null || a === undefined || b === undefined) return null;
  return odev ? encodeUserDev(a, b) : encodeKdev(a, b);
}

const bswap = (x: number) => (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;

/** Address string from CRIU's u32 words (network byte order read as little-endian u32s). */
export function ipToString(words: number[]): string {
  if (words.length === 1) {
    const v = bswap(words[0]!);
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const h: number[] = [];
  for (let i = 0; i < 4; i++) {
    const v = bswap(words[i] ?? 0);
    h.push(v >>> 16, v & 0xffff);
  }
  // Python's compression: the first longest run of two or more zero groups becomes "::".
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (h[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && h[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hx = h.map((x) => x.toString(16));
  if (bestLen > 1) {
    const left = hx.slice(0, best).join(':');
    const right = hx.slice(best + bestLen).join(':');
    return `${left}::${right}`;
  }
  return hx.join(':');
}

/** CRIU's u32 words of an address string; null when it is not an IPv4/IPv6 address. */
export function ipFromString(s: string): number[] | null {
  const v4 = parseV4(s);
  if (v4 !== null) return [bswap(v4)];
  let groups: number[] | null = null;
  const dbl = s.split('::');
  if (dbl.length > 2) return null;
  const parseSide = (side: string): number[] | null => {
    if (side === '') return [];
    const out: number[] = [];
    const parts = side.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const x = parseV4(p);
        if (x === null) return null;
        out.push(x >>> 16, x & 0xffff);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  if (dbl.length === 2) {
    const l = parseSide(dbl[0]!);
    const r = parseSide(dbl[1]!);
    if (!l || !r || l.length + r.length > 7) return null;
    groups = [...l, ...new Array(8 - l.length - r.length).fill(0), ...r];
  } else {
    groups = parseSide(s);
    if (!groups || groups.length !== 8) return null;
  }
  const words: number[] = [];
  for (let i = 0; i < 4; i++) words.push(bswap(((groups[2 * i]! << 16) | groups[2 * i + 1]!) >>> 0));
  return words;
}

function parseV4(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return null;
  return ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
}
