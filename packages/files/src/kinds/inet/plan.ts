/** IPv4/IPv6 sockets made again: listening TCP, or TCP/UDP not connected (bound or not). */
import { AF, IPPROTO, SOCK_TYPE, TCP_STATE } from '@crtools/images/facts';
import { refuse, type Obj, type PlanContext, type PlanKind } from '../../plan/kind.js';
import { sockoptCalls, type SockoptCall } from '../../sockopts/plan.js';
import type { FileBase } from '../reg/plan.js';

/**
 * inet: an IPv4/IPv6 TCP or UDP socket that is not connected: bound to `address` (a raw
 * sockaddr; none = unbound) and listening with `backlog` when `listen`.
 */
export interface InetFilePlan extends FileBase {
  kind: 'inet';
  type: number;
  inet: {
    family: number; protocol: number; address?: Buffer; listen: boolean; backlog: number;
    reuseaddr: boolean; reuseport: boolean; v6only: boolean; sndbuf: number; rcvbuf: number; sockopts: SockoptCall[];
  };
}

export const inetPlan: PlanKind<InetFilePlan> = {
  type: 'INETSK',
  field: 'isk',
  plan(k: Obj, ctx: PlanContext): InetFilePlan {
    const family = Number(k.family);
    const type = Number(k.type);
    const proto = Number(k.proto);
    const state = Number(k.state);
    const tcp = type === SOCK_TYPE.STREAM && proto === IPPROTO.TCP;
    const udp = type === SOCK_TYPE.DGRAM && proto === IPPROTO.UDP;
    const listen = state === TCP_STATE.LISTEN;
    if ((family !== AF.INET && family !== AF.INET6) || !(tcp || udp) || !(listen || state === TCP_STATE.CLOSE) || (listen && !tcp)) {
      throw refuse(`${ctx.what}: ${tcp ? 'TCP' : udp ? 'UDP' : `inet (type ${type}, proto ${proto})`} socket in state ${state} is not restored yet (listening and unconnected ones are)`);
    }
    const port = Number(k.src_port);
    const words = ((k.src_addr ?? []) as number[]).map(Number);
    let address: Buffer | undefined;
    if (port !== 0) {
      address = Buffer.alloc(family === AF.INET ? 16 : 28);
      address.writeUInt16LE(family, 0);
      address.writeUInt16BE(port, 2);
      if (family === AF.INET) address.writeUInt32LE((words[0] ?? 0) >>> 0, 4);
      else for (let i = 0; i < 4; i++) address.writeUInt32LE((words[i] ?? 0) >>> 0, 8 + 4 * i);
    }
    const o = (k.opts ?? {}) as Obj;
    return {
      kind: 'inet', flags: Number(k.flags), pos: 0n, type,
      inet: {
        family, protocol: proto, address, listen, backlog: Number(k.backlog ?? 0),
        reuseaddr: !!o.reuseaddr, reuseport: !!o.so_reuseport, v6only: !!k.v6only,
        sndbuf: Number(o.so_sndbuf ?? 0), rcvbuf: Number(o.so_rcvbuf ?? 0), sockopts: sockoptCalls(o, tcp),
      },
    };
  },
  inheritKey: (k: Obj) => `socket:[${k.ino}]`,
};
