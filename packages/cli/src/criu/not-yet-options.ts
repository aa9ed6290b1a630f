/**
 * criu.8 options crtools parses but does not carry out yet. As in CRIU, every option is known
 * to every command; one of these given (on the command line or in a configuration file) stops
 * the command before it touches anything: `criu: --ext-unix-sk is not supported yet
 * (crtools issue 15)`, exit 4. None is ever silently ignored.
 */
import { CrtoolsError, ExitCode } from '@crtools/common';

interface NotYet {
  type: 'boolean' | 'string';
  alias?: string;
  issue: number;
  /** a decision rather than a gap: the refusal says why instead of "not supported yet" */
  why?: string;
  /** the values crtools does carry out: undefined when `v` is one (the option is then no refusal), else the error */
  accept?: (v: string) => CrtoolsError | undefined;
}

const B = (issue: number, alias?: string): NotYet => ({ type: 'boolean', issue, ...(alias ? { alias } : {}) });
const S = (issue: number, alias?: string): NotYet => ({ type: 'string', issue, ...(alias ? { alias } : {}) });

export const NOT_YET_OPTIONS: Record<string, NotYet> = {
  // nothing lost silently (14)
  'evasive-devices': B(14), 'link-remap': B(14), 'ghost-fiemap': B(14),
  // --file-validation filesize is what every restore does (each regular file's recorded size
  // checked); buildid (ELF build-ids written at dump, compared at restore) is not done
  'file-validation': { type: 'string', issue: 14, accept: (v) => v === 'filesize' ? undefined
    : v === 'buildid' ? new CrtoolsError('UNSUPPORTED_OPTION', '--file-validation buildid is not supported yet: crtools validates files by their size only (--file-validation filesize; crtools issue 14)', { exitCode: ExitCode.UNSUPPORTED, context: { option: 'file-validation' } })
    : new CrtoolsError('USAGE', `invalid argument for --file-validation: ${v} (filesize, buildid)`, { exitCode: ExitCode.USAGE, context: { option: 'file-validation' } }) },
  // what real programs hold (15)
  'ext-unix-sk': B(15, 'x'), 'force-irmap': B(15), 'irmap-scan-path': S(15), 'allow-uprobes': B(15), 'exec-cmd': B(15),
  // pre-dump, page server, lazy pages (16)
  'page-server': B(16), address: S(16), port: S(16), 'auto-dedup': B(16), 'lazy-pages': B(16), stream: B(16), 'ps-socket': S(16),
  // CRIU's TLS (GnuTLS) on the page server's connections: decided against (a TLS stack to keep in
  // step with GnuTLS's handshake for one transport); tunnel the port instead
  ...Object.fromEntries(['tls', 'tls-cacert', 'tls-cacrl', 'tls-cert', 'tls-key', 'tls-no-cn-verify'].map((n) => [n, {
    type: n === 'tls' || n === 'tls-no-cn-verify' ? 'boolean' : 'string', issue: 16,
    why: `--${n}: crtools does not do TLS on page-server connections (CRIU's --tls, GnuTLS); run them through a tunnel (ssh -L, stunnel, WireGuard) instead`,
  } satisfies NotYet])),
  // containers (17)
  external: S(17), 'freeze-cgroup': S(17), 'manage-cgroups': B(17), 'cgroup-root': S(17),
  'cgroup-yard': S(17), unprivileged: B(17), root: S(17, 'r'),
  'veth-pair': S(17), 'lsm-profile': S(17), 'lsm-mount-context': S(17), 'weak-sysctls': B(17),
  'empty-ns': S(17), 'ext-mount-map': S(17, 'M'), 'orphan-pts-master': B(17), 'skip-mnt': S(17), 'mntns-compat-mode': B(17),
  ms: B(17),
  // CRIU's --deprecated turns on features it has deprecated (the show and exec commands among
  // them); crtools has none of them
  deprecated: { type: 'boolean', issue: 0, why: "--deprecated: crtools has none of CRIU's deprecated features" },
};

/** The not-yet options as citty argument definitions, to add to a command's own (which win). */
export function notYetArgs(own: Record<string, unknown>): Record<string, { type: 'boolean' | 'string'; alias?: string; description: string }> {
  const out: Record<string, { type: 'boolean' | 'string'; alias?: string; description: string }> = {};
  for (const [name, o] of Object.entries(NOT_YET_OPTIONS)) {
    if (name in own) continue;
    out[name] = { type: o.type, ...(o.alias ? { alias: o.alias } : {}), description: o.why ? `not supported: ${o.why.slice(o.why.indexOf(': ') + 2)}` : `not supported yet (issue ${o.issue})` };
  }
  return out;
}

/** Throws UNSUPPORTED (exit 4) naming the first not-yet option the parsed arguments hold. */
export function refuseNotYet(args: Record<string, unknown>, own: Record<string, unknown>): void {
  for (const [name, o] of Object.entries(NOT_YET_OPTIONS)) {
    if (name in own) continue;
    // (`in` first: for a name it does not hold, citty's args proxy tries its camel and kebab
    // case, regular expressions ~45 times a command; an option given in any case is held under
    // its own name too, as an alias)
    const v = name in args ? args[name] : undefined;
    if (v === undefined || v === false) continue;
    if (o.accept) {
      const e = o.accept(String(v));
      if (e === undefined) continue;
      throw e;
    }
    throw new CrtoolsError('UNSUPPORTED_OPTION', o.why ?? `--${name} is not supported yet (crtools issue ${o.issue})`, { exitCode: ExitCode.UNSUPPORTED, context: { option: name } });
  }
}
