#!/usr/bin/env node
// A plain shebang: npm and pnpm bin shims carry only this form (an `env -S` line breaks them).
// The command is one CommonJS bundle (see tsup.bins.config.ts), run with V8's code cache.
import { createRequire } from 'node:module';

createRequire(import.meta.url)('../dist/bin/load-bundle.cjs').loadBundle('crit');
