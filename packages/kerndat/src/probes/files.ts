import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { readMountinfo } from '@crtools/procfs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KerndatPart } from '../types.js';
import { native } from '../load-native.js';
import { NR, closeFd, raw, withFds, forkProbe } from '../sys.js';
import { canAccess, fdinfo } from '../procfs-lite.js';

export function probeMapFiles(): KerndatPart {
  return { has_map_files: canAccess('/proc/self/map_files', constants.R_OK) };
}

/** What /proc/PID/fdinfo tells about each kind of file CRIU dumps from it. */
export function probeFdinfo(): KerndatPart {
  const dir = mkdtempSync(join(tmpdir(), 'crtools-kerndat-'));
  try {
    return withFds((track) => {
      const part: KerndatPart = {};
      // a regular file: mnt_id, and a flock shows up as a lock: line
      const file = track(openSync(join(dir, 'f'), 'w+'));
      part.has_mnt_id = /^mnt_id:/m.test(fdinfo(file));
      part.has_fdinfo_lock = raw(NR.flock, file, 1 /* LOCK_SH */).errno === 0 && /^lock:/m.test(fdinfo(file));
      const efd = raw(NR.eventfd2, 5, 0o2000000);
      part.has_fdinfo_eventfd = efd.ret !== -1n && /^eventfd-count:\s*5\b/m.test(fdinfo(track(efd.ret)));
      const mask = Buffer.alloc(8);
      mask.writeBigUInt64LE(1n << 9n); // SIGUSR2 (bit signo-1); any non-empty mask will do
      const sfd = raw(NR.signalfd4, -1, mask, 8, 0o2000000);
      part.has_fdinfo_signalfd = sfd.ret !== -1n && /^sigmask:/m.test(fdinfo(track(sfd.ret)));
      const ep = raw(NR.epoll_create1, 0o2000000);
      if (ep.ret !== -1n && efd.ret !== -1n) {
        const ev = Buffer.alloc(12);
        ev.writeUInt32LE(1, 0);
        raw(NR.epoll_ctl, ep.ret, 1, efd.ret, ev);
        part.has_fdinfo_eventpoll = /^tfd:\s*\d+/m.test(fdinfo(track(ep.ret)));
      } else part.has_fdinfo_eventpoll = false;
      const ino = raw(NR.inotify_init1, 0o2000000);
      if (ino.ret !== -1n) {
        const ifd = track(ino.ret);
        const w = raw(NR.inotify_add_watch, ifd, Buffer.from(dir + '\0'), 0x100 /* IN_CREATE */);
        part.has_fdinfo_inotify = w.ret !== -1n && /^inotify wd:/m.test(fdinfo(ifd));
        part.has_inotify_setnextwd = raw(NR.ioctl, ifd, 0x40044900 /* INOTIFY_IOC_SETNEXTWD */, 16).errno === 0;
      } else part.has_fdinfo_inotify = part.has_inotify_setnextwd = false;
      const tfd = raw(NR.timerfd_create, 1 /* CLOCK_MONOTONIC */, 0o2000000);
      part.has_timerfd = tfd.ret !== -1n && /^clockid:/m.test(fdinfo(track(tfd.ret))) && /^it_value:/m.test(fdinfo(Number(tfd.ret)));
      // fcntl(F_GETOWNER_UIDS)
      const uids = Buffer.alloc(8);
      part.has_fcntl_owner_uids = raw(NR.fcntl, file, 17, uids).errno === 0;
      return part;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A locked pty slave cannot be opened (EIO): needed to restore ttys faithfully. */
export function probeTty(): KerndatPart {
  let master: number;
  try {
    master = openSync('/dev/ptmx', constants.O_RDWR | constants.O_NOCTTY);
  } catch {
    return { has_tty_locked_pty: false };
  }
  try {
    const lock = Buffer.alloc(4);
    lock.writeInt32LE(1);
    if (raw(NR.ioctl, master, 0x40045431 /* TIOCSPTLCK */, lock).errno !== 0) return { has_tty_locked_pty: false };
    const n = Buffer.alloc(4);
    if (raw(NR.ioctl, master, 0x80045430 /* TIOCGPTN */, n).errno !== 0) return { has_tty_locked_pty: false };
    try {
      closeSync(openSync(`/dev/pts/${n.readUInt32LE(0)}`, constants.O_RDWR | constants.O_NOCTTY));
      return { has_tty_locked_pty: false };
    } catch (e) {
      return { has_tty_locked_pty: (e as NodeJS.ErrnoException).code === 'EIO' };
    }
  } finally {
    closeSync(master);
  }
}

/** vmsplice() of an unaligned, one-byte buffer with SPLICE_F_GIFT works. */
export function probeVmsplice(): KerndatPart {
  const fds = Buffer.alloc(8);
  if (raw(NR.pipe2, fds, 0o2000000 | 0o4000).errno !== 0) return { has_unaligned_vmsplice: false };
  try {
    const data = Buffer.alloc(64, 0x41);
    const iov = Buffer.alloc(16);
    iov.writeBigUInt64LE(native().addressOf(data) + 1n, 0);
    iov.writeBigUInt64LE(1n, 8);
    const r = raw(NR.vmsplice, fds.readInt32LE(4), iov, 1, 8 /* GIFT */ | 2 /* NONBLOCK */);
    return { has_unaligned_vmsplice: r.ret === 1n };
  } finally {
    closeFd(fds.readInt32LE(0));
    closeFd(fds.readInt32LE(4));
  }
}

export function probeIpc(): KerndatPart {
  return { has_ipc_next_id: canAccess('/proc/sys/kernel/sem_next_id', constants.R_OK | constants.W_OK) };
}

/** The new mount API and openat2. */
export function probeMountApi(): KerndatPart {
  const fs = raw(NR.fsopen, Buffer.from('tmpfs\0'), 1 /* FSOPEN_CLOEXEC */);
  if (fs.ret !== -1n) closeFd(fs.ret);
  const how = Buffer.alloc(24); // flags=O_RDONLY, mode=0, resolve=0
  how.writeBigUInt64LE(BigInt(0o2000000), 0);
  const o = raw(NR.openat2, -100, Buffer.from('/\0'), how, 24);
  if (o.ret !== -1n) closeFd(o.ret);
  // MOVE_MOUNT_SET_GROUP: an unknown flag is EINVAL before any lookup; a known one reaches the bad fd
  const empty = Buffer.from('\0');
  const mm = raw(NR.move_mount, -1, empty, -1, empty, 0x100 | 0x4 | 0x40);
  return { has_fsopen: fs.ret !== -1n, has_openat2: o.ret !== -1n, has_move_mount_set_group: mm.errno === 9 /* EBADF */ };
}

/** A mount-probe child's exit when the kernel does not know the filesystem type (mount(2) ENODEV). */
export const NO_SUCH_FS_EXIT = 64;

/**
 * Run a mount probe child over a fresh empty directory: exit 0 yes, 1 no,
 * NO_SUCH_FS_EXIT the filesystem is not in this kernel (undefined), anything
 * else a probe that could not run (thrown, with what).
 */
function mountProbe(kind: 'autofs' | 'overlayfs_maps', what: string): boolean | undefined {
  const dir = mkdtempSync(join(tmpdir(), `crtools-kerndat-${kind === 'autofs' ? 'autofs' : 'ovl'}-`));
  try {
    const st = forkProbe(kind, [], 5000, dir);
    if (st.exited && (st.code === 0 || st.code === 1)) return st.code === 0;
    if (st.exited && st.code === NO_SUCH_FS_EXIT) return undefined;
    throw new Error(`${what} (child ${st.timedOut ? 'timed out' : st.exited ? `exit ${st.code}` : `signal ${st.signal}`})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * autofs mounts show pipe_ino= in mountinfo: read it from an existing autofs
 * mount, else mount one (a forked child, in a private mount namespace, over an
 * empty temporary directory). A kernel without autofs is an answer: has_autofs false.
 */
export function probeAutofs(): KerndatPart {
  const mi = readMountinfo(process.pid).find((m) => m.fsType === 'autofs');
  if (mi) return { has_autofs: true, has_autofs_pipe_ino: mi.superOptions.includes('pipe_ino=') };
  const pipeIno = mountProbe('autofs', 'autofs could not be mounted for the test');
  return pipeIno === undefined ? { has_autofs: false } : { has_autofs: true, has_autofs_pipe_ino: pipeIno };
}

/**
 * overlayfs: /proc/PID/maps shows the same dev:ino as fstat() for a file mapped
 * from an overlay mount. A forked child builds tmpfs + overlay in a private
 * mount namespace over an empty temporary directory; nothing leaks out of it.
 */
export function probeOverlayfsMaps(): KerndatPart {
  const same = mountProbe('overlayfs_maps', 'overlayfs test could not run');
  return same === undefined ? { has_overlayfs: false } : { has_overlayfs: true, has_overlayfs_maps: same };
}
