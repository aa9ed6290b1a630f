import { defineConfig } from 'tsup';
import { library } from '../../tsup.preset';

export default defineConfig(library({ index: 'src/index.ts', facts: 'src/facts/index.ts' }, {
  // protobufjs must stay external: bundling it breaks its runtime .proto loading.
  external: ['protobufjs'],
  // gen/decoders.js is written after this build from its output (scripts/build-gen.mjs): dist/
  // imports it as a file beside it (which @crtools/cli's bundle then takes in)
  esbuildPlugins: [
    {
      name: 'crtools-gen-decoders',
      setup(build) {
        build.onResolve({ filter: /^\.\.\/gen\/decoders\.js$/ }, (args) => ({ path: args.path, external: true }));
      },
    },
  ],
}));
