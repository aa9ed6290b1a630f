import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, isAbsolute, join } from 'node:path';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { ImageErrorCode } from './errors.js';
// written by the build (prebuilt-decoders.ts; an empty one first, which this module may load
// before the build writes the real one)
import { files as prebuiltFiles, decoders as prebuiltFactories, encoders as prebuiltEncoderFactories } from '../gen/decoders.js';

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
let lazy: SchemaBuilder | undefined;

/**
 * Where the .proto files live: $CRTOOLS_IMAGES_PROTO_DIR if set, else <package>/proto next to
 * src/ and dist/; if this module was bundled into another package, the installed
 * @crtools/images package is looked up instead.
 */
export function defaultProtoDir(): string {
  const env = process.env['CRTOOLS_IMAGES_PROTO_DIR'];
  if (env) return env;
  const here = fileURLToPath(new URL('../proto/', import.meta.url));
  if (existsSync(here)) return here;
  try {
    const pkg = createRequire(import.meta.url).resolve('@crtools/images/package.json');
    return join(dirname(pkg), 'proto');
  } catch {
    return here;
  }
}

/** Build-time cache of the parsed schema: <package>/gen/schema.json (see writeSchemaCache). */
export function defaultSchemaCache(): string {
  return fileURLToPath(new URL('../gen/schema.json', import.meta.url));
}

/**
 * The schema of this package's .proto files: the build's gen/schema.json, trusted as it is
 * (`pnpm build` writes it from proto/, and the images tests check the two agree), so that a
 * process neither hashes the .proto files nor parses them. Without it (an unbuilt checkout),
 * or with $CRTOOLS_IMAGES_PROTO_DIR naming other files, the .proto files are read.
 */
function builder(): SchemaBuilder {
  if (!lazy) {
    const protoDir = defaultProtoDir();
    let json: SchemaJson | undefined;
    if (process.env['CRTOOLS_IMAGES_PROTO_DIR']) json = readCache(protoDir, defaultSchemaCache());
    else {
      try {
        json = JSON.parse(readFileSync(defaultSchemaCache(), 'utf8')) as SchemaJson;
        if (json.version !== 2) json = undefined;
      } catch {
        /* not built: parse */
      }
    }
    lazy = new SchemaBuilder(json ?? parseProtoDir(protoDir), protoDir);
  }
  return lazy;
}

/** Load (once) and return the compiled schema, every message of it. */
export function getSchema(): Schema {
  if (!cached) cached = builder().all();
  return cached;
}

/**
 * Look up one message spec; throws IMG_SCHEMA when the schema lacks it. Only that message and
 * the ones its fields name are compiled (a dump of a small process needs a few of ~200).
 */
export function messageSpec(name: string): MessageSpec {
  const m = builder().complete(name);
  if (!m) throw new CrtoolsError(ImageErrorCode.SCHEMA, `schema has no message ${name}`, { exitCode: ExitCode.FAILED });
  return m;
}

/** The schema as plain JSON: what protobufjs resolved from the .proto files, nothing more. */
export interface SchemaJson {
  version: 2;
  /**
   * Names of the .proto files and a hash of each one's text, to detect a stale cache (not
   * mtimes: npm and pnpm give every file of an installed package one and the same date).
   */
  files: Record<string, string>;
  messages: { name: string; fields: { id: number; name: string; type: string; ref?: string; rule: string; packed: boolean; options: Record<string, unknown> }[] }[];
  enums: Record<string, Record<string, number>>;
}

function protoFiles(protoDir: string): Record<string, string> {
  const { createHash } = process.getBuiltinModule('node:crypto'); // (loaded only to write or check a cache)
  const out: Record<string, string> = {};
  for (const f of readdirSync(protoDir).filter((f) => f.endsWith('.proto')).sort())
    out[f] = createHash('sha1').update(readFileSync(join(protoDir, f))).digest('hex').slice(0, 16);
  return out;
}

/**
 * Where an `import` of a .proto file is found: next to the importing file, except Google's
 * descriptor.proto (for CRIU's field options), which is the copy protobufjs ships.
 */
function resolveImport(require: NodeRequire, origin: string, target: string): string {
  if (target === 'google/protobuf/descriptor.proto') return require.resolve('protobufjs/google/protobuf/descriptor.proto');
  return isAbsolute(target) || !origin ? target : join(dirname(origin), target);
}

/** Parse the .proto files with protobufjs into SchemaJson. */
export function parseProtoDir(protoDir: string): SchemaJson {
  let root: any;
  let files: Record<string, string> = {};
  try {
    files = protoFiles(protoDir);
    const require = createRequire(import.meta.url);
    const protobuf = require('protobufjs');
    root = new protobuf.Root();
    root.resolvePath = (origin: string, target: string) => resolveImport(require, origin, target);
    root.loadSync(Object.keys(files).map((f) => join(protoDir, f)), { keepCase: true });
    root.resolveAll();
  } catch (e) {
    throw new CrtoolsError(ImageErrorCode.SCHEMA, `cannot load image schemas from ${protoDir}: ${(e as Error).message}`, {
      exitCode: ExitCode.FAILED,
      context: { path: protoDir },
      cause: e,
    });
  }
  const json: SchemaJson = { version: 2, files, messages: [], enums: {} };
  (function walk(ns: any) {
    for (const child of ns.nestedArray ?? []) {
      const full = String(child.fullName).replace(/^\./, '');
      if (full.startsWith('google.')) continue;
      if (child.fieldsArray) {
        json.messages.push({
          name: full,
          fields: (child.fieldsArray as any[]).map((f) => ({
            id: f.id,
            name: f.name,
            type: f.type,
            ref: f.resolvedType ? String(f.resolvedType.fullName).replace(/^\./, '') : undefined,
            rule: f.repeated ? 'repeated' : f.required ? 'required' : 'optional',
            packed: f.repeated && f.options?.['packed'] === true,
            options: f.options ?? {},
          })),
        });
      } else if (child.values) json.enums[full] = { ...child.values };
      if (child.nestedArray) walk(child);
    }
  })(root);
  return json;
}

/**
 * Write the build-time cache (gen/schema.json) so that processes skip parsing .proto files
 * (~170 ms). getSchema() trusts the package's own; loadSchema() uses a cache only while every
 * .proto file is unchanged.
 */
export function writeSchemaCache(protoDir = defaultProtoDir(), cacheFile = defaultSchemaCache()): string {
  const json = parseProtoDir(protoDir);
  mkdirSync(dirname(cacheFile), { recursive: true });
  writeFileSync(cacheFile, JSON.stringify(json));
  return cacheFile;
}

function readCache(protoDir: string, cacheFile: string): SchemaJson | undefined {
  try {
    const json = JSON.parse(readFileSync(cacheFile, 'utf8')) as SchemaJson;
    if (json.version !== 2) return undefined;
    const now = protoFiles(protoDir);
    const a = Object.keys(now);
    if (a.length !== Object.keys(json.files).length || a.some((f) => json.files[f] !== now[f])) return undefined;
    return json;
  } catch {
    return undefined;
  }
}

/** Load the schema from protoDir, through the cache file when it is up to date (its hashes checked). */
export function loadSchema(protoDir: string, cacheFile?: string): Schema {
  const json = (cacheFile && readCache(protoDir, cacheFile)) || parseProtoDir(protoDir);
  return buildSchema(json, protoDir);
}

/**
 * Compile SchemaJson into MessageSpecs. A SchemaJson with the hashes of this package's .proto
 * files is taken as theirs: its messages decode with the build's decoders (gen/decoders.js).
 */
export function buildSchema(json: SchemaJson, protoDir = ''): Schema {
  return new SchemaBuilder(json, protoDir).all();
}

type MessageJson = SchemaJson['messages'][number];

/**
 * The decoder factories the build wrote for the messages of a schema (gen/decoders.js): taken
 * for a schema of the same .proto files (their hashes, as the cache's), which give the same
 * specs, hence the same decoders as codec.ts would compile with `new Function` (the images
 * tests check the file holds, for every message, the text codec.ts makes of it).
 */
const prebuilt = new WeakMap<MessageSpec, Function>();
/** (the same for the encoders, which the build writes into the same file) */
const prebuiltEncoders = new WeakMap<MessageSpec, Function>();

/** The build's decoder factory of this message, if the schema is the one it was written for. */
export function prebuiltDecoder(spec: MessageSpec): Function | undefined {
  return prebuilt.get(spec);
}

/** The build's encoder factory of this message, if the schema is the one it was written for. */
export function prebuiltEncoder(spec: MessageSpec): Function | undefined {
  return prebuiltEncoders.get(spec);
}

function sameFiles(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  if (a === undefined) return false;
  const names = Object.keys(b);
  return names.length === Object.keys(a).length && names.every((f) => a[f] === b[f]);
}

/**
 * MessageSpecs made at once as empty shells (a field refers to its message's shell), each
 * given its fields when it, or a message that refers to it, is first asked for.
 */
class SchemaBuilder {
  private readonly messages = new Map<string, MessageSpec>();
  private readonly pending = new Map<string, MessageJson>();

  constructor(
    private readonly json: SchemaJson,
    private readonly protoDir: string,
  ) {
    const same = sameFiles(prebuiltFiles, json.files);
    const factories = same ? (prebuiltFactories as Record<string, Function>) : undefined;
    const encoderFactories = same ? (prebuiltEncoderFactories as Record<string, Function> | undefined) : undefined;
    for (const m of json.messages) {
      const short = m.name.slice(m.name.lastIndexOf('.') + 1);
      const spec: MessageSpec = { name: short, fields: [], byId: new Map(), small: [], byName: new Map(), required: [] };
      this.messages.set(m.name, spec);
      this.pending.set(m.name, m);
      const factory = factories?.[m.name];
      if (factory !== undefined) prebuilt.set(spec, factory);
      const encoder = encoderFactories?.[m.name];
      if (encoder !== undefined) prebuiltEncoders.set(spec, encoder);
    }
  }

  /** The spec of message `name` with its fields, and those of every message they reach. */
  complete(name: string): MessageSpec | undefined {
    const spec = this.messages.get(name);
    if (spec === undefined || !this.pending.has(name)) return spec;
    const todo = [name];
    while (todo.length > 0) {
      const n = todo.pop()!;
      const m = this.pending.get(n);
      if (m === undefined) continue;
      this.pending.delete(n);
      this.fill(this.messages.get(n)!, m, todo);
    }
    return spec;
  }

  /** Every message completed. */
  all(): Schema {
    for (const name of [...this.pending.keys()]) this.complete(name);
    return { messages: this.messages, protoDir: this.protoDir };
  }

  private fill(spec: MessageSpec, m: MessageJson, reached: string[]): void {
    const { json, messages } = this;
    const fields = m.fields.slice().sort((a, b) => a.id - b.id);
    for (const f of fields) {
      const o = f.options;
      let type: FieldType;
      let message: MessageSpec | undefined;
      let enumNames: Map<number, string> | undefined;
      let enumValues: Map<string, number> | undefined;
      if (TYPE_BY_NAME[f.type] !== undefined) type = TYPE_BY_NAME[f.type]!;
      else if (f.ref && json.enums[f.ref]) {
        type = FT.ENUM;
        const values = json.enums[f.ref]!;
        enumValues = new Map(Object.entries(values));
        enumNames = new Map();
        for (const [n, v] of Object.entries(values)) if (!enumNames.has(v)) enumNames.set(v, n);
      } else if (f.ref && messages.has(f.ref)) {
        type = FT.MESSAGE;
        message = messages.get(f.ref);
        reached.push(f.ref);
      } else throw new CrtoolsError(ImageErrorCode.SCHEMA, `unresolved type ${f.type} of ${m.name}.${f.name}`, { exitCode: ExitCode.FAILED });
      const repeated = f.rule === 'repeated';
      const packed = repeated && f.packed;
      const wire = packed ? 2 : WIRE[type];
      const fs: FieldSpec = {
        id: f.id,
        name: f.name,
        type,
        repeated,
        required: f.rule === 'required',
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
}
