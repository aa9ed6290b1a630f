#!/usr/bin/env node
// Hand-run sanity check for the schemas in this folder:
//   node packages/images/proto/check.mjs [--list]
// Loads every .proto here into one protobufjs root (the same way a loader would),
// resolves all type references, then prints a summary: files, messages, enums,
// annotated fields. Exits 1 with one line on stderr if anything fails to parse.
import { createRequire } from "node:module";
import { readdirSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "package.json"));
const protobuf = require("protobufjs");

const files = readdirSync(here).filter((f) => f.endsWith(".proto")).sort();
let root;
try {
  root = new protobuf.Root();
  // Google's descriptor.proto (imported by opts.proto) is the copy protobufjs ships
  const descriptor = require.resolve("protobufjs/google/protobuf/descriptor.proto");
  root.resolvePath = (origin, target) =>
    target === "google/protobuf/descriptor.proto" ? descriptor : isAbsolute(target) || !origin ? target : join(dirname(origin), target);
  root.loadSync(files.map((f) => join(here, f)), { keepCase: true });
  root.resolveAll();
} catch (err) {
  process.stderr.write(`proto check failed: ${err.message}\n`);
  process.exit(1);
}

const messages = [];
const enums = [];
let annotated = 0;
(function walk(ns) {
  for (const child of ns.nestedArray) {
    if (child instanceof protobuf.Type) {
      messages.push(child.fullName.slice(1));
      for (const field of child.fieldsArray) {
        if (Object.keys(field.options ?? {}).some((k) => k.startsWith("(criu)."))) annotated++;
      }
    } else if (child instanceof protobuf.Enum) {
      enums.push(child.fullName.slice(1));
    }
    if (child.nestedArray && !child.fullName.startsWith(".google")) walk(child);
  }
})(root);

const ours = (n) => !n.startsWith("google.");
if (process.argv.includes("--list")) for (const m of messages.filter(ours)) console.log(m);
const ext = root.lookup("criu");
console.log(
  `${files.length} files, ${messages.filter(ours).length} messages, ${enums.filter(ours).length} enums, ` +
    `${annotated} annotated fields, extension criu=${ext?.id} on ${ext?.extend}`,
);
