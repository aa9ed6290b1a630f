import { b64encode, decodeDev, DICT_TABLES, FLAG_TABLES, ipToString, mapFlags, qpEncode } from './crit-values.js';
import { readLength, readScalar, u64, type Reader } from './codec.js';
import { pyDump, PyFloat, pyString } from './pyjson.js';
import { FT, type FieldSpec, type MessageSpec } from './schema.js';

/**
 * crit JSON text of single entries: from decoded entry objects (messageText, compactWriterOf)
 * and straight from an entry's protobuf bytes (rendererOf), the fast path for huge images.
 * Both write exactly what pycriu's crit writes (see crit-json.ts for the rules).
 */

export const IND = '    ';

function hex(v: number | bigint): string {
  if (typeof v === 'number') return v < 0 ? '-0x' + (-v).toString(16) : '0x' + v.toString(16);
  return v < 0n ? '-0x' + (-v).toString(16) : '0x' + v.toString(16);
}

/** Flag names of recurring values (the same few flag words fill whole pagemaps), per table. */
const flagMemo = new Map<string, Map<number | bigint, string>>();

function flagsText(table: string, v: number | bigint): string {
  let memo = flagMemo.get(table);
  if (!memo) flagMemo.set(table, (memo = new Map()));
  let s = memo.get(v);
  if (s === undefined) {
    const t = FLAG_TABLES[table];
    s = pyString(t ? mapFlags(BigInt(v), t) : hex(v));
    if (memo.size < 4096) memo.set(v, s);
  }
  return s;
}

export function intText(f: FieldSpec, v: number | bigint, pretty: boolean, isHex: boolean): string {
  if (!pretty) return typeof v === 'bigint' ? v.toString() : String(v);
  if (isHex) return '"' + hex(v) + '"';
  if (f.dev) return '"' + decodeDev(BigInt(v), f.odev) + '"';
  if (f.flags !== undefined) return flagsText(f.flags, v);
  if (f.dict !== undefined) {
    const name = DICT_TABLES[f.dict]?.[f.name]?.[Number(v)];
    if (name !== undefined) return pyString(name);
  }
  return typeof v === 'bigint' ? v.toString() : String(v);
}

export function valueText(f: FieldSpec, v: unknown, pretty: boolean, isHex: boolean, cur: string): string {
  switch (f.type) {
    case FT.MESSAGE:
      return messageText(f.message!, v as Record<string, unknown>, pretty, isHex, cur, undefined);
    case FT.BYTES:
      return pyString(f.conv === 'unix_name' ? qpEncode(v as Buffer) : b64encode(v as Buffer));
    case FT.ENUM:
      return typeof v === 'string' ? '"' + v + '"' : String(v);
    case FT.BOOL:
      return v ? 'true' : 'false';
    case FT.STRING:
      return pyString(v as string);
    case FT.FLOAT:
    case FT.DOUBLE:
      return pyDump(new PyFloat(v as number));
    default:
      return intText(f, v as number | bigint, pretty, isHex);
  }
}

export function messageText(spec: MessageSpec, o: Record<string, unknown>, pretty: boolean, isHex: boolean, cur: string, extra: string | undefined): string {
  const inner = pretty ? cur + IND : '';
  const sep = pretty ? ',\n' + inner : ', ';
  let s = '';
  let n = 0;
  const fields = spec.fields;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const v = o[f.name];
    if (v === undefined || v === null) continue;
    const hx = pretty && (isHex || f.hex);
    let t: string;
    if (f.repeated) {
      const a = v as unknown[];
      if (a.length === 0) continue;
      if (pretty && f.ipadd) {
        t = '[\n' + inner + IND + pyString(ipToString(a as number[])) + '\n' + inner + ']';
      } else if (pretty) {
        const in2 = inner + IND;
        t = '[\n';
        for (let j = 0; j < a.length; j++) t += (j ? ',\n' : '') + in2 + valueText(f, a[j], true, hx, in2);
        t += '\n' + inner + ']';
      } else {
        t = '[';
        for (let j = 0; j < a.length; j++) t += (j ? ', ' : '') + valueText(f, a[j], false, false, '');
        t += ']';
      }
    } else t = valueText(f, v, pretty, hx, inner);
    s += (n++ ? sep : '') + '"' + f.name + '": ' + t;
  }
  if (extra !== undefined) s += (n++ ? sep : '') + '"extra": ' + extra;
  if (n === 0) return '{}';
  return pretty ? '{\n' + inner + s + '\n' + cur + '}' : '{' + s + '}';
}


type CompactWriter = (o: Record<string, unknown>, extra: string | undefined) => string;
const compactWriters = new WeakMap<MessageSpec, CompactWriter>();

/**
 * Compile the plain (non --pretty) crit text writer of one message: fields in number order with
 * constant names; integers (number or bigint) are concatenated as decimal. Same output as
 * messageText(spec, o, false, …), only faster for huge images.
 */
export function compactWriterOf(spec: MessageSpec): CompactWriter {
  let w = compactWriters.get(spec);
  if (w) return w;
  compactWriters.set(spec, (o, x) => compactWriters.get(spec)!(o, x));
  const args: string[] = [];
  const vals: unknown[] = [];
  let body = '';
  spec.fields.forEach((f, i) => {
    const key = JSON.stringify(f.name);
    let expr: string;
    switch (f.type) {
      case FT.MESSAGE:
        args.push(`sub${i}`);
        vals.push((v: Record<string, unknown>) => compactWriterOf(f.message!)(v, undefined));
        expr = `sub${i}(V)`;
        break;
      case FT.BYTES:
      case FT.STRING:
      case FT.FLOAT:
      case FT.DOUBLE:
        args.push(`field${i}`);
        vals.push(f);
        expr = `valueText(field${i}, V, false, false, '')`;
        break;
      case FT.ENUM:
        expr = `(typeof V === 'string' ? '"' + V + '"' : '' + V)`;
        break;
      case FT.BOOL:
        expr = `(V ? 'true' : 'false')`;
        break;
      default:
        expr = `('' + V)`;
    }
    const sep = `(n++ ? ', ' : '')`;
    if (f.repeated) {
      body += `  if ((v = o[${key}]) !== undefined && v !== null && v.length !== 0) {
    s += ${sep} + ${JSON.stringify(`"${f.name}": [`)};
    for (let j = 0; j < v.length; j++) { const V = v[j]; s += (j ? ', ' : '') + ${expr}; }
    s += ']';
  }
`;
    } else {
      body += `  if ((v = o[${key}]) !== undefined && v !== null) { const V = v; s += ${sep} + ${JSON.stringify(`"${f.name}": `)} + ${expr}; }
`;
    }
  });
  const src = `return function text_${spec.name.replace(/\W/g, '_')}(o, extra) {
  let s = '';
  let n = 0;
  let v;
${body}  if (extra !== undefined) s += (n++ ? ', ' : '') + '"extra": ' + extra;
  return '{' + s + '}';
}`;
  w = new Function('valueText', ...args, src)(valueText, ...vals) as CompactWriter;
  compactWriters.set(spec, w);
  return w;
}



/** Growable ASCII output (crit JSON is pure ASCII: pycriu escapes everything else). */
export class AsciiOut {
  buf: Buffer;
  pos = 0;
  constructor(readonly size = 1 << 18) {
    this.buf = Buffer.allocUnsafe(size);
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(b, 0, 0, this.pos);
    this.buf = b;
  }
  /** Hand out what was written (the buffer is not reused afterwards). */
  take(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(this.size);
    this.pos = 0;
    return out;
  }
  ascii(s: string): void {
    const n = s.length;
    this.ensure(n);
    if (n > 48) {
      this.pos += this.buf.write(s, this.pos, 'latin1');
      return;
    }
    // short pieces: a plain loop beats the call into the runtime
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }
  bytes(src: Uint8Array): void {
    const n = src.length;
    this.ensure(n);
    if (n > 48) {
      this.buf.set(src, this.pos);
      this.pos += n;
      return;
    }
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = src[i]!;
    this.pos = p;
  }
  /** A newline and 4 spaces per level. */
  indent(depth: number): void {
    const n = 1 + 4 * depth;
    this.ensure(n);
    const b = this.buf;
    let p = this.pos;
    b[p++] = 10;
    for (let i = 1; i < n; i++) b[p++] = 32;
    this.pos = p;
  }
  /** Decimal text of an integer (number within 2^53, or bigint). */
  int(value: number | bigint): void {
    if (typeof value === 'bigint' || value > 9007199254740991 || value < -9007199254740991) return this.ascii(value.toString());
    this.ensure(17);
    const b = this.buf;
    let v: number = value;
    if (v < 0) {
      b[this.pos++] = 45;
      v = -v;
    }
    if (v < 1e9) return this.small(v);
    // above 10^9: the high part, then the low nine digits zero-padded (32-bit arithmetic)
    const high = Math.floor(v / 1e9);
    this.small(high);
    let low = v - high * 1e9;
    let at = this.pos + 9;
    this.pos = at;
    for (let i = 0; i < 9; i++) {
      const q = (low / 10) | 0;
      b[--at] = 48 + low - q * 10;
      low = q;
    }
  }
  /** Decimal text of 0 <= v < 2^31. */
  private small(v: number): void {
    const b = this.buf;
    let len = 1;
    for (let p = 10; p <= v; p *= 10) len++;
    let at = this.pos + len;
    this.pos = at;
    do {
      const q = (v / 10) | 0;
      b[--at] = 48 + v - q * 10;
      v = q;
    } while (v !== 0);
  }
  /** "0x…" of a non-negative integer, quoted (crit --pretty's hex fields). */
  hexq(value: number | bigint): void {
    if (typeof value === 'bigint' || value < 0 || value > 9007199254740991) return this.ascii('"' + hex(value) + '"');
    // two 32-bit halves, four bits per digit
    let hi = Math.floor(value / 4294967296);
    let lo = value >>> 0;
    const digits = (x: number) => (x === 0 ? 1 : (35 - Math.clz32(x)) >> 2);
    const loLen = hi !== 0 ? 8 : digits(lo);
    const len = loLen + (hi !== 0 ? digits(hi) : 0);
    this.ensure(len + 4);
    const b = this.buf;
    let at = this.pos;
    b[at] = 34;
    b[at + 1] = 48;
    b[at + 2] = 120;
    at += 3 + len;
    b[at] = 34;
    this.pos = at + 1;
    for (let i = 0; i < loLen; i++) {
      const d = lo & 15;
      b[--at] = d < 10 ? 48 + d : 87 + d;
      lo >>>= 4;
    }
    while (hi !== 0) {
      const d = hi & 15;
      b[--at] = d < 10 ? 48 + d : 87 + d;
      hi >>>= 4;
    }
  }
}

/**
 * Renders one message straight from its protobuf bytes into `o` (reader at the message's first
 * byte, `end` its limit, `depth` the indentation level of the line the message starts on, in
 * 4-space steps). Fields must come in number order with repeated ones together, as CRIU and
 * every protobuf library write them. Returns false for anything else (unknown or out-of-order
 * fields, a missing required field, bytes left over): the caller then drops what was written,
 * decodes the entry to an object and writes that, which gives the same text or the decoder's
 * exact error.
 */
export type Renderer = (r: Reader, end: number, depth: number, o: AsciiOut) => boolean;

/** Mode: 0 plain, 1 --pretty, 2 --pretty inside a hex field (nested integers in hex too). */
const renderers = [new WeakMap<MessageSpec, Renderer>(), new WeakMap<MessageSpec, Renderer>(), new WeakMap<MessageSpec, Renderer>()];

/** A JS number for 64-bit values that fit in 2^53, else a bigint (the text is the same). */
function u64v(lo: number, hi: number): number | bigint {
  const h = hi >>> 0;
  return h < 0x200000 ? h * 4294967296 + (lo >>> 0) : u64(lo, hi);
}
function i64v(lo: number, hi: number): number | bigint {
  if (hi >= 0) return u64v(lo, hi);
  return BigInt.asIntN(64, u64(lo, hi));
}

const ascii = (s: string) => Buffer.from(s, 'latin1');

/** Generated statements writing a constant ASCII text into `o` (no call, no copy loop). */
function lit(text: string): string {
  let code = `o.ensure(${text.length}); b = o.buf; p = o.pos;`;
  for (let i = 0; i < text.length; i++) code += ` b[p++] = ${text.charCodeAt(i)};`;
  return code + ' o.pos = p;';
}

export function rendererOf(spec: MessageSpec, mode: 0 | 1 | 2): Renderer {
  const cache = renderers[mode]!;
  let fn = cache.get(spec);
  if (fn) return fn;
  cache.set(spec, (r, end, depth, o) => cache.get(spec)!(r, end, depth, o)); // recursive messages
  const pretty = mode !== 0;
  const args: string[] = [];
  const vals: unknown[] = [];
  const bind = (name: string, v: unknown) => {
    args.push(name);
    vals.push(v);
    return name;
  };
  const TRUE = bind('TRUE', ascii('true'));
  const FALSE = bind('FALSE', ascii('false'));
  const close = pretty ? `o.indent(depth + 1); ${lit(']')} open = -1;` : `${lit(']')} open = -1;`;
  let cases = '';
  let decl = '';
  let required = '';
  spec.fields.forEach((f, i) => {
    const hx = pretty && (mode === 2 || f.hex);
    // an integer value (number or bigint)
    const int = (v: string) => {
      if (!pretty || !(hx || f.dev || f.flags !== undefined || f.dict !== undefined)) return `o.int(${v});`;
      if (hx) return `o.hexq(${v});`;
      return `o.ascii(${bind(`fmt${i}`, (x: number | bigint) => intText(f, x, true, false))}(${v}));`;
    };
    // a repeated field's items sit one level deeper than its key
    const itemDepth = f.repeated && pretty ? 'depth + 2' : 'depth + 1';
    let value: string;
    switch (f.type) {
      case FT.INT32:
        value = int('r.varint(end) | 0');
        break;
      case FT.UINT32:
        value = int('r.varint(end) >>> 0');
        break;
      case FT.SINT32:
        value = int('(t = r.varint(end), (t >>> 1) ^ -(t & 1))');
        break;
      case FT.UINT64:
        value = int('(t = r.varint(end), r.hi === 0 ? t >>> 0 : u64v(t, r.hi))');
        break;
      case FT.INT64:
        value = int('(t = r.varint(end), r.hi === 0 ? t >>> 0 : i64v(t, r.hi))');
        break;
      case FT.BOOL:
        value = `o.bytes((t = r.varint(end)) !== 0 || r.hi !== 0 ? ${TRUE} : ${FALSE});`;
        break;
      case FT.ENUM: {
        const names = new Map<number, Buffer>();
        for (const [k, n] of f.enumNames ?? []) names.set(k, ascii('"' + n + '"'));
        value = `t = r.varint(end) | 0; if ((n = ${bind(`names${i}`, names)}.get(t)) === undefined) o.int(t); else o.bytes(n);`;
        break;
      }
      case FT.STRING:
        value = `t = readLength(r, end); r.pos += t; o.ascii(pyString(buf.toString('utf8', r.pos - t, r.pos)));`;
        break;
      case FT.BYTES:
        value = `t = readLength(r, end); r.pos += t; o.ascii(pyString(${f.conv === 'unix_name' ? 'qpEncode' : 'b64encode'}(buf.subarray(r.pos - t, r.pos))));`;
        break;
      case FT.MESSAGE: {
        const sub = bind(`sub${i}`, (rr: Reader, e: number, d: number, oo: AsciiOut) => rendererOf(f.message!, hx ? 2 : pretty ? 1 : 0)(rr, e, d, oo));
        value = `t = readLength(r, end) + r.pos; if (!${sub}(r, t, ${itemDepth}, o)) return false; r.pos = t;`;
        break;
      }
      default: {
        // fixed-size and zigzag 64-bit fields, floats: rare in images; the generic value path
        const fld = bind(`field${i}`, f);
        value = `o.ascii(valueText(${fld}, readScalar(r, ${fld}, end), ${pretty}, ${hx}, ''));`;
      }
    }
    const fieldSep = pretty ? `if (c !== 0) { ${lit(',')} } o.indent(depth + 1);` : `if (c !== 0) { ${lit(', ')} }`;
    const start = `if (${i} <= last) return false; if (open !== -1) { ${close} } ${fieldSep} c++; ${lit(`"${f.name}": `)} last = ${i};`;
    if (f.packed || (pretty && f.ipadd)) {
      cases += `      case ${f.tag}: return false;\n`;
    } else if (f.repeated) {
      const itemSep = pretty ? `${lit(',')} o.indent(depth + 2);` : lit(', ');
      const first = pretty ? `${lit('[')} o.indent(depth + 2);` : lit('[');
      cases += `      case ${f.id * 8 + f.wire}: if (open === ${i}) { ${itemSep} } else { ${start} ${first} open = ${i}; } ${value} break;\n`;
    } else {
      cases += `      case ${f.id * 8 + f.wire}: ${start} ${value} break;\n`;
    }
    if (f.required) {
      decl += `let q${i} = false; `;
      cases = cases.replace(/ break;\n$/, ` q${i} = true; break;\n`);
      required += `if (!q${i}) return false; `;
    }
  });
  const src = `return function render_${spec.name.replace(/\W/g, '_')}(r, end, depth, o) {
  const buf = r.buf;
  let t, n, b, p, c = 0, last = -1, open = -1;
  ${decl}
  ${lit('{')}
  while (r.pos < end) {
    let tag = buf[r.pos];
    if (tag < 0x80) r.pos++; else tag = r.varint(end) >>> 0;
    switch (tag) {
${cases}      default: return false;
    }
  }
  if (r.pos !== end) return false;
  ${required}
  if (open !== -1) { ${close} }
  ${pretty ? 'if (c !== 0) o.indent(depth);' : ''}
  ${lit('}')}
  return true;
}`;
  fn = new Function('readLength', 'readScalar', 'u64v', 'i64v', 'pyString', 'b64encode', 'qpEncode', 'valueText', ...args, src)(
    readLength, readScalar, u64v, i64v, pyString, b64encode, qpEncode, valueText, ...vals,
  ) as Renderer;
  cache.set(spec, fn);
  return fn;
}
