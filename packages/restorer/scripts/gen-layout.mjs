// Generates the C view of layout.json (the single description of the plan block).
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const L = JSON.parse(readFileSync(join(root, 'layout.json'), 'utf8'));
let out = '/* Generated from layout.json by scripts/gen-layout.mjs: do not edit. */\n#pragma once\n\n';
out += `#define PLAN_MAGIC ${L.magic}ULL\n#define PLAN_VERSION ${L.version}ULL\n\n`;
for (const [name, fields] of Object.entries(L.records)) {
  out += `struct plan_${name} {\n${fields.map((f) => `\tunsigned long long ${f};\n`).join('')}};\n`;
  out += `#define PLAN_${name.toUpperCase()}_SIZE ${fields.length * 8}\n\n`;
}
for (const [k, v] of Object.entries(L.constants)) out += `#define ${k} ${v}ULL\n`;
L.steps.forEach((s, i) => (out += `#define STEP_${s.toUpperCase()} ${i}\n`));
mkdirSync(join(root, 'blobs'), { recursive: true });
writeFileSync(join(root, 'blobs', 'plan-layout.h'), out);
