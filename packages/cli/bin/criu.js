#!/bin/sh
':' //; if [ -n "${NODE_EXTRA_CA_CERTS-}" ]; then export CRTOOLS_NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"; unset NODE_EXTRA_CA_CERTS; fi; case "${1-}" in restore) o=--no-opt;; *) o=;; esac; exec node --max-semi-space-size=2 $o "$0" "$@"
// The line above is both shell and JavaScript. Run as a command (a PATH link, npm's link, pnpm's
// shim) /bin/sh reads it: it starts node on this file without NODE_EXTRA_CA_CERTS, which makes
// node load the CA bundle before any JavaScript runs (tens of ms of each start; crtools never
// uses TLS), and keeps its value for the children (loadBundle puts it back in process.env). Run as `node criu.js`, node
// reads the line as a string and a comment. (`#!/usr/bin/env -S -u ...` would do it in the
// shebang, but npm's and pnpm's bin shims mangle it.) V8's young generation is held to 2 MiB
// semi-spaces (16 by default): a dump of 60,000 mappings peaks at 110-115 MiB instead of 152, a
// restore of them at 174 instead of 208, a tree of 100's dump at 70-72 instead of 79, for the
// same CPU (bench/README.md, issue 18); the flag can only be given on node's command line.
// A restore runs without V8's optimizing compiler (--no-opt): it walks its data once, and the
// optimizer's compilations on other threads cost it CPU (60,000 mappings: 1040 -> 690 ms) and
// memory (their zones: peak RSS 123-140 -> 97-101 MiB) for no gain in wall time; a dump keeps it
// (its /proc parsing is hot: 60,000 mappings 0.85 -> 1.3 s without it).
// The command is one CommonJS bundle (see tsup.bins.config.ts), run with V8's code cache. This
// file is CommonJS too (bin/package.json): node then starts it without its ES module loader.
require('../dist/bin/load-bundle.cjs').loadBundle('criu', { native: true });
