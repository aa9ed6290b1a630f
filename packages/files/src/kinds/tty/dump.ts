/**
 * Terminals: pty masters (/dev/ptmx) and slaves (/dev/pts/N) as CRIU 4.2 writes them — a files.img
 * TTY entry (tty_file_entry: the tty_info id, flags, regf_id naming a REG entry that keeps the
 * path) per open file, and one tty_info_entry per terminal end in tty-info.img (termios, locked
 * termios, window size, packet mode, pty lock, exclusive mode, the index, the session whose
 * controlling terminal it is and its foreground group: in a tree with a pid namespace of its own,
 * by the pids its tasks see there, as CRIU 4.2 writes them). A slave hung up (its master closed:
 * every ioctl answers EIO) is a tty_info with no termios, window size, session or modes, as CRIU
 * 4.2 writes it. What would not come back the same is refused by name: a slave whose master is
 * outside the tree, a hung-up master, a slave hung up while its master is in the tree or open
 * again beside its hung-up descriptors, bytes waiting in a terminal that cannot be read back as
 * they are (see `queued`; the others go to tty-data.img), a controlling terminal the tree does
 * not hold. /dev/tty opened by a task is a CTTY entry (tty_info id 2012, as CRIU
 * numbers it): it must still be its holder's controlling terminal; bytes waiting there are its
 * pty pair's. /dev/console, a virtual console (/dev/ttyN, 4:1..63) and a serial line (/dev/ttyS*,
 * 4:64..; USB and low-density ones, 188:*, 204:*) are CONSOLE, VT and SERIAL entries (tty_info
 * ids 2004, 2008 and 2020, a REG entry keeping the path, their termios, window size and owner,
 * the session it is the controlling terminal of), as CRIU 4.2 writes them (a UART port is
 * crtools' own: see SERIAL_INFO_ID); CRIU's images keep one tty_info for every virtual console
 * and one for every serial line, so two different ones of a kind in a tree are refused, and so
 * are one with bytes waiting and an unlinked one. A terminal named by --external tty[RDEV:DEV] (a
 * container's console, whose other end stays outside) is an EXT_TTY entry with no path (tty_info
 * ids from 2026, one per open file, as CRIU 4.2 numbers them): its termios, window size and the
 * session it is the controlling terminal of; the restore takes it from --inherit-fd.
 */
import { statSync, type Stats } from 'node:fs';
import { CrtoolsError, ExitCode, type Refusals } from '@crtools/common';
import { CTTY_INFO_ID, EXT_TTY_MAX, extTtyInfoId, ptyInfoId, termiosEntry, ttyDevice, decodeDev } from '@crtools/images/facts';
import type { FdRecord } from '@crtools/procfs';
import { probeTty, type TtyProbe } from '@crtools/sys';
import { fown, refuseFd, type DumpImage, type DumpKind, type Entry, type FdClaim } from '../../dump/kind.js';
import { ownerInside, type DumpedIds } from '../../dump/fown.js';
import type { TtyQueueHold } from './queues.js';
import { isCanonical, TERMIOS } from './typed.js';
import { SIMPLE_TTY, type SimpleTtyKind } from './simple.js';

const EIO = -5;


/** A pty end met in the dump: where it was first seen, and what the checks once every task is in need. */
interface PtyEnd {
  index: number;
  master: boolean;
  pid: number;
  fd: number;
  target: string;
  sid: number;
  pgrp: number;
  locked: boolean;
  /** bytes waiting for this end to read (TIOCINQ: a slave in canonical mode counts whole lines only) */
  inq: number;
  /** a slave in canonical mode (ICANON without EXTPROC) */
  canonical: boolean;
  /** a slave whose ICANON bit is locked (TIOCSLCKTRMIOS): the line being typed cannot be read */
  icanonLocked: boolean;
  /** a slave's struct termios */
  termios?: Buffer;
  /** a master in packet mode */
  packet: boolean;
  /** a slave hung up (its master closed): nothing but its device is known */
  hung?: boolean;
  /** its name for --external tty[] */
  extKey?: string;
}

function winsizeEntry(w: Buffer): Entry {
  return { ws_row: w.readUInt16LE(0), ws_col: w.readUInt16LE(2), ws_xpixel: w.readUInt16LE(4), ws_ypixel: w.readUInt16LE(6) };
}

function refuseTask(pid: number, message: string, attribute: string): CrtoolsError {
  return new CrtoolsError('UNSUPPORTED_TASK_ATTRIBUTE', `task ${pid}: ${message}`, { context: { pid, attribute }, exitCode: ExitCode.UNSUPPORTED });
}

export class TtyFiles implements DumpKind {
  private readonly infos: Entry[] = [];
  /** tty_info ids written, and the pty ends behind them */
  private readonly ends = new Map<number, PtyEnd>();

  /** pathEntry: a REG entry for the terminal's path and flags (its id); ids: the tree's tasks and sessions */
  /** tty-data.img: the bytes queued at each end of the pairs taken */
  private readonly data: Entry[] = [];

  /** a console, virtual console or serial line written (tty_info id → the device and where it was met) */
  private readonly simple = new Map<number, { rdev: number; pid: number; fd: number }>();
  /** terminals named by --external tty[]: how many open files of them were written, and the sessions they are the terminal of */
  private extCount = 0;
  /** sessions whose controlling terminal is written with a console, a virtual console, a serial line or an external terminal */
  private readonly cttySessions = new Set<number>();

  /**
   * queues: where the bytes queued in pairs are taken and held (absent: a preflight, which only
   * checks); external: the terminals named by --external tty[RDEV:DEV], as "rdev:dev" in hex
   */
  constructor(
    private readonly pathEntry: (path: string, flags: number, st: Stats) => number,
    private readonly ids: () => DumpedIds | undefined,
    private readonly queues?: TtyQueueHold,
    private readonly external: ReadonlySet<string> = new Set(),
  ) {}

  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    if (!rec.target.startsWith('/')) return undefined;
    let st: Stats;
    try {
      st = statSync(`/proc/${pid}/fd/${rec.fd}`);
    } catch {
      return undefined;
    }
    if (!st.isCharacterDevice()) return undefined;
    // (as CRIU: a terminal named external is one whatever its kind)
    if (this.external.has(extTtyKey(st.rdev, st.dev))) return { type: 'TTY', key: `tty:${st.rdev}:${st.ino}:${flags}`, entry: (id) => this.externalTty(pid, rec, st, flags, id) };
    const dev = ttyDevice(st.rdev);
    switch (dev.kind) {
      case 'none':
        return undefined;
      case 'ctty':
        return { type: 'TTY', key: `tty:${st.rdev}:${st.ino}:${flags}`, entry: (id) => this.devTty(pid, rec, st, flags, id) };
      case 'console':
      case 'vt':
      case 'serial':
        return { type: 'TTY', key: `tty:${st.rdev}:${st.ino}:${flags}`, entry: (id) => this.simpleTty(pid, rec, st, flags, id, dev.kind as SimpleTtyKind) };
    }
    const master = dev.kind === 'ptmx';
    return {
      type: 'TTY',
      key: `tty:${st.rdev}:${st.ino}:${flags}`,
      entry: (id) => {
        const p = probeTty(pid, rec.fd);
        const hung = p.termios === EIO || p.winsize === EIO;
        if (hung && master) throw refuseFd(pid, rec.fd, 'a hung-up pty master (TIOCVHANGUP) is not supported', rec.target);
        const index = master ? p.ptn : (dev as { index: number }).index;
        if (index < 0) throw refuseFd(pid, rec.fd, `its pty index cannot be read (${p.ptn})`, rec.target);
        const had = this.ends.get(ptyInfoId(index, master));
        if (had && !!had.hung !== hung) throw refuseFd(pid, rec.fd, `/dev/pts/${index} is open both hung up and not (task ${had.pid} fd ${had.fd}: opened again after it was hung up): not supported`, rec.target);
        if (hung) return this.hung(pid, rec, st, flags, id, index);
        // (bytes waiting to be read are judged once every end is known: finish)
        if (p.outq > 0) throw refuseFd(pid, rec.fd, `${p.outq} bytes wait to be sent in the terminal (TIOCOUTQ): not carried`, rec.target);
        const infoId = ptyInfoId(index, master);
        if (!this.ends.has(infoId)) this.info(pid, rec, st, p, infoId, index, master);
        const regfId = this.pathEntry(rec.target, flags, st);
        return { type: 'TTY', id, tty: { id, tty_info_id: infoId, flags, fown: fown(), regf_id: regfId } };
      },
    };
  }

  /**
   * /dev/console, a virtual console or a serial line: opened again by path at the restore, its
   * termios, locked termios, window size and owner set, as CRIU 4.2 does; the session it is the
   * controlling terminal of, with its foreground group, as the task holding it first sees them
   * (as TIOCGSID in that task would answer).
   */
  private simpleTty(pid: number, rec: FdRecord, st: Stats, flags: number, id: number, kind: SimpleTtyKind): Entry {
    const { what, infoId, type } = SIMPLE_TTY[kind];
    if (rec.target.endsWith(' (deleted)')) throw refuseFd(pid, rec.fd, `${what} opened through a device node unlinked since: not supported`, rec.target);
    const had = this.simple.get(infoId);
    if (had && had.rdev !== st.rdev) {
      const { major, minor } = decodeDev(st.rdev);
      throw refuseFd(pid, rec.fd, `a second ${what.replace(/^a /, '')} (${major}:${minor}; task ${had.pid} fd ${had.fd} holds another): CRIU's images keep one for all of them`, rec.target);
    }
    const p = probeTty(pid, rec.fd);
    if (typeof p.termios === 'number' || typeof p.termiosLocked === 'number' || typeof p.winsize === 'number') {
      throw refuseFd(pid, rec.fd, `${what}: its termios or window size cannot be read (${[p.termios, p.termiosLocked, p.winsize].find((v) => typeof v === 'number')})`, rec.target);
    }
    if (p.inq > 0 || p.outq > 0) throw refuseFd(pid, rec.fd, `${p.inq > 0 ? `${p.inq} byte(s) wait to be read` : `${p.outq} byte(s) wait to be sent`} at ${what}: not carried`, rec.target);
    if (!had) {
      this.simple.set(infoId, { rdev: st.rdev, pid, fd: rec.fd });
      const own = this.ids()?.sessions?.get(pid);
      const mine = !!own && own.ttyNr !== 0 && own.ttyNr === p.ttyDev;
      if (mine) this.cttySessions.add(own!.sid);
      this.infos.push({
        id: infoId, type, locked: false, exclusive: p.excl === 1, packet_mode: false,
        sid: mine ? this.written(own!.sid, false) : 0, pgrp: mine ? this.written(Math.max(0, own!.tpgid), true) : 0, rdev: st.rdev,
        termios: termiosEntry(p.termios), termios_locked: termiosEntry(p.termiosLocked), winsize: winsizeEntry(p.winsize), dev: st.dev, ...this.owner(st),
      });
    }
    const regfId = this.pathEntry(rec.target, flags, st);
    return { type: 'TTY', id, tty: { id, tty_info_id: infoId, flags, fown: fown(), regf_id: regfId } };
  }

  /**
   * A terminal named by --external tty[RDEV:DEV]: as CRIU 4.2 writes it, no path (the restore
   * takes it from --inherit-fd fd[N]:tty[RDEV:DEV]), a tty_info of its own per open file with its
   * termios, window size and owner, and the session it is the task's controlling terminal of
   * (with its foreground group), which the restore gives it back.
   */
  private externalTty(pid: number, rec: FdRecord, st: Stats, flags: number, id: number): Entry {
    const p = probeTty(pid, rec.fd);
    if (typeof p.termios === 'number' || typeof p.termiosLocked === 'number' || typeof p.winsize === 'number') {
      throw refuseFd(pid, rec.fd, `named by --external ${extTtyName(st.rdev, st.dev)}, but its termios or window size cannot be read (${[p.termios, p.termiosLocked, p.winsize].find((v) => typeof v === 'number')}: not a terminal, or hung up)`, rec.target);
    }
    if (++this.extCount > EXT_TTY_MAX) throw refuseFd(pid, rec.fd, `more than ${EXT_TTY_MAX} open files of external terminals (CRIU's images number no more)`, rec.target);
    const own = this.ids()?.sessions?.get(pid);
    const mine = !!own && own.ttyNr !== 0 && own.ttyNr === p.ttyDev;
    if (mine) this.cttySessions.add(own!.sid);
    const infoId = extTtyInfoId(this.extCount);
    this.infos.push({
      id: infoId, type: 'EXT_TTY', locked: false, exclusive: p.excl === 1, packet_mode: false, sid: mine ? this.written(own!.sid, false) : 0, pgrp: mine ? this.written(Math.max(0, own!.tpgid), true) : 0, rdev: st.rdev,
      termios: termiosEntry(p.termios), termios_locked: termiosEntry(p.termiosLocked), winsize: winsizeEntry(p.winsize), dev: st.dev, ...this.owner(st),
    });
    return { type: 'TTY', id, tty: { id, tty_info_id: infoId, flags, fown: fown() } };
  }

  /**
   * A slave hung up (its master closed, or vhangup): what CRIU 4.2 writes of it, its device
   * (index, owner) and nothing else; the restore hangs it up again.
   */
  private hung(pid: number, rec: FdRecord, st: Stats, flags: number, id: number, index: number): Entry {
    const infoId = ptyInfoId(index, false);
    if (!this.ends.has(infoId)) {
      this.ends.set(infoId, { index, master: false, pid, fd: rec.fd, target: rec.target, sid: 0, pgrp: 0, locked: false, inq: 0, canonical: false, icanonLocked: false, packet: false, hung: true });
      this.infos.push({ id: infoId, type: 'PTY', locked: false, exclusive: false, packet_mode: false, sid: 0, pgrp: 0, rdev: st.rdev, pty: { index }, dev: st.dev, ...this.owner(st) });
    }
    // (the master's close removed /dev/pts/N: the restore opens it again through its own master)
    const regfId = this.pathEntry(rec.target.replace(/ \(deleted\)$/, ''), flags, st);
    return { type: 'TTY', id, tty: { id, tty_info_id: infoId, flags, fown: fown(), regf_id: regfId } };
  }

  /**
   * /dev/tty opened by a task: its controlling terminal at the time, which it must still be (the
   * restore opens /dev/tty again in that task, once its session has its terminal back).
   */
  private devTty(pid: number, rec: FdRecord, st: Stats, flags: number, id: number): Entry {
    const p = probeTty(pid, rec.fd);
    const own = this.ids()?.sessions?.get(pid);
    if (typeof p.termios === 'number' || typeof p.termiosLocked === 'number' || typeof p.winsize === 'number') throw refuseFd(pid, rec.fd, 'its terminal was hung up', rec.target);
    if (!own || own.ttyNr === 0 || own.ttyNr !== p.ttyDev) throw refuseFd(pid, rec.fd, 'opened through /dev/tty on a terminal that is no longer the task\'s controlling terminal: not supported', rec.target);
    if (this.devTtyPid !== undefined && this.devTtyPid !== pid) throw refuseFd(pid, rec.fd, `/dev/tty opened in more than one task (also task ${this.devTtyPid}): not supported`, rec.target);
    if (p.outq > 0) throw refuseFd(pid, rec.fd, `${p.outq} bytes wait to be sent in the terminal (TIOCOUTQ): not carried`, rec.target);
    // (bytes waiting to be read are its pty pair's: judged in finish, once every end is known)
    if (p.inq > 0) this.devTtyQueued = { pid, fd: rec.fd, target: rec.target, inq: p.inq, ttyDev: p.ttyDev };
    if (this.devTtyPid === undefined) {
      this.devTtyPid = pid;
      this.infos.push({
        id: CTTY_INFO_ID, type: 'CTTY', locked: false, exclusive: p.excl === 1, packet_mode: false, sid: this.written(own.sid, false), pgrp: this.written(Math.max(0, own.tpgid), true), rdev: st.rdev,
        termios: termiosEntry(p.termios), termios_locked: termiosEntry(p.termiosLocked), winsize: winsizeEntry(p.winsize), dev: st.dev, ...this.owner(st),
      });
    }
    const regfId = this.pathEntry(rec.target, flags, st);
    return { type: 'TTY', id, tty: { id, tty_info_id: CTTY_INFO_ID, flags, fown: fown(), regf_id: regfId } };
  }

  /**
   * A terminal's owner as the images keep it (ownerInside: inside the tree's user namespace,
   * the overflow ids where it does not map it: a pty master's is the ptmx node's, root's, which
   * the restore does not give; a slave's owner it gives back is one the tasks took).
   */
  private owner(st: Stats): { uid: number; gid: number } {
    return ownerInside(this.ids(), Number(st.uid), Number(st.gid));
  }

  /**
   * A session (group false: its leader's pid) or foreground group as tty-info.img carries it: in a
   * tree with a pid namespace of its own, as its tasks see it there (as CRIU 4.2 writes it); one
   * outside the tree (0: none) as crtools sees it, which the checks of finish() refuse by name.
   */
  private written(id: number, group: boolean): number {
    const ids = this.ids();
    if (!id || !ids?.innerId) return id;
    return (group ? ids.groups : ids.tasks).has(id) ? ids.innerId(id, group) : id;
  }

  /** the task that opened /dev/tty (one only) */
  private devTtyPid: number | undefined;
  /** bytes waiting to be read on its terminal, seen through /dev/tty */
  private devTtyQueued: { pid: number; fd: number; target: string; inq: number; ttyDev: number } | undefined;

  /** The terminal end's tty_info_entry, as seen from the task that holds it first. */
  private info(pid: number, rec: FdRecord, st: Stats, p: TtyProbe, infoId: number, index: number, master: boolean): void {
    if (typeof p.termios === 'number' || typeof p.termiosLocked === 'number' || typeof p.winsize === 'number') {
      throw refuseFd(pid, rec.fd, `its termios or window size cannot be read (${[p.termios, p.termiosLocked, p.winsize].find((v) => typeof v === 'number')})`, rec.target);
    }
    // the master answers for its slave whoever asks; a slave tells its session and foreground
    // group only to a task whose controlling terminal it is (as TIOCGSID in that task would)
    let sid = Math.max(0, p.sid);
    let pgrp = Math.max(0, p.pgrp);
    if (!master) {
      const own = this.ids()?.sessions?.get(pid);
      const mine = !!own && own.ttyNr !== 0 && own.ttyNr === p.ttyDev;
      sid = mine ? own!.sid : 0;
      pgrp = mine ? Math.max(0, own!.tpgid) : 0;
    }
    const locked = master && p.lock === 1;
    const canonical = !master && isCanonical(p.termios);
    const icanonLocked = !master && (p.termiosLocked.readUInt32LE(12) & TERMIOS.ICANON) !== 0;
    this.ends.set(infoId, {
      index, master, pid, fd: rec.fd, target: rec.target, sid, pgrp, locked, inq: Math.max(0, p.inq), canonical, icanonLocked, packet: master && p.pkt === 1, extKey: extTtyKey(st.rdev, st.dev),
      ...(master ? {} : { termios: p.termios }),
    });
    this.infos.push({
      id: infoId, type: 'PTY', locked, exclusive: p.excl === 1, packet_mode: master && p.pkt === 1, sid: this.written(sid, false), pgrp: this.written(pgrp, true), rdev: st.rdev,
      termios: termiosEntry(p.termios), termios_locked: termiosEntry(p.termiosLocked), winsize: winsizeEntry(p.winsize),
      pty: { index }, dev: st.dev, ...this.owner(st),
    });
  }

  /** Once every task is in: each slave's master is in the tree, and so is each terminal's session and foreground group. */
  finish(refusals: Refusals): void {
    const ids = this.ids();
    const masters = new Map<number, PtyEnd>();
    for (const e of this.ends.values()) if (e.master) masters.set(e.index, e);
    const slaveOf = (i: number) => this.ends.get(ptyInfoId(i, false));
    // a slave whose master is outside: with --shell-job, one such terminal (the shell's, which
    // the restore's terminal stands for, as in CRIU); the controlling terminal of no session led
    // in the tree but the root's (a job that leads its own session, as CRIU's shell-job test
    // makes one: the restored root takes the restore's terminal as its own)
    let outside: PtyEnd | undefined;
    for (const e of this.ends.values()) {
      if (e.hung) {
        const m = masters.get(e.index);
        if (m) refusals.check(() => { throw refuseFd(e.pid, e.fd, `a slave hung up (vhangup) while its master is open (task ${m.pid} fd ${m.fd}): not supported`, e.target); });
        continue;
      }
      if (e.master || masters.has(e.index)) continue;
      refusals.check(() => {
        if (!ids?.shellJob) throw refuseFd(e.pid, e.fd, `a terminal whose master is outside the dumped tree (a shell's terminal: -j/--shell-job carries one; --external tty[${e.extKey}] names it external)`, e.target);
        if (outside) throw refuseFd(e.pid, e.fd, `a second terminal outside the dumped tree (besides ${outside.target}): -j/--shell-job carries one`, e.target);
        if (e.sid && ids.sessions?.get(e.sid)?.sid === e.sid) {
          if (e.sid !== ids.root) throw refuseFd(e.pid, e.fd, `a terminal outside the dumped tree that is the controlling terminal of session ${e.sid}, led in the tree by a task other than the root (-j gives the root's session the restore's terminal)`, e.target);
          if (e.pgrp && !ids.groups.has(e.pgrp)) throw refuseFd(e.pid, e.fd, `the foreground process group ${e.pgrp} of /dev/pts/${e.index}, the root's terminal, is not in the dumped tree`, e.target);
        }
        outside = e;
      });
    }
    this.queued(refusals, masters, slaveOf);
    const sessions = ids?.sessions;
    if (!sessions) return;
    for (const m of masters.values()) {
      if (!m.sid) continue;
      const leader = sessions.get(m.sid);
      refusals.check(() => {
        if (!leader || leader.sid !== m.sid) throw refuseFd(m.pid, m.fd, `/dev/pts/${m.index} is the controlling terminal of session ${m.sid}, whose leader is not in the dumped tree`, m.target);
        if (m.pgrp && !ids.groups.has(m.pgrp)) throw refuseFd(m.pid, m.fd, `the foreground process group ${m.pgrp} of /dev/pts/${m.index} is not in the dumped tree`, m.target);
        if (m.locked && !slaveOf(m.index)) throw refuseFd(m.pid, m.fd, `/dev/pts/${m.index} is locked (TIOCSPTLCK) and a session's controlling terminal with no descriptor on it in the tree: not supported`, m.target);
      });
    }
    // every controlling terminal of the tree comes back: a pty whose master is dumped (or, with
    // --shell-job, the terminal of the root's session, led from outside: criu's own at restore)
    // (assigned in the callbacks above, which the compiler does not follow)
    const rootTty = outside as PtyEnd | undefined;
    const external = new Set([...this.external].map((k) => Number.parseInt(k.split(':')[0]!, 16)));
    for (const [pid, s] of sessions) {
      if (!s.ttyNr) continue;
      // a console, or an external terminal (its session led in the tree gets it back from the
      // descriptor handed over), written with the session
      if (this.cttySessions.has(s.sid)) continue;
      if (external.has(s.ttyNr) && !sessions.has(s.sid)) continue;
      const dev = ttyDevice(s.ttyNr);
      const m = dev.kind === 'pts' ? masters.get(dev.index) : undefined;
      if (m && m.sid === s.sid) continue;
      if (ids.shellJob && !sessions.has(s.sid)) continue;
      // (-j: the root's own session, whose terminal is the one outside the tree)
      if (rootTty && dev.kind === 'pts' && dev.index === rootTty.index && rootTty.sid === s.sid) continue;
      const { major, minor } = decodeDev(s.ttyNr);
      const name = dev.kind === 'pts' ? `/dev/pts/${dev.index}` : `the terminal ${major}:${minor}`;
      const why = dev.kind === 'console' || dev.kind === 'vt' || dev.kind === 'serial'
        ? `no task of the tree holds it (${SIMPLE_TTY[dev.kind].one} is carried as a descriptor held)`
        : `its master is not in the dumped tree${ids.shellJob ? '' : ' (a shell\'s terminal: -j/--shell-job, or --external tty[RDEV:DEV])'}`;
      refusals.check(() => {
        throw refuseTask(pid, `its controlling terminal ${name} is not carried: ${why}`, 'ctty');
      });
    }
  }

  /**
   * Bytes waiting to be read in a pair: carried when both ends are in the tree and the bytes can
   * be read and put back as they are — the master not in packet mode (its reads begin with a
   * status byte); a canonical slave's lines (each read on its own) and the line being typed (read
   * with ICANON off for the while, so not with ICANON locked), typed again at the restore, which
   * wants its master out of packet mode too (see typed.ts) — then taken (a dump, not a preflight)
   * into tty-data.img, an entry per end that had some, as CRIU 4.2 writes them. A canonical slave
   * is read even when TIOCINQ counts nothing: it counts no line being typed.
   */
  private queued(refusals: Refusals, masters: ReadonlyMap<number, PtyEnd>, slaveOf: (i: number) => PtyEnd | undefined): void {
    const check = (e: PtyEnd, m: PtyEnd | undefined, s: PtyEnd | undefined, inq: number) => {
      const what = `${inq} byte(s) wait to be read at the ${e.master ? 'master' : 'slave'} of /dev/pts/${e.index}`;
      refusals.check(() => {
        if (!m || !s || s.hung) throw refuseFd(e.pid, e.fd, `${what}, whose ${m ? 'slave' : 'master'} is open nowhere in the tree: not carried`, e.target);
        if (e.master && e.packet) throw refuseFd(e.pid, e.fd, `${what}, in packet mode: not carried`, e.target);
        if (!e.master && e.canonical && m.packet) throw refuseFd(e.pid, e.fd, `${what}, in canonical mode, with the master in packet mode: not carried`, e.target);
        if (!e.master && e.canonical && e.icanonLocked) throw refuseFd(e.pid, e.fd, `${what}, in canonical mode with ICANON locked (TIOCSLCKTRMIOS: the line being typed cannot be read): not carried`, e.target);
      });
    };
    for (const e of this.ends.values()) {
      if (!e.inq || e.hung) continue;
      check(e, e.master ? e : masters.get(e.index), e.master ? slaveOf(e.index) : e, e.inq);
    }
    // seen through /dev/tty: its pair's slave's bytes
    const t = this.devTtyQueued;
    if (t) {
      const dev = ttyDevice(t.ttyDev);
      const s = dev.kind === 'pts' ? slaveOf(dev.index) : undefined;
      const m = dev.kind === 'pts' ? masters.get(dev.index) : undefined;
      if (!s || s.hung) refusals.check(() => { throw refuseFd(t.pid, t.fd, `${t.inq} byte(s) wait to be read at its terminal, which is open nowhere in the tree but through /dev/tty: not carried`, t.target); });
      else check(s, m, s, t.inq);
    }
    if (!this.queues || refusals.found.length) return;
    for (const m of masters.values()) {
      const s = slaveOf(m.index);
      if (!s || s.hung) continue;
      const canonical = s.canonical && !m.packet && !s.icanonLocked;
      if (!(m.inq || s.inq || canonical)) continue;
      const q = this.queues.take(m.index, m.pid, m.fd, s.pid, s.fd, s.termios!);
      if (!q.exact) {
        refusals.check(() => {
          throw refuseFd(s.pid, s.fd, `a line queued at the slave of /dev/pts/${m.index} in canonical mode without IEXTEN holds a character the line discipline would act on if it were typed again (no LNEXT to mark it): not carried`, s.target);
        });
      }
      if (q.toMaster.length) this.data.push({ tty_id: ptyInfoId(m.index, true), data: q.toMaster });
      if (q.toSlave.length) this.data.push({ tty_id: ptyInfoId(m.index, false), data: q.toSlave });
    }
  }

  images(): DumpImage[] {
    return [
      { file: 'tty-info.img', magic: 'TTY_INFO', entries: this.infos },
      ...(this.data.length ? [{ file: 'tty-data.img', magic: 'TTY_DATA', entries: this.data }] : []),
    ];
  }
}

/** --external tty[RDEV:DEV]'s key for a terminal: its device and its filesystem's, in hex (as stat(2) gives them) */
export function extTtyKey(rdev: number | bigint, dev: number | bigint): string {
  return `${BigInt(rdev).toString(16)}:${BigInt(dev).toString(16)}`;
}

function extTtyName(rdev: number, dev: number): string {
  return `tty[${extTtyKey(rdev, dev)}]`;
}
