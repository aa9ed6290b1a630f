import { defineConfig } from 'tsup';
import { library } from '../../tsup.preset';

export default defineConfig(library(['src/index.ts', 'src/criu-main.ts', 'src/crit-main.ts'], {
  dts: { entry: 'src/index.ts' },
}));
