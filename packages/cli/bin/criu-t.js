#!/usr/bin/env node
// A plain shebang: npm and pnpm bin shims carry only this form (an `env -S` line breaks them).
// The command is one CommonJS bundle (see tsup.bins.config.ts), run with V8's code cache. This
// file is CommonJS too (bin/package.json): node then starts it without its ES module loader.
require('../dist/bin/load-bundle-t.cjs').loadBundle('criu');
