#!/usr/bin/env bash
# Builds everything, runs every package's tests and the end-to-end suite one package at a time
# (the e2e tests ptrace and restore real processes), then prints one summary line.
set -u
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1
rm -f packages/*/.vitest-report.json test/.vitest-report.json
pnpm run build --output-logs=errors-only || { echo "build failed" >&2; exit 1; }
pnpm exec turbo run test --concurrency=1 --continue \
  -- --reporter=verbose --reporter=json --outputFile=.vitest-report.json
rc=$?
node scripts/test-summary.mjs || rc=1
exit $rc
