import { imageError, ImageErrorCode } from './errors.js';

/**
 * JSON text exactly as Python's json.dump writes it (what crit prints): ", " and ": "
 * separators, or with indent=4 one member per line and "," at line ends; non-ASCII
 * escaped as \uXXXX (ensure_ascii); integers of any size written exactly (bigint).
 * And a parser that keeps integers beyond 2^53 exact (as bigint).
 */

const SIMPLE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

export function pyString(s: string): string {
  if (SIMPLE.test(s)) return '"' + s + '"';
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x0c) out += '\\f';
    else if (c < 0x20 || c > 0x7e) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += s[i];
  }
  return out + '"';
}

/** A number as Python prints it: integers exactly, floats as Python's repr(). */
export function pyNumber(n: number | bigint): string {
  if (typeof n === 'bigint') return n.toString();
  if (Number.isInteger(n)) {
    if (Object.is(n, -0)) return '-0.0';
    if (Number.isSafeInteger(n)) return String(n);
    // an integral double beyond 2^53 came from a float field: Python prints e.g. 1e+16
    return pyFloat(n);
  }
  return pyFloat(n);
}

/** Python's float repr: shortest round-trip digits, exponent form from 1e16 and below 1e-4 ("1e+16", "1e-05"), ".0" on integral values. */
function pyFloat(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return 'Infinity';
  if (n === -Infinity) return '-Infinity';
  const abs = Math.abs(n);
  if (abs !== 0 && (abs >= 1e16 || abs < 1e-4)) {
    const [mant, exp] = n.toExponential().split('e');
    const e = Number(exp);
    return mant + 'e' + (e < 0 ? '-' : '+') + String(Math.abs(e)).padStart(2, '0');
  }
  if (Object.is(n, -0)) return '-0.0';
  const s = String(n);
  return Number.isInteger(n) ? s + '.0' : s;
}

/** A Python float marker: a value that must print as a float even when integral (e.g. 1.0). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** Python's base64.encodebytes: base64 lines of at most 76 characters, each ending in "\n". */
export function encodeBytes(b: Uint8Array): string {
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length === 0) return '';
  if (buf.length <= 57) return buf.toString('base64') + '\n';
  let s = '';
  for (let i = 0; i < buf.length; i += 57) s += buf.toString('base64', i, Math.min(i + 57, buf.length)) + '\n';
  return s;
}

/**
 * Serialize a value as Python's json.dumps (ensure_ascii, default separators). `ind` is the
 * indent unit (null = compact), `cur` the current indentation. Objects keep insertion order;
 * bytes are written as crit shows them (base64.encodebytes).
 */
export function pyDump(v: unknown, ind: string | null = null, cur = ''): string {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'string':
      return pyString(v);
    case 'number':
      return pyNumber(v);
    case 'bigint':
      return v.toString();
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object':
      break;
    default:
      throw new TypeError(`cannot write a ${typeof v} as JSON`);
  }
  if (v instanceof PyFloat) return pyFloat(v.value);
  if (v instanceof Uint8Array) return pyString(encodeBytes(v));
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    if (ind === null) {
      let s = '[';
      for (let i = 0; i < v.length; i++) s += (i ? ', ' : '') + pyDump(v[i], null, '');
      return s + ']';
    }
    const inner = cur + ind;
    let s = '[\n';
    for (let i = 0; i < v.length; i++) s += (i ? ',\n' : '') + inner + pyDump(v[i], ind, inner);
    return s + '\n' + cur + ']';
  }
  const keys = Object.keys(v as object);
  if (keys.length === 0) return '{}';
  const o = v as Record<string, unknown>;
  if (ind === null) {
    let s = '{';
    for (let i = 0; i < keys.length; i++) s += (i ? ', ' : '') + pyString(keys[i]!) + ': ' + pyDump(o[keys[i]!], null, '');
    return s + '}';
  }
  const inner = cur + ind;
  let s = '{\n';
  for (let i = 0; i < keys.length; i++) s += (i ? ',\n' : '') + inner + pyString(keys[i]!) + ': ' + pyDump(o[keys[i]!], ind, inner);
  return s + '\n' + cur + '}';
}

/** json.dumps(value, indent=N) (null: compact), N spaces per level. */
export function pyDumps(value: unknown, indent: number | null = null): string {
  return pyDump(value, indent === null ? null : ' '.repeat(indent));
}

// ---------------------------------------------------------------------------------------------
// Parsing: the one JSON reader of crtools (crit's `encode` streams entries through it too).
// Integers that fit a double exactly stay numbers, larger ones become bigints; accepts what
// Python's json.load accepts (NaN, Infinity, -Infinity); one pass over the text (linear);
// errors name the offset and use Python's wording.

/** True when the text holds a run of 16+ digits (a number JSON.parse might round). */
function hasLongDigitRun(s: string): boolean {
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (++run >= 16) return true;
    } else run = 0;
  }
  return false;
}

/**
 * Parse JSON text keeping integers beyond 2^53 exact (bigint). Uses JSON.parse when the text
 * holds no number that could be rounded. Errors are `JSON_SYNTAX` CrtoolsErrors with
 * `context.offset` (UTF-16 index in the text).
 */
export function parseJsonExact(text: string, file?: string): unknown {
  if (!hasLongDigitRun(text)) {
    try {
      return JSON.parse(text);
    } catch {
      // fall through to our parser for a precise error position
    }
  }
  return parseJsonStrict(text, file);
}

/** Like parseJsonExact but always through the exact reader (no JSON.parse fast path). */
export function parseJsonStrict(text: string, file?: string): unknown {
  try {
    return parseJson(text);
  } catch (e) {
    throw toImageError(e, file);
  }
}

/** A JsonSyntaxError as the images package's JSON_SYNTAX error; anything else unchanged. */
export function toImageError(e: unknown, file?: string): unknown {
  if (e instanceof JsonSyntaxError) return imageError(ImageErrorCode.JSON_SYNTAX, { file, offset: e.index }, `invalid JSON: ${e.message}`);
  return e;
}

export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    /** Offset in UTF-16 units in the text. */
    readonly index: number,
  ) {
    super(message);
  }
}

export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | { [k: string]: JsonValue };

/** A crit JSON value as a number (bigints, numeric strings and booleans too; anything else 0). */
export function jsonNumber(v: JsonValue | undefined): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  return 0;
}

/** A crit JSON value as a bigint (numbers, decimal or 0x strings; anything else 0n). */
export function jsonBigint(v: JsonValue | undefined): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(v);
  if (typeof v === 'string' && /^(0x[0-9a-f]+|-?[0-9]+)$/i.test(v)) return BigInt(v);
  return 0n;
}

const WS = new Uint8Array(128);
WS[0x20] = WS[0x09] = WS[0x0a] = WS[0x0d] = 1;

export class JsonCursor {
  pos = 0;
  constructor(readonly text: string) {}

  ws(): void {
    const t = this.text;
    let p = this.pos;
    while (p < t.length) {
      const c = t.charCodeAt(p);
      if (c < 128 && WS[c]) p++;
      else break;
    }
    this.pos = p;
  }

  fail(msg: string, at = this.pos): never {
    throw new JsonSyntaxError(msg, at);
  }

  expect(ch: string, what: string): void {
    this.ws();
    if (this.text[this.pos] !== ch) this.fail(`expecting ${what}`);
    this.pos++;
  }

  /** After the opening bracket: true if the container is empty (and consumes the closer). */
  peekClose(closer: string): boolean {
    this.ws();
    if (this.text[this.pos] === closer) {
      this.pos++;
      return true;
    }
    return false;
  }

  /** Between items: true if another item follows, false at the closer. */
  next(closer: string, what: string): boolean {
    this.ws();
    const c = this.text[this.pos];
    if (c === ',') {
      this.pos++;
      return true;
    }
    if (c === closer) {
      this.pos++;
      return false;
    }
    return this.fail(`expecting ',' or '${closer}' in ${what}`);
  }

  value(depth = 0): JsonValue {
    if (depth > 512) this.fail('nesting too deep');
    this.ws();
    const t = this.text;
    const c = t.charCodeAt(this.pos);
    switch (c) {
      case 0x7b /* { */: {
        this.pos++;
        const o: { [k: string]: JsonValue } = {};
        if (this.peekClose('}')) return o;
        do {
          this.ws();
          if (t.charCodeAt(this.pos) !== 0x22) this.fail('expecting property name enclosed in double quotes');
          const k = this.string();
          this.expect(':', "':' delimiter");
          const v = this.value(depth + 1);
          // a "__proto__" key is data, not the prototype
          if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
          else o[k] = v;
        } while (this.next('}', 'object'));
        return o;
      }
      case 0x5b /* [ */: {
        this.pos++;
        const a: JsonValue[] = [];
        if (this.peekClose(']')) return a;
        do a.push(this.value(depth + 1));
        while (this.next(']', 'array'));
        return a;
      }
      case 0x22:
        return this.string();
      case 0x74:
        return this.word('true', true);
      case 0x66:
        return this.word('false', false);
      case 0x6e:
        return this.word('null', null);
      case 0x4e:
        return this.word('NaN', NaN);
      case 0x49:
        return this.word('Infinity', Infinity);
      default:
        if (c === 0x2d && t.startsWith('-Infinity', this.pos)) return this.word('-Infinity', -Infinity);
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
        return this.fail(this.pos >= t.length ? 'unexpected end of JSON, expecting value' : 'expecting value');
    }
  }

  private word<T>(w: string, v: T): T {
    if (!this.text.startsWith(w, this.pos)) this.fail('expecting value');
    this.pos += w.length;
    return v;
  }

  private number(): number | bigint {
    const t = this.text;
    const start = this.pos;
    let p = start;
    if (t.charCodeAt(p) === 0x2d) p++;
    const d0 = p;
    let c = t.charCodeAt(p);
    if (c === 0x30) p++;
    else if (c >= 0x31 && c <= 0x39) {
      while (p < t.length && (c = t.charCodeAt(p)) >= 0x30 && c <= 0x39) p++;
    } else this.fail('expecting value', start);
    let isInt = true;
    if (t.charCodeAt(p) === 0x2e) {
      const f0 = ++p;
      while (p < t.length && (c = t.charCodeAt(p)) >= 0x30 && c <= 0x39) p++;
      if (p === f0) {
        // Python stops the number before a lone '.', then fails on the '.'
        this.pos = f0 - 1;
        return this.finishInt(start, d0, f0 - 1);
      }
      isInt = false;
    }
    c = t.charCodeAt(p);
    if (c === 0x65 || c === 0x45) {
      let q = p + 1;
      c = t.charCodeAt(q);
      if (c === 0x2b || c === 0x2d) q++;
      const e0 = q;
      while (q < t.length && (c = t.charCodeAt(q)) >= 0x30 && c <= 0x39) q++;
      if (q > e0) {
        p = q;
        isInt = false;
      }
    }
    this.pos = p;
    if (!isInt) return Number(t.slice(start, p));
    return this.finishInt(start, d0, p);
  }

  private finishInt(start: number, d0: number, end: number): number | bigint {
    const s = this.text.slice(start, end);
    // up to 15 digits always fit a double exactly
    if (end - d0 <= 15) return Number(s) || 0; // -0 is the integer 0
    const b = BigInt(s);
    return b >= -9007199254740991n && b <= 9007199254740991n ? Number(b) : b;
  }

  string(): string {
    const t = this.text;
    const start = ++this.pos;
    let p = start;
    // fast path: no escapes
    for (;;) {
      if (p >= t.length) this.fail('unterminated string', start - 1);
      const c = t.charCodeAt(p);
      if (c === 0x22) {
        this.pos = p + 1;
        return t.slice(start, p);
      }
      if (c === 0x5c) break;
      if (c < 0x20) this.fail('invalid control character in string', p);
      p++;
    }
    let out = t.slice(start, p);
    for (;;) {
      if (p >= t.length) this.fail('unterminated string', start - 1);
      const c = t.charCodeAt(p);
      if (c === 0x22) {
        this.pos = p + 1;
        return out;
      }
      if (c < 0x20) this.fail('invalid control character in string', p);
      if (c !== 0x5c) {
        const q = p;
        while (p < t.length) {
          const d = t.charCodeAt(p);
          if (d === 0x22 || d === 0x5c || d < 0x20) break;
          p++;
        }
        out += t.slice(q, p);
        continue;
      }
      const e = t[p + 1];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const h = t.slice(p + 2, p + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(h)) this.fail('invalid \\uXXXX escape', p);
          out += String.fromCharCode(parseInt(h, 16));
          p += 6;
          continue;
        }
        default:
          this.fail('invalid \\escape', p);
      }
      p += 2;
    }
  }

  end(): void {
    this.ws();
    if (this.pos < this.text.length) this.fail('extra data after the JSON document');
  }
}

/** Parse one complete JSON document. */
export function parseJson(text: string): JsonValue {
  const c: JsonCursor = new JsonCursor(text);
  const v = c.value();
  c.end();
  return v;
}

export interface ImageDocumentHandler {
  /** Called once, before the first entry, with the magic name. */
  magic(name: string): void | Promise<void>;
  /** Called for each entry in order. */
  entry(e: JsonValue, index: number): void | Promise<void>;
}

/**
 * Walk `{"magic": "X", "entries": [...]}` handing each entry to the handler as soon as it is
 * parsed. If "entries" precedes "magic" the entries are held until the magic is known.
 * Other top-level keys are ignored (as CRIU's crit does).
 */
export async function readImageDocument(text: string, h: ImageDocumentHandler): Promise<{ count: number }> {
  const c: JsonCursor = new JsonCursor(text);
  c.ws();
  if (c.text[c.pos] !== '{') c.fail(c.pos >= text.length ? 'empty input, expecting a JSON object' : "expecting '{' (a crit image document)");
  c.pos++;
  let magic: string | undefined;
  let held: JsonValue[] | undefined;
  let sawEntries = false;
  let count = 0;
  if (!c.peekClose('}')) {
    do {
      c.ws();
      if (text.charCodeAt(c.pos) !== 0x22) c.fail('expecting property name enclosed in double quotes');
      const key = c.string();
      c.expect(':', "':' delimiter");
      if (key === 'magic') {
        c.ws();
        const at = c.pos;
        const v = c.value();
        if (typeof v !== 'string') c.fail('"magic" must be a string', at);
        magic = v;
        await h.magic(v);
        if (held) {
          for (const e of held) await h.entry(e, count++);
          held = undefined;
        }
      } else if (key === 'entries') {
        c.ws();
        if (text[c.pos] !== '[') c.fail('"entries" must be an array');
        c.pos++;
        sawEntries = true;
        if (!c.peekClose(']')) {
          if (magic === undefined) held = [];
          do {
            const e = c.value();
            if (held) held.push(e);
            else await h.entry(e, count++);
          } while (c.next(']', 'array'));
        }
      } else {
        c.value();
      }
    } while (c.next('}', 'object'));
  }
  c.end();
  if (magic === undefined) c.fail('no "magic" key in the image document', 0);
  if (!sawEntries) c.fail('no "entries" key in the image document', 0);
  return { count };
}
