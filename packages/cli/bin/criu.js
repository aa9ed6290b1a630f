#!/usr/bin/env node
// A plain shebang: npm and pnpm bin shims carry only this form (an `env -S` line breaks them).
import '../dist/criu-main.js';
