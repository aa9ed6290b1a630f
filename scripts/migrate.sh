#!/usr/bin/env bash
# Live migration of a running process tree between two directories, as between two hosts, over
# loopback: the destination runs a page server per round, the source pre-dumps ROUNDS times
# while the tree keeps running (each round's pages go to the destination, only what was written
# since the previous round), then a final dump sends the last written pages, the remaining
# images are copied over, and the tree is restored from the destination's images.
#
#   scripts/migrate.sh PID SRC DST [ROUNDS]
#
# SRC/<round> keeps what the source writes (inventory, stats, the final dump's images but its
# pages), DST/<round> what the destination has: pagemaps and pages, each round's `parent` linked
# to the one before. Rounds are named 1..ROUNDS, then `final`. Environment: CRIU (the criu to run,
# default this repository's), PORT (the first round's port, default 27400; round i uses PORT+i),
# ADDRESS (default 127.0.0.1), PAUSE (seconds between rounds, default 0.5), AUTO_DEDUP=1 (the
# page server punches what a round rewrote out of the previous round's pages).
# Prints the restored root's pid; exits non-zero (and leaves the source tree as it was: running,
# unless the final dump had begun) on the first failure.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 3 ] || { echo "usage: $0 PID SRC DST [ROUNDS]" >&2; exit 2; }
pid=$1 src=$2 dst=$3 rounds=${4:-2}
address=${ADDRESS:-127.0.0.1} port=${PORT:-27400} pause=${PAUSE:-0.5}
dedup=(); [ "${AUTO_DEDUP:-0}" = 1 ] && dedup=(--auto-dedup)
if [ -n "${CRIU:-}" ]; then criu() { "$CRIU" "$@"; }; else criu() { node "$repo/packages/cli/bin/criu.js" "$@"; }; fi
mkdir -p "$src" "$dst"

# one round: a page server for it on the destination, then the source's (pre-)dump into it
round() { # NAME PREV COMMAND [ARGS...]
  local name=$1 prev=$2 cmd=$3; shift 3
  local p=$((port + ${#done[@]} + 1)) parent=()
  [ -n "$prev" ] && parent=(--prev-images-dir "../$prev")
  mkdir -p "$dst/$name" "$src/$name"
  criu page-server -D "$dst/$name" --address "$address" --port "$p" "${parent[@]}" "${dedup[@]}" \
    --daemon --pidfile page-server.pid -o page-server.log -v4
  local server; server=$(cat "$dst/$name/page-server.pid")
  if ! criu "$cmd" -t "$pid" -D "$src/$name" "${parent[@]}" --page-server --address "$address" --port "$p" \
    -o "$cmd.log" -v4 "$@"; then
    kill -KILL "$server" 2>/dev/null || true
    echo "migrate: $cmd of round $name failed (see $src/$name/$cmd.log)" >&2
    exit 1
  fi
  # the server ends with its session: wait for it to have written everything
  for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.05; done
  done+=("$name")
}

done=()
prev=
for i in $(seq "$rounds"); do
  round "$i" "$prev" pre-dump
  prev=$i
  sleep "$pause"
done
round final "$prev" dump --track-mem

# the images that are not pages go to the destination (as rsync would)
for f in "$src/final"/*; do
  case ${f##*/} in parent | dump.log | crtools-mem-track.json) ;; *) cp -a "$f" "$dst/final/" ;; esac
done
criu restore -D "$dst/final" -d --pidfile restored.pid -o restore.log -v4
cat "$dst/final/restored.pid"; echo
