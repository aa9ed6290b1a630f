/**
 * JSON text exactly as Python's `json.dump` writes it (what CRIU's crit prints):
 * - compact form (`indent=None`): separators ", " and ": " on one line;
 * - indented form (`indent=4`): "," at line ends, ": " between key and value, empty
 *   containers as `[]` / `{}`;
 * - `ensure_ascii`: every character outside space..'~' is escaped as \uXXXX (lowercase hex),
 *   except the short escapes \" \\ \n \r \t \b \f;
 * - integers are written exactly (bigint or safe number), never in exponent form.
 *
 * Values are plain JSON data with bigint allowed for integers. Object key order is kept.
 */

const NEEDS_ESCAPE = /[^ -~]|["\\]/;
const ESCAPE_ALL = /[^ -~]|["\\]/g;
const SHORT: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
};

function escapeChar(c: string): string {
  const s = SHORT[c];
  if (s !== undefined) return s;
  // JS strings are UTF-16: astral characters come as two surrogates, which is exactly how
  // Python escapes them as well.
  return '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');
}

/** A JSON string literal as Python writes it with ensure_ascii=True. */
export function pyString(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return '"' + s + '"';
  return '"' + s.replace(ESCAPE_ALL, escapeChar) + '"';
}

/** A number as Python writes it: ints exactly, floats as repr() does. */
export function pyNumber(n: number): string {
  if (Number.isInteger(n)) {
    if (Object.is(n, -0)) return '-0.0';
    if (Number.isSafeInteger(n)) return String(n);
    // an integral double beyond 2^53 came from a float field: Python prints e.g. 1e+16
    return pyFloat(n);
  }
  return pyFloat(n);
}

function pyFloat(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return 'Infinity';
  if (n === -Infinity) return '-Infinity';
  // Python's float repr: shortest round-trip digits, like JS, but exponent form from 1e16
  // and below 1e-4, written as "1e+16" / "1e-05", and integral values get ".0".
  const abs = Math.abs(n);
  if (abs !== 0 && (abs >= 1e16 || abs < 1e-4)) {
    const [mant, exp] = n.toExponential().split('e');
    const e = Number(exp);
    const es = (e < 0 ? '-' : '+') + String(Math.abs(e)).padStart(2, '0');
    return mant + 'e' + es;
  }
  const s = String(n);
  return Number.isInteger(n) ? s + '.0' : s;
}

/** A Python float marker: a value that must print as a float even when integral (e.g. 1.0). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** Serialize one value. `indent` null → compact; a number → that many spaces per level. */
export function pyDumps(value: unknown, indent: number | null = null, level = 0): string {
  const parts: string[] = [];
  emit(value, indent, level, parts);
  return parts.join('');
}

function emit(v: unknown, indent: number | null, level: number, out: string[]): void {
  switch (typeof v) {
    case 'string':
      out.push(pyString(v));
      return;
    case 'number':
      out.push(pyNumber(v));
      return;
    case 'bigint':
      out.push(v.toString());
      return;
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'undefined':
      out.push('null');
      return;
    case 'object':
      break;
    default:
      throw new TypeError(`cannot write a ${typeof v} as JSON`);
  }
  if (v === null) {
    out.push('null');
    return;
  }
  if (v instanceof PyFloat) {
    out.push(pyFloat(v.value));
    return;
  }
  if (Array.isArray(v)) {
    if (v.length === 0) {
      out.push('[]');
      return;
    }
    if (indent === null) {
      out.push('[');
      for (let i = 0; i < v.length; i++) {
        if (i) out.push(', ');
        emit(v[i], indent, level, out);
      }
      out.push(']');
      return;
    }
    const inner = '\n' + ' '.repeat(indent * (level + 1));
    out.push('[');
    for (let i = 0; i < v.length; i++) {
      out.push(i ? ',' + inner : inner);
      emit(v[i], indent, level + 1, out);
    }
    out.push('\n' + ' '.repeat(indent * level) + ']');
    return;
  }
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) {
    // crit shows bytes as base64 with a newline every 76 characters (base64.encodebytes)
    out.push(pyString(encodeBytes(Buffer.from(v as Uint8Array))));
    return;
  }
  const keys = Object.keys(v as object);
  if (keys.length === 0) {
    out.push('{}');
    return;
  }
  const obj = v as Record<string, unknown>;
  if (indent === null) {
    out.push('{');
    let first = true;
    for (const k of keys) {
      if (!first) out.push(', ');
      first = false;
      out.push(pyString(k), ': ');
      emit(obj[k], indent, level, out);
    }
    out.push('}');
    return;
  }
  const inner = '\n' + ' '.repeat(indent * (level + 1));
  out.push('{');
  let first = true;
  for (const k of keys) {
    out.push(first ? inner : ',' + inner);
    first = false;
    out.push(pyString(k), ': ');
    emit(obj[k], indent, level + 1, out);
  }
  out.push('\n' + ' '.repeat(indent * level) + '}');
}

/** Python's base64.encodebytes: base64 lines of at most 76 characters, each ending in "\n". */
export function encodeBytes(b: Buffer): string {
  if (b.length === 0) return '';
  const s = b.toString('base64');
  let r = '';
  for (let i = 0; i < s.length; i += 76) r += s.slice(i, i + 76) + '\n';
  return r;
}
