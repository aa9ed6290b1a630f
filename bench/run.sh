#!/usr/bin/env bash
# Runs every benchmark in turn (after `pnpm run build`). Each prints its own figures and ratios.
set -u
cd "$(dirname "$0")"
rc=0
for b in *.mjs; do
  echo "=== bench/$b"
  node "$b" || rc=1
done
exit $rc
