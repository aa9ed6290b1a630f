import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { decoderFactoryText, encoderFactoryText } from './codec.js';
import { buildSchema, defaultSchemaCache, type SchemaJson } from './schema.js';

/**
 * gen/decoders.js: each message's decoder factory as a function in a file, written by the build
 * from gen/schema.json (after writeSchemaCache), where codec.ts would otherwise compile each with
 * `new Function` when first used. In a file the bundled bins (@crtools/cli) hold them, and V8's
 * code cache of a command holds them compiled: a restore or a crit decode no longer parses and
 * compiles ~20-30 decoders at each start. Keyed by message name, with the .proto files' hashes
 * it was written for (schema.ts takes it only for a schema of the same files).
 */
export function writePrebuiltDecoders(cacheFile = defaultSchemaCache(), out = defaultDecodersFile()): string {
  const text = prebuiltDecodersText(JSON.parse(readFileSync(cacheFile, 'utf8')) as SchemaJson);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, out);
  writeFileSync(join(dirname(out), 'decoders.d.ts'), DECLARATIONS);
  return out;
}

/** The text of gen/decoders.js for a schema. */
export function prebuiltDecodersText(json: SchemaJson): string {
  const schema = buildSchema(json);
  let text = '// Written by @crtools/images\' build (prebuilt-decoders.ts) from gen/schema.json: do not edit.\n';
  text += `export const files = ${JSON.stringify(json.files)};\n`;
  text += 'export const decoders = {\n';
  for (const [name, spec] of schema.messages) text += `${JSON.stringify(name)}: ${decoderFactoryText(spec)},\n`;
  text += '};\n';
  // (the encoders beside them, for the same reason: a dump encodes a core, mm, ids... image per task)
  text += 'export const encoders = {\n';
  for (const [name, spec] of schema.messages) text += `${JSON.stringify(name)}: ${encoderFactoryText(spec)},\n`;
  text += '};\n';
  return text;
}

const DECLARATIONS = `// Written by @crtools/images' build (prebuilt-decoders.ts): do not edit.
export declare const files: Record<string, string> | undefined;
export declare const decoders: Record<string, Function>;
export declare const encoders: Record<string, Function>;
`;

export function defaultDecodersFile(): string {
  return join(dirname(defaultSchemaCache()), 'decoders.js');
}
