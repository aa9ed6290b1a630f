/**
 * Unknown options are usage errors, as getopt makes them for CRIU and argparse for crit: a
 * typo such as `--leave-runing` must stop the command before it touches anything (the dump
 * would otherwise kill the tree the user meant to keep running).
 */
interface ArgDef {
  type?: string;
  alias?: string | string[];
}

/** How a command's declared options read words: what an option word is, and whether a value follows it. */
function tables(defs: Record<string, ArgDef>) {
  const long = new Map<string, ArgDef>();
  const short = new Map<string, ArgDef>();
  for (const [name, def] of Object.entries(defs)) {
    if (def.type === 'positional') continue;
    long.set(name, def);
    if (def.type === 'boolean') long.set(`no-${name}`, def);
    for (const a of [def.alias ?? []].flat()) (a.length === 1 ? short : long).set(a, def);
  }
  // CRIU's verbosity forms (-v, -vvvv, -v0..-v4) wherever the command takes a verbosity
  return { long, short, verbosity: long.has('verbosity') || long.has('verbose') };
}

/**
 * The option word `a` as `defs` read it: undefined when they do not know it, else how many of
 * the words after it are its value (0 or 1); 'end' for `--`, 'word' for a word that is no option.
 */
function readWord(t: ReturnType<typeof tables>, a: string): 0 | 1 | 'end' | 'word' | undefined {
  if (a === '--') return 'end';
  // -h/--help, and -v/--verbose (runMain's: a stack trace with an error), for every command
  if (a === '-h' || a === '--help' || a === '-v' || a === '--verbose') return 0;
  if (a.startsWith('--')) {
    const eq = a.indexOf('=');
    const def = t.long.get(a.slice(2, eq < 0 ? undefined : eq));
    if (!def) return undefined;
    return eq < 0 && def.type !== 'boolean' ? 1 : 0;
  }
  if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) {
    if (t.verbosity && /^-v(v*|[0-4])$/.test(a)) return 0;
    const def = t.short.get(a[1]!);
    if (!def) return undefined;
    return a.length === 2 && def.type !== 'boolean' ? 1 : 0;
  }
  return 'word';
}

/** The first argument `args` holds that the command's declared options do not know, if any. */
export function unknownOption(defs: Record<string, ArgDef>, args: readonly string[]): string | undefined {
  const t = tables(defs);
  for (let i = 0; i < args.length; i++) {
    const r = readWord(t, args[i]!);
    if (r === 'end') return undefined;
    if (r === undefined) return args[i];
    if (r === 1) i++; // its value is the next word
  }
  return undefined;
}

/** The words of `args` that are no option nor an option's value (every word after `--`). */
export function positionalWords(defs: Record<string, ArgDef>, args: readonly string[]): string[] {
  const t = tables(defs);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const r = readWord(t, args[i]!);
    if (r === 'end') return [...out, ...args.slice(i + 1)];
    if (r === 'word') out.push(args[i]!);
    else if (r === 1) i++;
  }
  return out;
}

/**
 * `args` without the options `defs` do not know but one of `others` does (each with its value,
 * as that one reads it), as CRIU, whose one option table serves every command, takes an option
 * of another command and leaves it unused. Options nobody knows stay, for unknownOption to name.
 */
export function withoutOthersOptions(defs: Record<string, ArgDef>, others: readonly Record<string, ArgDef>[], args: readonly string[]): string[] {
  const t = tables(defs);
  const ts = others.map(tables);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const r = readWord(t, a);
    if (r === 'end') return [...out, ...args.slice(i)];
    if (r !== undefined) {
      out.push(a);
      if (r === 1 && i + 1 < args.length) out.push(args[++i]!);
      continue;
    }
    const theirs = ts.map((o) => readWord(o, a)).find((x) => x === 0 || x === 1);
    if (theirs === undefined) out.push(a);
    else if (theirs === 1) i++;
  }
  return out;
}

/**
 * The part of a command's option definitions citty needs to parse `args`: the options the words
 * name (long, `no-` and `=` forms, every letter of a group of short ones), and every positional,
 * option with a default or required one. citty hands each definition to node's parseArgs (with
 * its case forms as aliases), whose cost grows with their number (~100 for `criu dump`, a few
 * named on a command line); an option not named gets no value either way, so citty answers
 * the same for these words (test/named-options.test.ts compares the two). Taking more than the
 * words name is harmless; the words must have passed unknownOption.
 */
export function namedOptions<D extends ArgDef & { default?: unknown; required?: boolean }>(defs: Record<string, D>, args: readonly string[]): Record<string, D> {
  const t = tables(defs);
  const names = new Map<ArgDef, string>();
  for (const [name, def] of Object.entries(defs)) names.set(def, name);
  const keep = new Set<string>();
  const take = (def: ArgDef | undefined) => def !== undefined && keep.add(names.get(def)!);
  for (const a of args) {
    if (a.length < 2 || a[0] !== '-') continue;
    if (a[1] === '-') {
      const eq = a.indexOf('=');
      const name = a.slice(2, eq < 0 ? undefined : eq);
      take(t.long.get(name));
      if (name.startsWith('no-')) take(t.long.get(name.slice(3)));
    } else for (let i = 1; i < a.length; i++) take(t.short.get(a[i]!));
  }
  const out: Record<string, D> = {};
  for (const [name, def] of Object.entries(defs)) {
    if (keep.has(name) || def.type === 'positional' || def.default !== undefined || def.required) out[name] = def;
  }
  return out;
}
