#!/usr/bin/env bash
# The main job: checkpoint a live process tree, show what was saved, restore it, and watch it go on.
# The tree is a shell that counts into a file every 0.2 s (with its `sleep` child): after the
# restore the count goes on from where it was, with the same PID, because the shell's memory,
# registers and files came back.
set -euo pipefail
cd "$(dirname "$0")/.."
criu() { node packages/cli/bin/criu.js "$@"; }
crit() { node packages/cli/bin/crit.js "$@"; }

# the tree gets stdio on /dev/null and nothing else: close whatever this shell inherited
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
done

work=$(mktemp -d /tmp/crtools-demo.XXXXXX)
pid=
cleanup() {
  # the demo's tree is its own session and process group: end it by that id
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

# setsid -f: the tree is its own session and not our child (init reaps it once it is killed)
setsid -f sh -c 'echo $$ > "$1.pid"; n=0; while :; do n=$((n+1)); echo "$n" > "$1"; sleep 0.2; done' \
  demo "$work/counter" </dev/null >/dev/null 2>&1
for _ in $(seq 50); do [ -s "$work/counter.pid" ] && break; sleep 0.1; done
pid=$(cat "$work/counter.pid")
sleep 1.5
echo "== a live tree: pid $pid, counter at $(cat "$work/counter")"

criu dump -t "$pid" -D "$work/images" -o dump.log -v4
at_dump=$(cat "$work/counter")
# the killed tasks must be reaped (by us, or by init for orphans) before their PIDs are free again
pids=$(crit decode -i "$work/images/pstree.img" |
  python3 -c 'import json,sys; print(" ".join(str(t) for e in json.load(sys.stdin)["entries"] for t in e["threads"]))')
for _ in $(seq 50); do
  alive=; for p in $pids; do [ -e "/proc/$p" ] && alive=1; done
  [ -z "$alive" ] && break
  sleep 0.1
done
if [ -n "$alive" ]; then echo "demo: the dumped tree ($pids) is still there after the dump" >&2; exit 1; fi
echo "== dumped into $work/images and killed; the counter stopped at $at_dump"
crit x "$work/images" tree

criu restore -D "$work/images" -d --pidfile "$work/restored.pid" -o restore.log -v4
echo "== restored: pid $(cat "$work/restored.pid")"
sleep 1.5
now=$(cat "$work/counter")
echo "== 1.5 s later the counter is at $now (it stopped at $at_dump)"
if [ "$now" -le "$at_dump" ] || [ "$(cat "$work/restored.pid")" != "$pid" ]; then
  echo "demo: the restored tree did not go on" >&2
  exit 1
fi
echo "== the same process went on counting; ending it (pid $pid) and removing $work"
cleanup
rm -rf "$work"
