/**
 * Namespace files (nsfs: a descriptor on /proc/PID/ns/X, as `ip netns` or a container runtime
 * holds one; /proc shows it as `net:[4026531840]`). Kept as CRIU 4.2 keeps them: files.img NS
 * with ns_file_entry (id, ns_id: the namespace's id in the dump's numbering, ns_cflag: its
 * CLONE_NEW* flag, flags). The restore opens /proc/PID/ns/X again of a task that lives in that
 * namespace, so only a namespace some task of the tree lives in is carried (its own ones, made
 * again, or criu's, which the restored tree lives in again); any other is refused by name.
 */
import type { FdRecord } from '@crtools/procfs';
import { NS_CLONE_FLAG, NS_KINDS, type NsKind } from '@crtools/images/facts';
import { refuseFd, type DumpKind, type FdClaim } from '../../dump/kind.js';

/** The id the dump gives a namespace some task of the tree lives in (undefined: no task does). */
export type NsIdOf = (kind: NsKind, ino: bigint) => number | undefined;

/** The kind and inode of a namespace file's target (`net:[4026531840]`), undefined for any other. */
export function nsTarget(target: string): { kind: NsKind; ino: bigint } | undefined {
  const m = /^([a-z]+):\[(\d+)\]$/.exec(target);
  if (!m || !(NS_KINDS as readonly string[]).includes(m[1]!)) return undefined;
  return { kind: m[1] as NsKind, ino: BigInt(m[2]!) };
}

export class NsFiles implements DumpKind {
  /** nsId: the tree's namespaces (undefined: unknown, every namespace file refused) */
  constructor(private readonly nsId: () => NsIdOf | undefined) {}

  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    const ns = nsTarget(rec.target);
    if (!ns) return undefined;
    const id = this.nsId()?.(ns.kind, ns.ino);
    if (id === undefined) {
      throw refuseFd(pid, rec.fd, `a file of ${ns.kind} namespace ${ns.ino}, in which no task of the dumped tree lives, is not supported (the restore opens a namespace's file through a task living in it)`, rec.target);
    }
    return {
      type: 'NS',
      key: `ns:${ns.kind}:${ns.ino}:${flags}`,
      entry: (fid) => ({ type: 'NS', id: fid, nsf: { id: fid, ns_id: id, ns_cflag: NS_CLONE_FLAG[ns.kind], flags } }),
    };
  }
}
