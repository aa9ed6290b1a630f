#!/usr/bin/env node
import '../dist/crit-main.js';
