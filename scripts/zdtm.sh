#!/usr/bin/env bash
# CRIU's own test suite (zdtm) run against crtools: each zdtm test starts a small program,
# `criu dump` and `criu restore` it with this repository's criu and crit, and the program checks
# itself (and zdtm compares what it can see from outside) after the restore.
#
#   scripts/zdtm.sh CRIU_SRC [zdtm.py run options...]     (as root; default: -a -f h --keep-going)
#
# CRIU_SRC is a CRIU source tree (4.x; never committed here), e.g. from `git archive v4.2` of
# checkpoint-restore/criu. Its zdtm tests and pycriu are built on the first run (Debian packages:
# gcc make protobuf-c-compiler protobuf-compiler libprotobuf-c-dev libnl-3-dev libnl-route-3-dev
# libcap-dev libnet1-dev libaio-dev libbsd-dev pkg-config python3-yaml python3-protobuf).
# zdtm.py runs under Debian's /usr/bin/python3 (it needs yaml and protobuf). Examples:
#
#   scripts/zdtm.sh /tmp/criu-4.2 -t zdtm/static/env00 -f h
#   scripts/zdtm.sh /tmp/criu-4.2 -a -f h --keep-going --report /tmp/zdtm-report
#
# Only the host flavour (-f h) is what crtools is run against so far; a test failing "at result
# check" restored a process with something changed, "at CRIU dump" one refused (exit 4, by name)
# or not handled.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 CRIU_SRC [zdtm.py run options...]" >&2; exit 2; }
src=$(cd "$1" && pwd); shift
[ -f "$src/test/zdtm.py" ] || { echo "$0: $src is not a CRIU source tree (no test/zdtm.py)" >&2; exit 2; }
[ -f "$src/lib/pycriu/rpc_pb2.py" ] || make -C "$src" -j"$(nproc)" lib >/dev/null
[ -x "$src/test/zdtm/static/env00" ] || make -C "$src/test/zdtm" -j"$(nproc)" >/dev/null
[ -f "$repo/packages/cli/dist/bin/criu.cjs" ] || { echo "$0: build crtools first (pnpm install && pnpm build)" >&2; exit 2; }
[ $# -gt 0 ] || set -- -a -f h --keep-going
cd "$src/test"
# Debian's python3 first on PATH: zdtm.py starts helpers by name
PATH=/usr/bin:/bin:/usr/sbin:/sbin exec /usr/bin/python3 ./zdtm.py run --ignore-taint -k failed "$@" \
  --criu-bin "$repo/packages/cli/bin/criu.js" --crit-bin "$repo/packages/cli/bin/crit.js"
