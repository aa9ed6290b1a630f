import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  target: 'node20',
  // protobufjs must stay external: bundling it breaks its runtime .proto loading.
  external: ['protobufjs'],
});
