#!/bin/sh
# A package's unit tests (`vitest run ARGS`) with a time limit. Once (2026-12-06, a clean clone,
# nothing else running) a forks-pool worker of vitest 4.1 stopped at the start of a test file,
# idle, its event loop waiting on nothing, and the run would have waited for it until CI's own
# limit. A run that passes the limit (CRTOOLS_TEST_LIMIT seconds, 600 by default: the slowest
# package takes about 100 s) is said in one line and run once more; any other result is the
# run's own. timeout(1) signals the whole process group, workers and their children with it.
# A test's own limit is 30 s unless it says another (vitest's 5 s default: tests that start
# processes timed out at it on a machine loaded ~20 on its 2 cores, though each passed alone).
limit="${CRTOOLS_TEST_LIMIT:-600}"
timeout -k 10 "$limit" vitest run --testTimeout=30000 "$@"
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "vitest: no end after ${limit} s (a hung worker): the package's tests are run once more" >&2
  timeout -k 10 "$limit" vitest run --testTimeout=30000 "$@"
  rc=$?
fi
exit "$rc"
