#!/bin/sh
':' //; if [ -n "${NODE_EXTRA_CA_CERTS-}" ]; then export CRTOOLS_NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"; unset NODE_EXTRA_CA_CERTS; fi; exec node "$0" "$@"
// The line above is both shell and JavaScript. Run as a command (a PATH link, npm's link, pnpm's
// shim) /bin/sh reads it: it starts node on this file without NODE_EXTRA_CA_CERTS, which makes
// node load the CA bundle before any JavaScript runs (tens of ms of each start; crtools never
// uses TLS), and keeps its value for the children (loadBundle puts it back in process.env). Run as `node criu.js`, node
// reads the line as a string and a comment. (`#!/usr/bin/env -S -u ...` would do it in the
// shebang, but npm's and pnpm's bin shims mangle it.)
// The command is one CommonJS bundle (see tsup.bins.config.ts), run with V8's code cache. This
// file is CommonJS too (bin/package.json): node then starts it without its ES module loader.
require('../dist/bin/load-bundle.cjs').loadBundle('criu');
