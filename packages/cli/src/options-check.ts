/**
 * Unknown options are usage errors, as getopt makes them for CRIU and argparse for crit: a
 * typo such as `--leave-runing` must stop the command before it touches anything (the dump
 * would otherwise kill the tree the user meant to keep running).
 */
interface ArgDef {
  type?: string;
  alias?: string | string[];
}

/** The first argument `args` holds that the command's declared options do not know, if any. */
export function unknownOption(defs: Record<string, ArgDef>, args: readonly string[]): string | undefined {
  const long = new Map<string, ArgDef>();
  const short = new Map<string, ArgDef>();
  for (const [name, def] of Object.entries(defs)) {
    if (def.type === 'positional') continue;
    long.set(name, def);
    if (def.type === 'boolean') long.set(`no-${name}`, def);
    for (const a of [def.alias ?? []].flat()) (a.length === 1 ? short : long).set(a, def);
  }
  // CRIU's verbosity forms (-v, -vvvv, -v0..-v4) wherever the command takes a verbosity
  const verbosity = long.has('verbosity') || long.has('verbose');
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return undefined;
    // -h/--help, and -v/--verbose (runMain's: a stack trace with an error), for every command
    if (a === '-h' || a === '--help' || a === '-v' || a === '--verbose') continue;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const def = long.get(a.slice(2, eq < 0 ? undefined : eq));
      if (!def) return a;
      if (eq < 0 && def.type !== 'boolean') i++; // its value is the next word
      continue;
    }
    if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) {
      if (verbosity && /^-v(v*|[0-4])$/.test(a)) continue;
      const def = short.get(a[1]!);
      if (!def) return a;
      if (a.length === 2 && def.type !== 'boolean') i++;
    }
  }
  return undefined;
}
