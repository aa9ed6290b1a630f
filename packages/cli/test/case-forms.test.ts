import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { plainCaseForms, type CaseForms } from '../src/case-forms.js';
import { criuCommand, critCommand } from '../src/index.js';
import { resolve, type AnyCommand } from '../src/run.js';

/** citty's own copy of scule, the one the bins' plugin hands to case-forms.ts. */
async function cittyScule(): Promise<CaseForms> {
  const index = createRequire(import.meta.url).resolve('citty').replace(/index\.cjs$/, 'index.mjs');
  const m = await import(pathToFileURL(path.join(path.dirname(index), '_chunks/libs/scule.mjs')).href);
  return { camelCase: m.t, kebabCase: m.n, snakeCase: m.r };
}

/** Every option name (and alias) every criu and crit command declares. */
async function declaredNames(): Promise<string[]> {
  const names = new Set<string>();
  const walk = async (cmd: AnyCommand): Promise<void> => {
    for (const [name, def] of Object.entries(((await resolve(cmd.args as unknown)) ?? {}) as Record<string, { alias?: string | string[] }>)) {
      names.add(name);
      for (const a of [def.alias ?? []].flat()) names.add(a);
    }
    for (const sub of Object.values(((await resolve(cmd.subCommands as unknown)) ?? {}) as Record<string, unknown>)) await walk((await resolve(sub)) as AnyCommand);
  };
  await walk(criuCommand);
  await walk(critCommand);
  return [...names];
}

describe("the bins' case conversions for citty (case-forms.ts)", () => {
  it('answer what scule answers for every declared option name, and strings of other shapes', async () => {
    const scule = await cittyScule();
    const ours = plainCaseForms(scule);
    const names = await declaredNames();
    expect(names.length).toBeGreaterThan(100);
    expect(names).toContain('leave-running');
    const others = [
      '', 'a', 'A', 'D', 'v4', 'x-2', 'tcp-established', 'leaveRunning', 'LeaveRunning', 'leave_running', 'leave--running',
      '-leave', 'leave-', 'ext-mount-map', 'file-locks', 'a.b', 'a/b', 'ABCdef', 'abcDEF', 'no-leave-running', '9lives', 'é-x', 'ß',
      'page-server', 'inherit-fd', 'v', 'vvvv', 'x-y-z', 'tcp-2-close', 'a-b2c', 'a-B',
    ];
    const strings = [...names, ...others, ...names.map((n) => n.toUpperCase()), ...names.map((n) => `no-${n}`)];
    for (const s of strings) {
      expect([s, ours.camelCase(s)]).toEqual([s, scule.camelCase(s)]);
      expect([s, ours.kebabCase(s)]).toEqual([s, scule.kebabCase(s)]);
      expect([s, ours.snakeCase(s)]).toEqual([s, scule.snakeCase(s)]);
      expect([s, ours.kebabCase(s, '_')]).toEqual([s, scule.kebabCase(s, '_')]);
      expect([s, ours.camelCase(s, { normalize: true })]).toEqual([s, scule.camelCase(s, { normalize: true })]);
    }
    // what citty's argument proxy may be asked besides strings
    for (const v of [undefined, Symbol.iterator, ['a', 'b']] as unknown[]) {
      expect(ours.camelCase(v)).toEqual(scule.camelCase(v));
      expect(ours.kebabCase(v)).toEqual(scule.kebabCase(v));
    }
    }, 60_000);
});
