import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildSchema, decodeMessage, decoderFactoryText, encoderFactoryText, defaultDecodersFile, defaultProtoDir, defaultSchemaCache, prebuiltDecodersText, encodeMessage, getSchema, loadSchema, MAGICS, messageSpec, parseProtoDir, writeSchemaCache, type MessageSpec } from '../src/index.js';
import { prebuiltDecoder, prebuiltEncoder } from '../src/schema.js';

const tmp = mkdtempSync(join(tmpdir(), 'images-schema-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('schema', () => {
  it('has the message of every magic in the table', () => {
    for (const m of MAGICS) {
      if (m.message === null) continue;
      expect(messageSpec(m.message).name).toBe(m.message);
      if (m.firstMessage) expect(messageSpec(m.firstMessage).name).toBe(m.firstMessage);
    }
    expect(MAGICS.length).toBeGreaterThanOrEqual(69);
    expect(new Set(MAGICS.map((m) => m.magic)).size).toBe(MAGICS.length);
  });

  it('carries CRIU field facts and crit annotations', () => {
    const vma = messageSpec('vma_entry');
    const start = vma.byName.get('start')!;
    expect([start.id, start.required, start.hex]).toEqual([1, true, true]);
    expect(vma.byName.get('prot')!.flags).toBe('mmap.prot');
    expect(messageSpec('inet_sk_entry').byName.get('src_addr')!.ipadd).toBe(true);
    expect(messageSpec('unix_sk_entry').byName.get('name')!.conv).toBe('unix_name');
    expect(messageSpec('core_entry').byName.get('mtype')!.enumValues!.get('X86_64')).toBe(1);
  });

  it('the build cache (gen/schema.json) compiles to the same schema as parsing the .proto files', () => {
    const dir = join(tmp, 'proto');
    cpSync(defaultProtoDir(), dir, { recursive: true, dereference: true });
    const cache = writeSchemaCache(dir, join(tmp, 'gen', 'schema.json'));
    const viaCache = loadSchema(dir, cache);
    const parsed = buildSchema(parseProtoDir(dir));
    const flat = (s: typeof parsed) => [...s.messages].map(([k, m]) => [k, m.fields.map((f) => [f.id, f.name, f.type, f.repeated, f.required, f.message?.name, f.hex, f.flags])]);
    expect(flat(viaCache)).toEqual(flat(parsed));
    expect(flat(getSchema())).toEqual(flat(parsed));
  });

  it('compiles a message asked for, with every message it reaches, as the whole schema has it', () => {
    const whole = buildSchema(parseProtoDir(defaultProtoDir()));
    const deep = (m: MessageSpec, seen = new Set<string>()): unknown => {
      if (seen.has(m.name)) return m.name;
      seen.add(m.name);
      return [m.name, m.fields.map((f) => [f.id, f.name, f.type, f.repeated, f.packed, f.tag, f.hex, f.flags, f.conv, f.enumNames && [...f.enumNames], f.message && deep(f.message, seen)]), m.required.map((f) => f.id)];
    };
    for (const name of ['core_entry', 'mm_entry', 'pagemap_entry', 'inventory_entry', 'ipc_msg']) {
      const lazy = messageSpec(name);
      expect(lazy.fields.length).toBeGreaterThan(0);
      expect(deep(lazy)).toEqual(deep(whole.messages.get(name)!));
      expect(lazy.small.filter(Boolean).length).toBe(lazy.fields.filter((f) => f.id < 64).length);
    }
    // the whole schema, asked for later, is made of the same specs
    expect(getSchema().messages.get('core_entry')).toBe(messageSpec('core_entry'));
  });

  it('ignores a stale cache (a .proto file edited after it was written), not one merely touched', () => {
    const dir = join(tmp, 'proto2');
    cpSync(defaultProtoDir(), dir, { recursive: true, dereference: true });
    const cacheFile = join(tmp, 'gen2', 'schema.json');
    writeSchemaCache(dir, cacheFile);
    // poison the cache, then touch a proto: the loader must re-parse instead of using the poison
    const json = JSON.parse(readFileSync(cacheFile, 'utf8'));
    json.messages = json.messages.filter((m: { name: string }) => m.name !== 'fs_entry');
    writeFileSync(cacheFile, JSON.stringify(json));
    expect(loadSchema(dir, cacheFile).messages.has('fs_entry')).toBe(false);
    // a new date alone (as npm gives every installed file) changes nothing
    const later = new Date(Date.now() + 5000);
    utimesSync(join(dir, 'fs.proto'), later, later);
    expect(loadSchema(dir, cacheFile).messages.has('fs_entry')).toBe(false);
    appendFileSync(join(dir, 'fs.proto'), '// edited\n');
    expect(loadSchema(dir, cacheFile).messages.has('fs_entry')).toBe(true);
  });
});

describe('schema errors', () => {
  it('a missing proto directory is IMG_SCHEMA (exit code FAILED), one line', () => {
    let err: any;
    try {
      loadSchema(join(tmp, 'no-such-dir'));
    } catch (e) {
      err = e;
    }
    expect(err.code).toBe('IMG_SCHEMA');
    expect(err.exitCode).toBe(1);
    expect(err.message).toMatch(/^cannot load image schemas from .*no-such-dir: ENOENT/);
  });
});

describe("the build's decoders (gen/decoders.js)", () => {
  it('hold, for every message of the schema, the factory codec.ts would compile, and are taken for this schema', async () => {
    const gen = await import('../gen/decoders.js');
    const schema = getSchema();
    expect(gen.files).toEqual(JSON.parse(readFileSync(defaultSchemaCache(), 'utf8')).files);
    expect(Object.keys(gen.decoders).sort()).toEqual([...schema.messages.keys()].sort());
    // the file is what codec.ts makes of each message now (a build after codec.ts changed)
    const text = readFileSync(defaultDecodersFile(), 'utf8');
    expect(text).toBe(prebuiltDecodersText(JSON.parse(readFileSync(defaultSchemaCache(), 'utf8'))));
    for (const [name, spec] of schema.messages) {
      expect(text).toContain(`${JSON.stringify(name)}: ${decoderFactoryText(spec)},\n`);
      expect(prebuiltDecoder(spec)).toBe(gen.decoders[name]);
      // and its encoder
      expect(text).toContain(`${JSON.stringify(name)}: ${encoderFactoryText(spec)},\n`);
      expect(prebuiltEncoder(spec)).toBe(gen.encoders[name]);
    }
    expect(Object.keys(gen.encoders).sort()).toEqual([...schema.messages.keys()].sort());
  });

  it('are not taken for a schema of other .proto files; its decoders are compiled and decode the same', () => {
    const dir = join(tmp, 'proto-other');
    cpSync(defaultProtoDir(), dir, { recursive: true, dereference: true });
    appendFileSync(join(dir, 'core.proto'), '\n// edited\n');
    const other = loadSchema(dir);
    const core = other.messages.get('core_entry')!;
    expect(prebuiltDecoder(core)).toBeUndefined();
    expect(prebuiltEncoder(core)).toBeUndefined();
    const ours = messageSpec('core_entry');
    expect(prebuiltDecoder(ours)).toBeDefined();
    expect(prebuiltEncoder(ours)).toBeDefined();
    const value = { mtype: 'X86_64', tc: { task_state: 1, exit_code: 0, personality: 0, flags: 0, blk_sigset: 5n, comm: 'sleep' } };
    const bytes = encodeMessage(ours, value);
    expect(decodeMessage(core, bytes)).toEqual(decodeMessage(ours, bytes));
    expect(encodeMessage(core, decodeMessage(core, bytes))).toEqual(bytes);
  });
});
