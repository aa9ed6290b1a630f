/** Netlink sockets made again: bound to their portid and first 32 groups, the other groups joined, connected. */
import { AF, NETLINK_STATE, SOCK_TYPE } from '@crtools/images/facts';
import type { Obj, PlanContext, PlanKind } from '../../plan/kind.js';
import { refuse } from '../../plan/kind.js';
import { allSockoptCalls, i32, type SockoptCall, type SocketFilePlan } from '../../sockopts/plan.js';

const SOL_NETLINK = 270;
const NETLINK_ADD_MEMBERSHIP = 1;
/** the SOL_NETLINK options nl_sockopts may have on (bit N: option N), PKTINFO through GET_STRICT_CHK */
const NL_SOCKOPTS = 0b1_1101_0011_1000;

/** struct sockaddr_nl */
function sockaddrNl(portid: number, groups: number): Buffer {
  const a = Buffer.alloc(12);
  a.writeUInt16LE(AF.NETLINK, 0);
  a.writeUInt32LE(portid >>> 0, 4);
  a.writeUInt32LE(groups >>> 0, 8);
  return a;
}

export const netlinkPlan: PlanKind<SocketFilePlan> = {
  type: 'NETLINKSK',
  field: 'nlsk',
  plan(k: Obj, ctx: PlanContext): SocketFilePlan {
    const portid = Number(k.portid ?? 0);
    const groups = ((k.groups ?? []) as number[]).map(Number);
    const state = Number(k.state ?? 0);
    // (0: NETLINK_UNCONNECTED, what the kernel's own constant says)
    if (state !== NETLINK_STATE.UNCONNECTED && state !== NETLINK_STATE.CONNECTED && state !== 0) throw refuse(`${ctx.what}: netlink socket in state ${state} is not restored`);
    if (!portid && groups.some((g) => g !== 0)) throw refuse(`${ctx.what}: netlink socket in groups without a portid`);
    // groups past the first 32 are joined one by one once the socket is bound
    const joins: SockoptCall[] = [];
    groups.forEach((w, i) => {
      if (i === 0) return;
      for (let b = 0; b < 32; b++) {
        if (!((w >>> b) & 1)) continue;
        const v = Buffer.alloc(4);
        v.writeUInt32LE(i * 32 + b + 1, 0);
        joins.push({ level: SOL_NETLINK, name: NETLINK_ADD_MEMBERSHIP, value: v, late: true });
      }
    });
    const dstGroup = Number(k.dst_group ?? 0);
    if (dstGroup > 32) throw refuse(`${ctx.what}: netlink socket connected to group ${dstGroup} (past 32) is not restored`);
    const o = (k.opts ?? {}) as Obj;
    // crtools' nl_sockopts: the on/off SOL_NETLINK options, set before the socket is bound
    const nlSockopts = Number(k.nl_sockopts ?? 0);
    if (nlSockopts & ~NL_SOCKOPTS) throw refuse(`${ctx.what}: netlink socket with options 0x${(nlSockopts & ~NL_SOCKOPTS).toString(16)} restore does not know`);
    const on: SockoptCall[] = [];
    for (let n = 0; n < 32; n++) if ((nlSockopts >>> n) & 1) on.push({ level: SOL_NETLINK, name: n, value: i32(1) });
    return {
      kind: 'socket', flags: Number(k.flags), pos: 0n, type: SOCK_TYPE.RAW,
      socket: {
        family: AF.NETLINK, protocol: Number(k.protocol), sndbuf: Number(o.so_sndbuf ?? 0), rcvbuf: Number(o.so_rcvbuf ?? 0),
        address: portid ? sockaddrNl(portid, groups[0] ?? 0) : undefined,
        connect: state === NETLINK_STATE.CONNECTED ? sockaddrNl(Number(k.dst_portid ?? 0), dstGroup ? 2 ** (dstGroup - 1) : 0) : undefined,
        sockopts: [...allSockoptCalls(o), ...on, ...joins],
      },
    };
  },
  inheritKey: (k: Obj) => `socket:[${k.ino}]`,
};
