/**
 * The tree's /dev/net/tun files, made by the restorer once the network namespace and its tun
 * devices exist (makeNetNamespace): each opened inside the namespace, attached to its device with
 * the device's flags (a detached queue of a multi-queue device detached again) and handed to its tasks as a descriptor they take as they are (an inherited
 * one); a device that was not persistent loses the persistence it was made with once a file
 * holds it, as CRIU 4.2 does. Our copies are closed once the tasks hold theirs.
 */
import { closeSync } from 'node:fs';
import { CrtoolsError, ExitCode, type Logger } from '@crtools/common';
import { detachTunQueue, IFF_PERSIST, setTunDevice, tunAttach } from '@crtools/sys';
import type { FilePlan, TunFilePlan } from '@crtools/files/plan';
import type { RestorePlan } from './plan.js';
import { treeNets } from './netns.js';

export class TunFiles {
  private readonly fds: number[] = [];

  constructor(private readonly log: Logger) {}

  /**
   * The plan with every tun file made, as an inherited descriptor; `nets`: the paths of the tree's
   * network namespaces, made (/proc/PID/fd/N), by id.
   */
  prepare(plan: RestorePlan, nets: ReadonlyMap<number, string>): RestorePlan {
    const tun = plan.files.map((f, i) => [f, i] as const).filter((x): x is [TunFilePlan, number] => x[0].kind === 'tun');
    if (!tun.length) return plan;
    const plans = treeNets(plan);
    const rootId = plan.namespaces?.net?.id;
    const files: FilePlan[] = [...plan.files];
    try {
      for (const [f, i] of tun) {
        const id = f.netnsId ?? rootId;
        const path = id === undefined ? undefined : nets.get(id);
        const ns = id === undefined ? undefined : plans.get(id);
        if (path === undefined || !ns) throw new CrtoolsError('RESTORE_UNSUPPORTED', `tun file ${i}: opened in ${id === undefined ? 'a network namespace' : `network namespace ${id}`} the restore does not make (tun devices and files are restored only with the tree's own network namespaces, made before its tasks)`, { exitCode: ExitCode.UNSUPPORTED });
        let fd: number;
        if (f.netdev === undefined) {
          // (a file never attached: /dev/net/tun opened in the namespace, as it was)
          fd = tunAttach(path, '', 0, f.flags);
          this.fds.push(fd);
        } else {
          const link = ns.links.find((l) => l.kind === 'tun' && l.name === f.netdev);
          if (!link?.tun) throw new CrtoolsError('RESTORE_BAD_IMAGE', `tun file ${i}: attached to ${f.netdev}, which is no tun device of network namespace ${id}`, { exitCode: ExitCode.BAD_INPUT });
          fd = tunAttach(path, link.name, link.tun.flags & 0xffff & ~IFF_PERSIST, f.flags);
          this.fds.push(fd);
          // (a file attached takes no send buffer from its device: given it again, the device's and the file's)
          setTunDevice(fd, { sndbuf: link.tun.sndbuf, ...(link.tun.flags & IFF_PERSIST ? {} : { persist: false }) });
          if (f.detached) detachTunQueue(fd);
          this.log.info(`tun: a file attached to ${link.name}${f.detached ? ', its queue detached' : ''}${link.tun.flags & IFF_PERSIST ? '' : ' (persistent no more)'}`);
        }
        files[i] = { kind: 'inherit', flags: f.flags, pos: 0n, inheritFd: fd, ...(f.fown ? { fown: f.fown } : {}) };
      }
    } catch (e) {
      this.release();
      throw e;
    }
    return { ...plan, files };
  }

  /** Our copies closed (the tasks hold theirs, or the restore failed). */
  release(): void {
    for (const fd of this.fds.splice(0)) closeSync(fd);
  }
}
