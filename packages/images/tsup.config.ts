import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', facts: 'src/facts/index.ts' },
  format: ['esm'],
  dts: true,
  clean: true,
  target: 'node20',
  // protobufjs must stay external: bundling it breaks its runtime .proto loading.
  external: ['protobufjs'],
});
