#!/usr/bin/env bash
# A container checkpointed and restored by runc with crtools as its criu: a busybox container
# (runc's default spec: its own pid, mount, network, UTS and IPC namespaces) counts into a file
# every 0.1 s; `runc checkpoint` stops it into images, `runc restore` brings it back, and the
# count goes on from where it stopped. Needs runc and busybox-static (scripts/setup.sh installs
# both). CRIU=/path/to/criu runs the same with another criu (CRIU 4.2, to compare).
set -euo pipefail
cd "$(dirname "$0")/.."
criu=${CRIU:-$PWD/packages/cli/bin/criu.js}
busybox=$(command -v busybox || true)
if ! command -v runc >/dev/null || [ -z "$busybox" ]; then
  echo "container-demo: needs runc and a static busybox (Debian packages runc, busybox-static)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/crtools-container-demo.XXXXXX)
id=crtools-demo-$$
runc() { command runc --root "$work/state" "$@"; }
cleanup() {
  runc delete -f "$id" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# a bundle: busybox alone in a rootfs, runc's default spec with the counting loop
mkdir -p "$work/bundle/rootfs/"{bin,proc,dev,sys,tmp}
cp "$busybox" "$work/bundle/rootfs/bin/busybox"
for applet in sh sleep echo cat; do ln -s busybox "$work/bundle/rootfs/bin/$applet"; done
(cd "$work/bundle" && command runc spec)
python3 - "$work/bundle/config.json" <<'EOF'
import json, sys
f = sys.argv[1]
c = json.load(open(f))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done"]
c["root"]["readonly"] = False
json.dump(c, open(f, "w"), indent=1)
EOF
count() { cat "$work/bundle/rootfs/tmp/count" 2>/dev/null || echo 0; }

runc run -d --bundle "$work/bundle" "$id" </dev/null >/dev/null 2>&1
sleep 2
echo "== container $id running (pid $(runc state "$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')), counter at $(count)"

runc --criu "$criu" checkpoint --image-path "$work/images" --work-path "$work/logs" "$id"
stopped=$(count)
echo "== checkpointed into $work/images, the container gone; the counter stopped at $stopped"
node packages/cli/bin/crit.js x "$work/images" ps

runc --criu "$criu" restore -d --image-path "$work/images" --work-path "$work/logs" --bundle "$work/bundle" "$id" </dev/null >/dev/null 2>&1
sleep 1.5
now=$(count)
echo "== restored: $(runc state "$id" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["status"], "pid", s["pid"])'); 1.5 s later the counter is at $now"
if [ "$now" -le "$stopped" ]; then
  echo "container-demo: the restored container did not go on counting" >&2
  exit 1
fi
echo "== the container went on from where it stopped; deleting it and $work"
