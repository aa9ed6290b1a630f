#!/usr/bin/env bash
# Installs what crtools needs on a fresh Debian 12 machine of this kind (run as root), then
# installs the workspace and builds it. Safe to run again: each step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1
# node-gyp compiles the native parts' sources on every CPU
export JOBS=max

# Debian packages: a C toolchain for the native parts and freestanding blobs, Debian's criu
# for its crit, which the tests use as a reference decoder of the image format, and runc with
# a static busybox, for the test that runc drives crtools as its criu (test/rpc/runc.test.ts),
# a JRE for the test that a JVM round-trips (test/restore/java.test.ts); iptables and nftables
# for the network lock of TCP connections (--network-lock), iproute2 for ss, redis-server, a
# real program the TCP tests carry with a client outside the tree, and PostgreSQL 15, carried as
# the init of its own namespaces with a client outside (test/restore/postgres.test.ts); podman,
# which checkpoints containers through runc with crtools as its criu (test/rpc/podman.test.ts),
# zstd, its default archive compression, which crit x reads through the zstd tool, and tmux,
# a real program the terminal tests carry (a server with a shell in its pane: test/restore/tty.test.ts).
need=()
for pkg in gcc make python3 criu python3-protobuf runc busybox-static default-jre-headless iptables nftables iproute2 redis-server postgresql-15 podman zstd tmux; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "10.34.9" ]; then
  echo "setup: installing pnpm 10.34.9" >&2
  npm install -g pnpm@10.34.9 >/dev/null
fi

pnpm install --frozen-lockfile
pnpm run build
