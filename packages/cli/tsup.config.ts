import { defineConfig } from 'tsup';
import { library } from '../../tsup.preset';

// the library (the commands as citty definitions); the bins are bundled by tsup.bins.config.ts
export default defineConfig(library(['src/index.ts']));
