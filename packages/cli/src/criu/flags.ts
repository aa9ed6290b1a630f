/** Flag forms citty does not parse the way criu(8) takes them. */
import { CrtoolsError, ExitCode, unixSocketExternal } from '@crtools/common';

/** Every value of an option CRIU takes more than once (`--opt V` or `--opt=V`), in order. */
export function repeatedOption(rawArgs: string[], name: string): string[] {
  const out: string[] = [];
  rawArgs.forEach((a, i) => {
    if (a === name && i + 1 < rawArgs.length) out.push(rawArgs[i + 1]!);
    else if (a.startsWith(name + '=')) out.push(a.slice(name.length + 1));
  });
  return out;
}

/** CRIU's verbosity: -v (3), -vv.. (one more each, up to 4), -v0..-v4, --verbosity=N; default 2. */
export function verbosityOf(rawArgs: string[]): number {
  let v = 2;
  for (const a of rawArgs) {
    const m = /^-v([0-4])$/.exec(a) ?? /^--verbosity=([0-4])$/.exec(a);
    if (m) v = Number(m[1]);
    else if (/^-v+$/.test(a)) v = Math.min(4, 2 + a.length - 1);
  }
  return v;
}

/**
 * A size as criu.8 writes it (--ghost-limit): bytes, or a number of KiB, MiB or GiB with the
 * suffix K, M or G.
 */
export function parseSize(name: string, v: string): number {
  const m = /^(\d+)([KMG]?)$/.exec(v);
  if (!m) throw new CrtoolsError('USAGE', `invalid argument for --${name}: ${v} (SIZE[K|M|G])`, { exitCode: ExitCode.USAGE });
  return Number(m[1]) * { '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 }[m[2] as '' | 'K' | 'M' | 'G'];
}

/**
 * Every occurrence of an option whose value is optional, as getopt takes one: only `--opt=V`
 * carries a value, a bare `--opt` has none (undefined) and leaves the next word alone.
 */
export function optionalValueOption(rawArgs: string[], name: string): (string | undefined)[] {
  const out: (string | undefined)[] = [];
  for (const a of rawArgs) {
    if (a === '--') break;
    if (a === name) out.push(undefined);
    else if (a.startsWith(name + '=')) out.push(a.slice(name.length + 1));
  }
  return out;
}

/**
 * --ext-unix-sk=INO[,INO...] (-xINO,...): as CRIU, each socket of the tree with one of these
 * inodes may have its peer outside the tree, which `--external unix[INO]` says of it; a bare
 * --ext-unix-sk names none.
 */
export function extUnixSkExternals(rawArgs: string[]): string[] {
  const out: string[] = [];
  for (const a of rawArgs) {
    if (a === '--') break;
    const v = a.startsWith('--ext-unix-sk=') ? a.slice('--ext-unix-sk='.length) : /^-x./.test(a) ? a.slice(2) : undefined;
    if (v === undefined) continue;
    for (const ino of v.split(',').filter((x) => x !== '')) {
      const ext = /^\d+$/.test(ino) ? unixSocketExternal(Number(ino)) : undefined;
      if (ext === undefined) throw new CrtoolsError('USAGE', `invalid argument for --ext-unix-sk: ${v} (socket inodes, comma-separated)`, { exitCode: ExitCode.USAGE });
      out.push(ext);
    }
  }
  return out;
}

/** --network-lock METHOD: iptables, nftables or skip (criu.8), as CriuOptions spells it. */
export function networkLockOf(v: string): 'iptables' | 'nftables' | 'skip' {
  const m = v.toLowerCase();
  if (m === 'iptables' || m === 'nftables' || m === 'skip') return m;
  throw new CrtoolsError('USAGE', `invalid argument for --network-lock: ${v} (iptables, nftables or skip)`, { exitCode: ExitCode.USAGE });
}
