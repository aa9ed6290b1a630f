/**
 * The dump's hold on the bytes queued in the tree's pty pairs: reading them takes them out of
 * the terminal, so each pair's are kept with our descriptors on both its ends until the dump
 * ends. Then either the tree is gone (`release`: the descriptors close) or it goes on (`resume`:
 * the bytes are put back to wait at the end that had them, as they were: a canonical slave's
 * lines typed again, see typed.ts).
 */
import { closeSync } from 'node:fs';
import type { Logger } from '@crtools/common';
import { putTtyQueues, takeTaskFd, takeTtyQueues } from '@crtools/sys';
import { canonicalTyped } from './typed.js';

/** A pair's bytes as tty-data.img carries them: for the master to read, for the slave (a canonical one's: its lines as typed) */
export interface PairQueues {
  toMaster: Buffer;
  toSlave: Buffer;
  /** false: a canonical slave's line holds a byte that cannot be marked to be typed again as it is (no IEXTEN) */
  exact: boolean;
}

interface Held {
  index: number;
  master: number;
  slave: number;
  q: PairQueues;
}

export class TtyQueueHold {
  private readonly held: Held[] = [];

  constructor(private readonly log?: Logger) {}

  /**
   * Take the bytes waiting at each end of pty `index` (its master at task mPid's fd mFd, a slave
   * at sPid's sFd, whose termios is `termios`).
   */
  take(index: number, mPid: number, mFd: number, sPid: number, sFd: number, termios: Buffer): PairQueues {
    const master = takeTaskFd(mPid, mFd);
    let slave = -1;
    try {
      slave = takeTaskFd(sPid, sFd);
      const raw = takeTtyQueues(master, slave);
      const lines = raw.lines;
      let q: PairQueues = { toMaster: raw.toMaster, toSlave: raw.toSlave, exact: true };
      if (lines) {
        const t = canonicalTyped(termios, lines, raw.toSlave);
        q = { toMaster: raw.toMaster, toSlave: t.typed, exact: t.exact };
      }
      this.held.push({ index, master, slave, q });
      this.log?.info(`tty: /dev/pts/${index}: ${q.toMaster.length} byte(s) queued for the master, ${q.toSlave.length} for the slave${lines ? ` (canonical: ${lines.length} line(s), ${raw.toSlave.length} byte(s) of a line being typed)` : ''}`);
      return q;
    } catch (e) {
      if (slave >= 0) closeSync(slave);
      closeSync(master);
      throw e;
    }
  }

  /** The tree goes on: every pair gets its bytes back (a failure is logged: the dump's error, if any, is the one to report). */
  resume(): void {
    for (const h of this.held.splice(0)) {
      try {
        if (h.q.toMaster.length || h.q.toSlave.length) putTtyQueues(h.master, h.slave, h.q);
      } catch (e) {
        this.log?.error(`tty: /dev/pts/${h.index}: the bytes queued could not be put back: ${(e as Error).message}`);
      } finally {
        closeSync(h.master);
        closeSync(h.slave);
      }
    }
  }

  /** The tree is gone: our descriptors close. */
  release(): void {
    for (const h of this.held.splice(0)) {
      closeSync(h.master);
      closeSync(h.slave);
    }
  }
}
