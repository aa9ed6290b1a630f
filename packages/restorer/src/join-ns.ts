/**
 * --join-ns NS:{PID|NS_FILE}[,EXTRA] (criu.8; RPC join_ns): the tree is restored inside namespaces
 * that exist already. The network, UTS and IPC ones are carried: the root is born in them (the
 * launching thread joins them across its clone3, as it joins a network namespace made for the
 * tree), instead of in new ones. What the checkpoint holds of a joined UTS or IPC namespace
 * (hostname, SysV objects) is put into it, as CRIU does; a network namespace whose devices and
 * addresses the checkpoint holds is refused (they would be made again in a namespace that is not
 * the tree's). Joining the time, user or mount namespace is refused by name (not yet); pid is
 * refused as CRIU refuses it (--external and --inherit-fd give the caller's pid namespace).
 */
import { closeSync, openSync, readlinkSync } from 'node:fs';
import { CrtoolsError, ExitCode, type JoinNamespace } from '@crtools/common';
import { NS_TYPE } from '@crtools/sys';
import type { MadeNetNamespace } from './netns.js';

/** A namespace of another process the root is born in: its descriptor, its setns(2) type and its /proc/PID/ns name. */
export interface JoinedFd {
  fd: number;
  type: number;
  name: string;
}

export interface JoinedNamespaces {
  /** CLONE_NEW* of the kinds joined (the root is not born in new ones of these) */
  flags: number;
  /** the network namespace joined, as the tree's */
  net?: MadeNetNamespace;
  /** the UTS and IPC namespaces joined, for the launching thread */
  fds: JoinedFd[];
  close(): void;
}

const CARRIED = ['net', 'uts', 'ipc'] as const;
const KNOWN = ['net', 'uts', 'ipc', 'time', 'user', 'mnt', 'pid'];

function usage(msg: string, option: string): CrtoolsError {
  return new CrtoolsError('USAGE', msg, { exitCode: ExitCode.USAGE, context: { option: 'join_ns', value: option } });
}

/** Checks each joined namespace and opens it; undefined when none is asked. */
export function joinNamespaces(list: readonly JoinNamespace[], emptyNs: number, log: { info(l: string): void }): JoinedNamespaces | undefined {
  if (!list.length) return undefined;
  const opened: JoinedFd[] = [];
  const close = () => {
    for (const j of opened.splice(0)) {
      try {
        closeSync(j.fd);
      } catch {
        /* closed */
      }
    }
  };
  try {
    let flags = 0;
    for (const j of list) {
      const what = `--join-ns ${j.ns}:${j.file}`;
      if (!KNOWN.includes(j.ns)) throw usage(`${what}: no such namespace kind (${KNOWN.join(', ')})`, j.ns);
      if (j.ns === 'pid') throw usage(`${what}: joining a pid namespace is not supported (as CRIU: --external and --inherit-fd give the caller's)`, j.ns);
      if (!(CARRIED as readonly string[]).includes(j.ns)) {
        throw new CrtoolsError('UNSUPPORTED_OPTION', `restore: ${what}: joining a ${j.ns} namespace is not supported by crtools yet (carried: ${CARRIED.join(', ')})`, {
          exitCode: ExitCode.UNSUPPORTED, context: { option: 'join_ns', value: j.ns },
        });
      }
      const type = NS_TYPE[j.ns as (typeof CARRIED)[number]];
      if (flags & type) throw usage(`${what}: a ${j.ns} namespace is joined twice`, j.ns);
      if (j.ns === 'net' && emptyNs & type) throw usage(`${what}: conflicting options --join-ns net and --empty-ns net`, j.ns);
      const file = /^\d+$/.test(j.file) ? `/proc/${j.file}/ns/${j.ns}` : j.file;
      let fd: number;
      try {
        fd = openSync(file, 'r');
      } catch (e) {
        throw usage(`${what}: cannot open ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, j.ns);
      }
      opened.push({ fd, type, name: j.ns });
      const link = readlinkSync(`/proc/self/fd/${fd}`);
      if (!link.startsWith(`${j.ns}:[`)) throw usage(`${what}: ${file} is not a ${j.ns} namespace (${link})`, j.ns);
      log.info(`join-ns: the tree is restored in ${link} (${file})`);
      flags |= type;
    }
    const net = opened.find((j) => j.name === 'net');
    return {
      flags,
      ...(net ? { net: { fd: net.fd, path: `/proc/${process.pid}/fd/${net.fd}`, close: () => undefined } } : {}),
      fds: opened.filter((j) => j.name !== 'net'),
      close,
    };
  } catch (e) {
    close();
    throw e;
  }
}
