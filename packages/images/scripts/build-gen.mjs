// The build's generated files (gen/). `node scripts/build-gen.mjs prepare` (before tsup): an
// empty gen/decoders.js and its declarations where there are none, which src/schema.ts imports.
// Without argument (after tsup): the schema from proto/, its types, and the decoders, from dist/.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const gen = new URL('../gen/', import.meta.url);
if (process.argv[2] === 'prepare') {
  mkdirSync(gen, { recursive: true });
  // (one written by an older build, without the encoders, is replaced too)
  const current = (name) => existsSync(new URL(name, gen)) && readFileSync(new URL(name, gen), 'utf8').includes('encoders');
  if (!current('decoders.js')) {
    writeFileSync(new URL('decoders.js', gen), "// Written by @crtools/images' build: none yet.\nexport const files = undefined;\nexport const decoders = {};\nexport const encoders = {};\n");
  }
  if (!current('decoders.d.ts')) {
    writeFileSync(new URL('decoders.d.ts', gen), "// Written by @crtools/images' build: do not edit.\nexport declare const files: Record<string, string> | undefined;\nexport declare const decoders: Record<string, Function>;\nexport declare const encoders: Record<string, Function>;\n");
  }
} else {
  const m = await import('../dist/index.js');
  m.writeSchemaCache();
  m.writeTypes();
  m.writePrebuiltDecoders();
}
