/**
 * Terminals: pty pairs made again (ours or CRIU 4.2's images). A master is opened through
 * /dev/ptmx until the kernel hands out the recorded index (as CRIU does: the lowest free index
 * comes first), unlocked, its termios, locked termios, window size and packet mode set; each
 * slave opened at /dev/pts/N (owner as recorded); exclusive mode and the lock once every end is
 * open. The session whose controlling terminal a pair was gets it back from its leader, with its
 * foreground group (`ctty`, on one end of the pair). /dev/tty opened by a task (`devTty`) is
 * opened again by that task, once its session has its terminal. Slaves that were hung up (a
 * tty_info without termios: their master was closed) are opened through a master of their own,
 * closed once they are open (`hung`), as CRIU does. Refused by name: terminals of a type not
 * named here, a slave whose master is not in the checkpoint, a hung-up master, a hung-up slave whose master is
 * in the checkpoint. Bytes queued in a pair (tty-data.img, read from each end by the dump) go
 * back to wait at the end that had them: a non-canonical slave's unchanged, written at the other
 * end with the slave's termios raw for the while (CRIU 4.2 writes them through the line
 * discipline as it is set, which changes them unless it is raw); a canonical slave's typed again
 * with nothing but its line discipline's own processing (see typed.ts), so that its lines and the
 * line being typed are as they were. Refused: a pair with bytes queued whose slave is open
 * nowhere, whose master is in packet mode (bytes for the master; any for a canonical slave), or
 * whose canonical slave's bytes hold an editing character not marked by LNEXT. /dev/console, a
 * virtual console and a serial line (CONSOLE, VT, SERIAL) are opened again by path (`simple`: the
 * node there must be the same device), their owner, termios, locked termios and window size set,
 * as CRIU 4.2 does. A
 * terminal handed over with --inherit-fd fd[N]:tty[RDEV:DEV] (an external one, EXT_TTY, or any
 * the key names, as CRIU's restore takes it) gets the same settings (`inherited`), and is the
 * controlling terminal of the session recorded with it again.
 */
import { statSync } from 'node:fs';
import { CTTY_INFO_ID, decodeDev, ptyInfoId, termiosBytes, TTY_TYPE } from '@crtools/images/facts';
import { isCanonical, unmarkedEditing } from './typed.js';
import { simpleTtyWhat, type SimpleTtyType } from './simple.js';
import { badImage, readImage, refuse, type Obj, type PlanContext, type PlanKind } from '../../plan/kind.js';
import type { FileBase } from '../reg/plan.js';

export interface TtyFilePlan extends FileBase {
  kind: 'tty';
  /** /dev/tty: opened again by its holder (its session's terminal by then), not by the root */
  devTty?: boolean;
  /** a pty master (/dev/ptmx) or slave (/dev/pts/N) */
  master: boolean;
  index: number;
  /** where it is opened: /dev/ptmx, /dev/pts/N */
  path: string;
  /** the kernel's struct termios (36 bytes), set through a master */
  termios: Buffer;
  termiosLocked: Buffer;
  /** rows, cols, xpixel, ypixel */
  winsize: [number, number, number, number];
  packetMode: boolean;
  /** the pair is locked (TIOCSPTLCK): set once its slaves are open */
  locked: boolean;
  /** TIOCEXCL on this end */
  exclusive: boolean;
  /** the slave's owner */
  uid: number;
  gid: number;
  /** the pair is the controlling terminal of session `sid` (its leader makes it so), foreground group `pgrp` (0: none) */
  ctty?: { sid: number; pgrp: number };
  /** tty-info id (not for the restorer: pairs ends in finish()) */
  infoId: number;
  /** a slave that was hung up (its tty_info has no termios): opened through a master of its own, closed then */
  hung?: boolean;
  /** /dev/console, a virtual console or a serial line: opened by path, its settings and owner set (no pair) */
  simple?: boolean;
  /**
   * a master: the bytes the pair held for each end to read (tty-data.img), put back unchanged
   * once both ends are open (the slave's termios raw for the while)
   */
  queued?: { toMaster: Buffer; toSlave: Buffer };
}

const n = (v: unknown) => Number(v ?? 0);

/** a terminal's owner not changed: fchown's -1 (as uid_t) */
const KEEP_OWNER = 0xffffffff;

export class TtyPlans implements PlanKind<TtyFilePlan> {
  readonly type = 'TTY';
  readonly field = 'tty';
  private infos = new Map<number, Obj>();
  /** tty-data.img: the bytes waiting at each pty end, by tty-info id */
  private data = new Map<number, Buffer>();
  private files: ReadonlyMap<number, Obj> = new Map();
  /** --shell-job: the one pty slave whose master is not in the checkpoint is the restore's terminal */
  shellJob = false;

  /** madeLater: is a path below mounts the restore makes (not there to be looked at before)? */
  constructor(private readonly madeLater: (path: string) => boolean = () => false) {}

  async load(dir: string, files: ReadonlyMap<number, Obj>): Promise<void> {
    this.files = files;
    this.infos = new Map(((await readImage(dir, 'tty-info.img', 'TTY_INFO', true)) ?? []).map((e) => [n(e.id), e]));
    this.data = new Map(((await readImage(dir, 'tty-data.img', 'TTY_DATA', true)) ?? []).filter((e) => (e.data as Buffer | undefined)?.length).map((e) => [n(e.tty_id), e.data as Buffer]));
  }

  plan(fe: Obj, ctx: PlanContext): TtyFilePlan {
    const infoId = n(fe.tty_info_id);
    const info = this.infos.get(infoId);
    if (!info) throw badImage(`${ctx.what}: terminal ${fe.id} names tty-info ${infoId}, which tty-info.img does not have`, { image: 'tty-info.img' });
    const type = typeof info.type === 'string' ? info.type : Object.keys(TTY_TYPE).find((k) => TTY_TYPE[k as keyof typeof TTY_TYPE] === n(info.type)) ?? String(info.type);
    if (type === 'CTTY' && infoId === CTTY_INFO_ID) {
      const reg = fe.regf_id !== undefined ? (this.files.get(n(fe.regf_id))?.reg as Obj | undefined) : undefined;
      return {
        kind: 'tty', devTty: true, flags: n(fe.flags), pos: 0n, master: false, index: -1, path: reg ? String(reg.name) : '/dev/tty', infoId,
        termios: Buffer.alloc(36), termiosLocked: Buffer.alloc(36), winsize: [0, 0, 0, 0], packetMode: false, locked: false, exclusive: false, uid: 0, gid: 0,
      };
    }
    if (type === 'CONSOLE' || type === 'VT' || type === 'SERIAL') return this.simple(fe, info, type, ctx);
    if (type === 'EXT_TTY') throw refuse(`${ctx.what}: an external terminal (dumped with --external tty[...]) is restored only from a descriptor handed over: --inherit-fd 'fd[N]:${this.inheritKey(fe)}'`);
    if (type !== 'PTY') throw refuse(`${ctx.what}: a ${type} terminal is not restored (pseudo-terminals, /dev/tty, consoles, virtual consoles, serial lines and external ones are)`);
    if (!info.pty) throw badImage(`${ctx.what}: pty ${infoId} has no index`, { image: 'tty-info.img' });
    const index = n(info.pty.index);
    const master = (infoId & 1) === 1;
    if (infoId !== ptyInfoId(index, master)) throw badImage(`${ctx.what}: tty-info ${infoId} does not match pty index ${index}`, { image: 'tty-info.img' });
    const reg = fe.regf_id !== undefined ? (this.files.get(n(fe.regf_id))?.reg as Obj | undefined) : undefined;
    const path = reg ? String(reg.name) : master ? '/dev/ptmx' : `/dev/pts/${index}`;
    if (!info.termios || !info.winsize) {
      // hung up (the dump could read nothing but the device): a slave whose master was closed
      if (master) throw refuse(`${ctx.what}: a hung-up pty master (/dev/pts/${index}) is not restored`);
      return {
        kind: 'tty', hung: true, flags: n(fe.flags), pos: 0n, master, index, path, infoId,
        termios: Buffer.alloc(36), termiosLocked: Buffer.alloc(36), winsize: [0, 0, 0, 0], packetMode: false, locked: false, exclusive: false,
        uid: n(info.uid), gid: n(info.gid),
      };
    }
    // what each end had to read (read from that end by the dump): kept on the master
    const toMaster = this.data.get(ptyInfoId(index, true));
    const toSlave = this.data.get(ptyInfoId(index, false));
    // (read in packet mode, a master's bytes begin with a status byte CRIU's dump keeps with them)
    if (master && toMaster && info.packet_mode) throw refuse(`${ctx.what}: /dev/pts/${index} has bytes queued for its master in packet mode (tty-data.img), which crtools does not restore`);
    if (master && toSlave) this.checkTyped(ctx.what, index, toSlave, !!info.packet_mode);
    const w = info.winsize as Obj;
    return {
      kind: 'tty', flags: n(fe.flags), pos: 0n, master, index, path, infoId,
      termios: termiosBytes(info.termios), termiosLocked: info.termios_locked ? termiosBytes(info.termios_locked) : Buffer.alloc(36),
      winsize: [n(w.ws_row), n(w.ws_col), n(w.ws_xpixel), n(w.ws_ypixel)],
      packetMode: master && !!info.packet_mode, locked: master && !!info.locked, exclusive: !!info.exclusive,
      uid: n(info.uid), gid: n(info.gid),
      ...(master && (toMaster || toSlave) ? { queued: { toMaster: toMaster ?? Buffer.alloc(0), toSlave: toSlave ?? Buffer.alloc(0) } } : {}),
    };
  }

  /**
   * /dev/console, a virtual console or a serial line: by the path it was opened at, which must be
   * that device still; the session it was the controlling terminal of takes it again through this file (CRIU
   * keeps one tty_info for it: every file of it carries the session, whose leader takes it once).
   */
  private simple(fe: Obj, info: Obj, type: SimpleTtyType, ctx: PlanContext): TtyFilePlan {
    const what = simpleTtyWhat(type);
    const reg = fe.regf_id !== undefined ? (this.files.get(n(fe.regf_id))?.reg as Obj | undefined) : undefined;
    if (!reg) throw badImage(`${ctx.what}: ${what} (terminal ${fe.id}) has no path (regf_id)`, { image: 'files.img' });
    if (!info.termios || !info.winsize) throw refuse(`${ctx.what}: ${what} hung up (no termios) is not restored`);
    const path = String(reg.name);
    const rdev = n(info.rdev);
    // (a path below mounts the restore makes, --root's, is looked at when it is opened: the
    // kernel's device there is the one named or the open fails the same way)
    if (!this.madeLater(path)) {
      let st;
      try {
        st = statSync(path);
      } catch (e) {
        throw refuse(`${ctx.what}: ${what} was opened at ${path}, which is not there now (${(e as NodeJS.ErrnoException).code})`);
      }
      const want = decodeDev(rdev);
      const have = decodeDev(st.rdev);
      if (!st.isCharacterDevice() || have.major !== want.major || have.minor !== want.minor) throw refuse(`${ctx.what}: ${what} was opened at ${path}, device ${want.major}:${want.minor}, which is ${st.isCharacterDevice() ? `device ${have.major}:${have.minor}` : 'no character device'} now`);
    }
    const w = info.winsize as Obj;
    return {
      kind: 'tty', simple: true, flags: n(fe.flags), pos: 0n, master: false, index: -1, path, infoId: n(fe.tty_info_id),
      termios: termiosBytes(info.termios), termiosLocked: info.termios_locked ? termiosBytes(info.termios_locked) : Buffer.alloc(36),
      winsize: [n(w.ws_row), n(w.ws_col), n(w.ws_xpixel), n(w.ws_ypixel)],
      packetMode: false, locked: false, exclusive: !!info.exclusive, uid: n(info.uid), gid: n(info.gid),
      ...(n(info.sid) ? { ctty: { sid: n(info.sid), pgrp: n(info.pgrp) } } : {}),
    };
  }

  /**
   * A terminal handed over with --inherit-fd: the settings its tty_info recorded (none for a
   * hung-up one), set on it as CRIU 4.2 sets them, and the session it was the terminal of.
   */
  inherited(fe: Obj): Pick<TtyFilePlan, 'termios' | 'termiosLocked' | 'winsize' | 'uid' | 'gid' | 'ctty'> | undefined {
    const info = this.infos.get(n(fe.tty_info_id));
    if (!info?.termios || !info.winsize) return undefined;
    const w = info.winsize as Obj;
    return {
      termios: termiosBytes(info.termios), termiosLocked: info.termios_locked ? termiosBytes(info.termios_locked) : Buffer.alloc(36),
      winsize: [n(w.ws_row), n(w.ws_col), n(w.ws_xpixel), n(w.ws_ypixel)], uid: n(info.uid), gid: n(info.gid),
      ...(n(info.sid) ? { ctty: { sid: n(info.sid), pgrp: n(info.pgrp) } } : {}),
    };
  }

  /**
   * Bytes for a canonical slave (its termios: the slave's tty_info's) are typed again: each
   * editing character among them must be marked by LNEXT (ours always are; CRIU 4.2 writes the
   * lines as read), and the echo that tells they are through must not meet packet mode.
   */
  private checkTyped(what: string, index: number, toSlave: Buffer, packet: boolean): void {
    const si = this.infos.get(ptyInfoId(index, false));
    if (!si?.termios) return;
    const termios = termiosBytes(si.termios);
    if (!isCanonical(termios)) return;
    if (packet) throw refuse(`${what}: /dev/pts/${index} has bytes queued for its slave in canonical mode and its master in packet mode (tty-data.img), which crtools does not restore`);
    const at = unmarkedEditing(termios, toSlave);
    if (at >= 0) throw refuse(`${what}: the bytes queued for /dev/pts/${index}'s slave in canonical mode (tty-data.img) hold an editing character (0x${toSlave[at]!.toString(16)} at ${at}) that typing them again would act on: not restored`);
  }

  /** CRIU's name of a terminal for --inherit-fd: tty[rdev:dev] (hex, its tty_info's) */
  inheritKey(fe: Obj): string | undefined {
    const info = this.infos.get(n(fe.tty_info_id));
    return info ? `tty[${n(info.rdev).toString(16)}:${n(info.dev).toString(16)}]` : undefined;
  }

  /** Pairs: each slave has its master; the session of a pair goes on one end (a slave, else the master). */
  finish(files: readonly unknown[]): void {
    const ttys = (files as { kind: string }[]).filter((f): f is TtyFilePlan => f.kind === 'tty' && !(f as TtyFilePlan).devTty && !(f as TtyFilePlan).simple);
    const byIndex = new Map<number, TtyFilePlan[]>();
    for (const t of ttys) byIndex.set(t.index, [...(byIndex.get(t.index) ?? []), t]);
    let outside: number | undefined;
    for (const [index, ends] of byIndex) {
      const master = ends.find((e) => e.master);
      // hung-up slaves: a master of their own at restore (one in the checkpoint would be a second)
      if (ends.some((e) => e.hung)) {
        if (master) throw refuse(`/dev/pts/${index}: a hung-up slave whose master is in the checkpoint is not restored`);
        continue;
      }
      if (!master) {
        // a terminal outside the tree: with --shell-job, the restore's own, as in CRIU (which of
        // its terminals, and the descriptor, the restorer decides: `shellTerminal`); its termios,
        // locked termios and window size set on it, its owner left as it is (as CRIU 4.2 does);
        // the session it was the terminal of, for a session led in the tree
        if (!this.shellJob) throw refuse(`/dev/pts/${index}: its master is not in the checkpoint (a terminal outside the tree: restore with --shell-job, from a terminal)`);
        if (outside !== undefined && outside !== index) throw refuse(`/dev/pts/${index} and /dev/pts/${outside}: two terminals outside the tree (--shell-job gives one, the restore's terminal)`);
        outside = index;
        const si = this.infos.get(ptyInfoId(index, false));
        const slave = ends[0]!;
        const tty = {
          termios: slave.termios, termiosLocked: slave.termiosLocked, winsize: slave.winsize, uid: KEEP_OWNER, gid: KEEP_OWNER,
          ...(n(si?.sid) ? { ctty: { sid: n(si?.sid), pgrp: n(si?.pgrp) } } : {}),
        };
        for (const e of ends) {
          const at = (files as unknown[]).indexOf(e);
          (files as unknown[])[at] = { kind: 'inherit', flags: e.flags, pos: 0n, inheritFd: 0, shellTerminal: index, tty, ...(e.fown ? { fown: e.fown } : {}) };
        }
        continue;
      }
      if (ends.filter((e) => e.master).length > 1) throw badImage(`/dev/pts/${index}: two masters`, { image: 'tty-info.img' });
      // bytes queued are put back through both ends
      if (master.queued && !ends.some((e) => !e.master)) throw refuse(`/dev/pts/${index}: bytes queued in the terminal (tty-data.img) and its slave open nowhere in the tree: not restored`);
      const mi = this.infos.get(ptyInfoId(index, true))!;
      const si = this.infos.get(ptyInfoId(index, false));
      const sid = n(mi.sid) || n(si?.sid);
      const pgrp = n(mi.sid) ? n(mi.pgrp) : n(si?.pgrp);
      if (!sid) continue;
      const holder = ends.find((e) => !e.master) ?? master;
      if (holder === master && master.locked) throw refuse(`/dev/pts/${index}: a locked pty whose slave is open nowhere in the tree cannot be made session ${sid}'s controlling terminal`);
      holder.ctty = { sid, pgrp };
    }
  }
}
