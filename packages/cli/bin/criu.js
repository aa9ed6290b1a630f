#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node
// (no TLS here: with that variable set Node 20 parses the whole CA bundle before any code runs, ~80 ms)
import '../dist/criu-main.js';
