/**
 * /dev/net/tun files as CRIU 4.2 writes them: a REG entry (the path and open flags) and a TUNF
 * entry of the same id (tunfile_entry: the device the file is attached to, none for a file
 * never attached, whether its queue of a multi-queue device is detached, and the network
 * namespace it was opened in). What the file says of its device
 * (flags, vnet header size, send buffer) is kept for the device's netdev entry (tunLinks). Refused
 * by name: a file of a network namespace none of the tree's tasks lives in, or on a tap holding a
 * socket filter (its program lives in the task's memory).
 */
import { statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import type { FdRecord } from '@crtools/procfs';
import { IFF_DETACH_QUEUE, taskTunFile, type TunFileInfo } from '@crtools/sys';
import { refuseFd, type DumpKind, type Entry, type FdClaim, type NestedNets } from '../../dump/kind.js';
import type { NsIdOf } from '../nsfs/dump.js';

/** the misc device /dev/net/tun is (10:200) */
const TUN_RDEV = (10 << 8) | 200;

/** What the tree's tun files said of a device: by the inode of its network namespace, then its name. */
export type TunLinks = ReadonlyMap<string, TunFileInfo>;

/** the key of a device in TunLinks */
export const tunLinkKey = (netns: bigint | number, name: string): string => `${netns}:${name}`;

export class TunFiles implements DumpKind {
  private readonly links = new Map<string, TunFileInfo>();

  /** regEntry: a REG entry of that id for the path and flags, put in files.img before the TUNF one */
  constructor(private readonly regEntry: (id: number, path: string, flags: number, st: Stats) => void, private readonly nets?: NestedNets, private readonly nsId?: () => NsIdOf | undefined) {}

  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    if (!rec.target.startsWith('/dev/')) return undefined;
    const st = statSync(`/proc/${pid}/fd/${rec.fd}`);
    if (!st.isCharacterDevice() || Number(st.rdev) !== TUN_RDEV) return undefined;
    return {
      type: 'TUNF',
      key: `tun:${st.dev}:${st.ino}:${flags}`,
      entry: (id) => {
        const t = taskTunFile(pid, rec.fd);
        const refuse = (why: string) => refuseFd(pid, rec.fd, why, rec.target);
        const ns = BigInt(t.netns);
        // (as CRIU 4.2: tun devices go with the tree's own network namespace, the root's)
        if (this.nets?.root === undefined || this.nets.root === statSync('/proc/self/ns/net', { bigint: true }).ino) throw refuse('a tun file of a tree without a network namespace of its own, which neither crtools nor CRIU 4.2 carries');
        if (ns !== this.nets.root && !this.nets.of(ns)) throw refuse('a tun file opened in a network namespace no task of the tree lives in, which crtools does not carry (crtools issue 17)');
        if (t.name !== null) {
          if (t.filter) throw refuse(`a file on tap device ${t.name} holding a socket filter (TUNATTACHFILTER), which neither crtools nor CRIU 4.2 carries`);
          this.links.set(tunLinkKey(t.netns, t.name), t);
        }
        this.regEntry(id, rec.target, flags, st);
        const nsId = this.nsId?.()?.('net', ns);
        // (a queue of a multi-queue device its task detached: detached again at restore)
        const detached = t.name !== null && (t.flags! & IFF_DETACH_QUEUE) !== 0;
        return { type: 'TUNF', id, tunf: { id, ...(t.name !== null ? { netdev: t.name } : {}), ...(detached ? { detached: true } : {}), ...(nsId !== undefined ? { ns_id: nsId } : {}) } };
      },
    };
  }

  /** What the tree's files said of their devices. */
  tunLinks(): TunLinks {
    return this.links;
  }
}
