import { defineConfig } from 'tsup';
import { library } from '../../tsup.preset';

export default defineConfig(library({ index: 'src/index.ts', dump: 'src/dump/index.ts', plan: 'src/plan/index.ts', view: 'src/view/index.ts' }));
