#!/usr/bin/env bash
# The main job, shown on a reference checkpoint written by CRIU 4.2 (until dump and restore land):
# the process tree of the pipetree fixture, its files and its memory, read with our crit.
set -euo pipefail
cd "$(dirname "$0")/.."
fx=../shared/fixtures/criu-4.2/pipetree
for view in ps fds mems; do
  echo "== crit x $fx $view"
  pnpm -s exec crit x "$fx" "$view"
done
