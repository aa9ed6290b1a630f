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

/** A number as Python prints it (floats keep a fractional part). */
export function pyNumber(n: number | bigint): string {
  if (typeof n === 'bigint') return n.toString();
  if (Number.isInteger(n) && Math.abs(n) < 1e16) return Number.isSafeInteger(n) ? String(n) : n.toFixed(1);
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '-Infinity';
  return String(n);
}

/** Marks a JS number that is a Python float (printed with ".0"). Crit images have none. */
export class PyFloat {
  constructor(readonly value: number) {}
}

/**
 * Serialize a value. `ind` is the indent unit (null = compact), `cur` the current indentation.
 * Objects keep insertion order.
 */
export function pyDump(v: unknown, ind: string | null = null, cur = ''): string {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'string':
      return pyString(v);
    case 'number':
      return Number.isInteger(v) ? String(v) : pyNumber(v);
    case 'bigint':
      return v.toString();
    case 'boolean':
      return v ? 'true' : 'false';
  }
  if (v instanceof PyFloat) return Number.isInteger(v.value) ? v.value.toFixed(1) : pyNumber(v.value);
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

// ---------------------------------------------------------------------------------------------
// Parsing (integers beyond 2^53 stay exact as bigint)

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

export function parseJsonExact(text: string, file?: string): unknown {
  if (!hasLongDigitRun(text)) {
    try {
      return JSON.parse(text);
    } catch (e) {
      // fall through to our parser for a precise error position
    }
  }
  return new ExactParser(text, file).parseDocument();
}

/** The exact parser (integers beyond 2^53 as bigint); errors are JSON_SYNTAX with the offset. */
export class ExactParser {
  pos = 0;
  constructor(
    readonly s: string,
    readonly file?: string,
  ) {}

  fail(msg: string): never {
    throw imageError(ImageErrorCode.JSON_SYNTAX, { file: this.file, offset: this.pos }, `invalid JSON: ${msg}`);
  }

  ws(): void {
    const s = this.s;
    let p = this.pos;
    for (;;) {
      const c = s.charCodeAt(p);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    this.pos = p;
  }

  parseDocument(): unknown {
    this.ws();
    const v = this.value(0);
    this.ws();
    if (this.pos !== this.s.length) this.fail('unexpected data after the document');
    return v;
  }

  value(depth: number): unknown {
    if (depth > 512) this.fail('nesting too deep');
    this.ws();
    const c = this.s[this.pos];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return this.string();
    if (c === 't' && this.s.startsWith('true', this.pos)) return (this.pos += 4), true;
    if (c === 'f' && this.s.startsWith('false', this.pos)) return (this.pos += 5), false;
    if (c === 'n' && this.s.startsWith('null', this.pos)) return (this.pos += 4), null;
    if (c === 'N' && this.s.startsWith('NaN', this.pos)) return (this.pos += 3), NaN;
    if (c === 'I' && this.s.startsWith('Infinity', this.pos)) return (this.pos += 8), Infinity;
    if (c === '-' && this.s.startsWith('-Infinity', this.pos)) return (this.pos += 9), -Infinity;
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    this.fail(c === undefined ? 'unexpected end of input' : `unexpected ${JSON.stringify(c)}`);
  }

  number(): number | bigint {
    const m = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
    m.lastIndex = this.pos;
    const r = m.exec(this.s);
    if (!r) this.fail('bad number');
    this.pos += r[0].length;
    if (r[1] === undefined && r[2] === undefined) {
      const n = Number(r[0]);
      return Number.isSafeInteger(n) ? n : BigInt(r[0]);
    }
    return Number(r[0]);
  }

  /**
   * A string, scanned once from the opening quote to the closing one (linear in its length:
   * never searches past the closing quote).
   */
  string(): string {
    const s = this.s;
    const n = s.length;
    const open = ++this.pos;
    let p = open;
    let run = p; // start of the current run of plain characters
    let out = '';
    for (;;) {
      if (p >= n) {
        this.pos = open;
        this.fail('unterminated string');
      }
      const c = s.charCodeAt(p);
      if (c === 0x22) {
        this.pos = p + 1;
        return run === p ? out : out + s.slice(run, p);
      }
      if (c < 0x20) {
        this.pos = p;
        this.fail('control character in string');
      }
      if (c !== 0x5c) {
        p++;
        continue;
      }
      out += s.slice(run, p);
      const b = p;
      const e = s[b + 1];
      p = b + 2;
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
          const h = s.slice(p, p + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(h)) {
            this.pos = b;
            this.fail('bad \\u escape');
          }
          out += String.fromCharCode(parseInt(h, 16));
          p += 4;
          break;
        }
        default:
          this.pos = b;
          this.fail('bad escape');
      }
      run = p;
    }
  }

  array(depth: number): unknown[] {
    this.pos++;
    const out: unknown[] = [];
    this.ws();
    if (this.s[this.pos] === ']') return this.pos++, out;
    for (;;) {
      out.push(this.value(depth + 1));
      this.ws();
      const c = this.s[this.pos++];
      if (c === ']') return out;
      if (c !== ',') {
        this.pos--;
        this.fail("expected ',' or ']'");
      }
    }
  }

  object(depth: number): Record<string, unknown> {
    this.pos++;
    const out: Record<string, unknown> = {};
    this.ws();
    if (this.s[this.pos] === '}') return this.pos++, out;
    for (;;) {
      this.ws();
      if (this.s[this.pos] !== '"') this.fail('expected a key');
      const k = this.string();
      this.ws();
      if (this.s[this.pos++] !== ':') {
        this.pos--;
        this.fail("expected ':'");
      }
      const v = this.value(depth + 1);
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
      this.ws();
      const c = this.s[this.pos++];
      if (c === '}') return out;
      if (c !== ',') {
        this.pos--;
        this.fail("expected ',' or '}'");
      }
    }
  }
}
