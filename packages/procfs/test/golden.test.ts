import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hexReplacer, isCrtoolsError, type CrtoolsError } from '@crtools/common';
import { TEXT_KINDS } from './text-kinds.js';

/**
 * Golden pairs: test/golden/NAME.KIND.(txt|bin) is captured or crafted /proc
 * content, NAME.KIND.json what the parser must produce:
 *   { "records": … }                       when it parses, or
 *   { "error": {code, line}, "keepGoing": … } when strict parsing must fail, with
 *   the output under onError (records plus {"error": …} entries, in order).
 * CRTOOLS_UPDATE_GOLDEN=1 rewrites the .json files (review the diff!).
 */
const dir = join(import.meta.dirname, 'golden');
const update = process.env.CRTOOLS_UPDATE_GOLDEN === '1';

const toJson = (v: unknown) => JSON.parse(JSON.stringify(v, hexReplacer));

function run(kind: string, data: Buffer, path: string) {
  const parse = TEXT_KINDS[kind]!;
  try {
    return { records: toJson(parse(data, { path })) };
  } catch (e) {
    if (!isCrtoolsError(e)) throw e;
    // Under onError, line parsers skip bad lines; whole-file parsers (stat, auxv) still throw.
    const errors: unknown[] = [];
    const pushErr = (err: CrtoolsError) => errors.push({ error: { code: err.code, line: err.context.line } });
    try {
      const recs = parse(data, { path, onError: pushErr });
      return { error: { code: e.code, line: e.context.line }, keepGoing: { errors, records: toJson(recs) } };
    } catch (e2) {
      if (!isCrtoolsError(e2)) throw e2;
      return { error: { code: e.code, line: e.context.line }, keepGoing: { errors, thrown: e2.code } };
    }
  }
}

const inputs = readdirSync(dir).filter((f) => /\.(txt|bin)$/.test(f));

describe('golden pairs', () => {
  it('has golden inputs', () => {
    expect(inputs.length).toBeGreaterThan(20);
  });
  for (const f of inputs) {
    const m = /^(.+)\.([a-z]+)\.(txt|bin)$/.exec(f)!;
    const kind = m[2]!;
    it(`${f}`, () => {
      expect(TEXT_KINDS[kind], `no parser for kind ${kind}`).toBeDefined();
      const data = readFileSync(join(dir, f));
      const got = run(kind, data, f);
      const expFile = join(dir, `${m[1]}.${kind}.json`);
      if (update || !existsSync(expFile)) {
        if (!update) throw new Error(`missing ${expFile} (run with CRTOOLS_UPDATE_GOLDEN=1 and review it)`);
        writeFileSync(expFile, JSON.stringify(got, null, 1) + '\n');
      }
      expect(got).toEqual(JSON.parse(readFileSync(expFile, 'utf8')));
    });
  }
});
