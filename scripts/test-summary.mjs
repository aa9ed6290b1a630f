// Adds up the JSON reports every package's vitest wrote and prints one closing line:
// "tests: N passed, N failed, N skipped". Exits 1 when a test failed or a package wrote no report.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const dirs = [...readdirSync(path.join(root, 'packages')).map((d) => path.join('packages', d)), 'test'];
let passed = 0, failed = 0, skipped = 0, missing = [];
for (const d of dirs) {
  const pkg = path.join(root, d, 'package.json');
  if (!existsSync(pkg) || !JSON.parse(readFileSync(pkg, 'utf8')).scripts?.test) continue;
  const file = path.join(root, d, '.vitest-report.json');
  if (!existsSync(file)) { missing.push(d); continue; }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.numPassedTests ?? 0;
  // a file that fails to load counts as a failure even though none of its tests ran
  const broken = r.success === false && !r.numFailedTests ? Math.max(1, r.numFailedTestSuites ?? 0) : 0;
  failed += (r.numFailedTests ?? 0) + broken;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(`${d}: ${r.numPassedTests} passed, ${(r.numFailedTests ?? 0) + broken} failed, ${(r.numPendingTests ?? 0) + (r.numTodoTests ?? 0)} skipped`);
}
for (const d of missing) console.log(`${d}: no test report (its test run did not complete)`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || missing.length > 0 ? 1 : 0);
