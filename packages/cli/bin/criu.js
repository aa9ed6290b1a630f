#!/usr/bin/env node
import '../dist/criu-main.js';
