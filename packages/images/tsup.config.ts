import { defineConfig } from 'tsup';
import { library } from '../../tsup.preset';

export default defineConfig(library({ index: 'src/index.ts', facts: 'src/facts/index.ts' }, {
  // protobufjs must stay external: bundling it breaks its runtime .proto loading.
  external: ['protobufjs'],
}));
