import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { ImageErrorCode } from './errors.js';

/**
 * The compiled schema: one MessageSpec per protobuf message, built once (lazily) from
 * the .proto files in ../proto with protobufjs' parser. protobufjs is used only to
 * parse and resolve; encoding and decoding are ours (codec.ts), so that 64-bit values
 * come out as exact bigints and re-encoding is byte-identical.
 */

export const FT = {
  INT32: 0, UINT32: 1, SINT32: 2, INT64: 3, UINT64: 4, SINT64: 5, FIXED32: 6, SFIXED32: 7,
  FIXED64: 8, SFIXED64: 9, BOOL: 10, STRING: 11, BYTES: 12, ENUM: 13, MESSAGE: 14, FLOAT: 15, DOUBLE: 16,
} as const;
export type FieldType = (typeof FT)[keyof typeof FT];

const TYPE_BY_NAME: Record<string, FieldType> = {
  int32: FT.INT32, uint32: FT.UINT32, sint32: FT.SINT32, int64: FT.INT64, uint64: FT.UINT64, sint64: FT.SINT64,
  fixed32: FT.FIXED32, sfixed32: FT.SFIXED32, fixed64: FT.FIXED64, sfixed64: FT.SFIXED64, bool: FT.BOOL,
  string: FT.STRING, bytes: FT.BYTES, float: FT.FLOAT, double: FT.DOUBLE,
};

/** Wire type each field type is written with (when not packed). */
export const WIRE: Record<FieldType, number> = {
  0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 5, 7: 5, 8: 1, 9: 1, 10: 0, 11: 2, 12: 2, 13: 0, 14: 2, 15: 5, 16: 1,
};

export function is64(t: FieldType): boolean {
  return t === FT.INT64 || t === FT.UINT64 || t === FT.SINT64 || t === FT.FIXED64 || t === FT.SFIXED64;
}

export interface FieldSpec {
  id: number;
  name: string;
  type: FieldType;
  repeated: boolean;
  required: boolean;
  packed: boolean;
  wire: number;
  /** Precomputed tag varint bytes (non-packed form). */
  tag: number;
  message?: MessageSpec;
  enumNames?: Map<number, string>;
  enumValues?: Map<string, number>;
  /** crit --pretty annotations (CRIU's (criu) field options). */
  hex: boolean;
  ipadd: boolean;
  flags?: string;
  dev: boolean;
  odev: boolean;
  dict?: string;
  conv?: string;
}

export interface MessageSpec {
  name: string;
  /** Fields sorted by number (the order CRIU and crit write them). */
  fields: FieldSpec[];
  byId: Map<number, FieldSpec>;
  /** Dense lookup for small field numbers. */
  small: (FieldSpec | undefined)[];
  byName: Map<string, FieldSpec>;
  required: FieldSpec[];
}

export interface Schema {
  messages: Map<string, MessageSpec>;
  /** Directory the .proto files were loaded from. */
  protoDir: string;
}

let cached: Schema | undefined;

/** Where the .proto files live: <package>/proto, next to src/ and dist/. */
export function defaultProtoDir(): string {
  return fileURLToPath(new URL('../proto/', import.meta.url));
}

/** Load (once) and return the compiled schema. */
export function getSchema(): Schema {
  if (!cached) cached = loadSchema(defaultProtoDir());
  return cached;
}

/** Look up one message spec; throws IMG_SCHEMA when the schema lacks it. */
export function messageSpec(name: string): MessageSpec {
  const m = getSchema().messages.get(name);
  if (!m) throw new CrtoolsError(ImageErrorCode.SCHEMA, `schema has no message ${name}`, { exitCode: ExitCode.FAILED });
  return m;
}

interface PbField {
  id: number;
  name: string;
  type: string;
  rule?: string;
  repeated: boolean;
  required: boolean;
  packed: boolean;
  options?: Record<string, unknown>;
  resolvedType: { fullName: string; values?: Record<string, number>; fieldsArray?: PbField[] } | null;
}

export function loadSchema(protoDir: string): Schema {
  let root: any;
  try {
    const require = createRequire(import.meta.url);
    const protobuf = require('protobufjs');
    const files = readdirSync(protoDir).filter((f) => f.endsWith('.proto')).sort().map((f) => join(protoDir, f));
    root = new protobuf.Root().loadSync(files, { keepCase: true });
    root.resolveAll();
  } catch (e) {
    throw new CrtoolsError(ImageErrorCode.SCHEMA, `cannot load image schemas from ${protoDir}: ${(e as Error).message}`, {
      exitCode: ExitCode.FAILED,
      context: { path: protoDir },
      cause: e,
    });
  }
  const types: any[] = [];
  (function walk(ns: any) {
    for (const child of ns.nestedArray ?? []) {
      if (child.fieldsArray) types.push(child);
      if (child.nestedArray && !String(child.fullName).startsWith('.google')) walk(child);
    }
  })(root);

  const messages = new Map<string, MessageSpec>();
  const byFull = new Map<string, MessageSpec>();
  for (const t of types) {
    const spec: MessageSpec = { name: t.name, fields: [], byId: new Map(), small: [], byName: new Map(), required: [] };
    byFull.set(t.fullName, spec);
    // Nested types are addressed by full name; top-level ones (all of CRIU's) by plain name.
    messages.set(String(t.fullName).replace(/^\./, ''), spec);
  }
  for (const t of types) {
    const spec = byFull.get(t.fullName)!;
    const fields = (t.fieldsArray as PbField[]).slice().sort((a, b) => a.id - b.id);
    for (const f of fields) {
      const o = f.options ?? {};
      let type: FieldType;
      let message: MessageSpec | undefined;
      let enumNames: Map<number, string> | undefined;
      let enumValues: Map<string, number> | undefined;
      if (TYPE_BY_NAME[f.type] !== undefined) type = TYPE_BY_NAME[f.type]!;
      else if (f.resolvedType && f.resolvedType.values) {
        type = FT.ENUM;
        enumValues = new Map(Object.entries(f.resolvedType.values));
        enumNames = new Map();
        for (const [n, v] of Object.entries(f.resolvedType.values)) if (!enumNames.has(v)) enumNames.set(v, n);
      } else if (f.resolvedType) {
        type = FT.MESSAGE;
        message = byFull.get(f.resolvedType.fullName);
      } else throw new CrtoolsError(ImageErrorCode.SCHEMA, `unresolved type ${f.type} of ${t.name}.${f.name}`, { exitCode: ExitCode.FAILED });
      const packed = f.repeated && o['packed'] === true;
      const wire = packed ? 2 : WIRE[type];
      const fs: FieldSpec = {
        id: f.id,
        name: f.name,
        type,
        repeated: f.repeated,
        required: f.required,
        packed,
        wire,
        tag: f.id * 8 + wire,
        message,
        enumNames,
        enumValues,
        hex: o['(criu).hex'] === true,
        ipadd: o['(criu).ipadd'] === true,
        flags: typeof o['(criu).flags'] === 'string' ? (o['(criu).flags'] as string) : undefined,
        dev: o['(criu).dev'] === true,
        odev: o['(criu).odev'] === true,
        dict: typeof o['(criu).dict'] === 'string' ? (o['(criu).dict'] as string) : undefined,
        conv: typeof o['(criu).conv'] === 'string' ? (o['(criu).conv'] as string) : undefined,
      };
      spec.fields.push(fs);
      spec.byId.set(fs.id, fs);
      if (fs.id < 64) spec.small[fs.id] = fs;
      spec.byName.set(fs.name, fs);
      if (fs.required) spec.required.push(fs);
    }
  }
  return { messages, protoDir };
}
