/**
 * tun/tap devices and their /dev/net/tun files: attach a file to a device (made when it does not
 * exist) inside a network namespace, read what a file says of itself and of its device, and give
 * a device its settings again.
 */
import { closeSync } from 'node:fs';
import { addon, orThrow, type TunFileInfo } from './native.js';
import { takeTaskFd } from './probe.js';

/** TUNSETIFF / TUNGETIFF flags (linux/if_tun.h) */
export const IFF_TUN = 0x0001;
export const IFF_TAP = 0x0002;
export const IFF_NO_PI = 0x1000;
export const IFF_ONE_QUEUE = 0x2000;
export const IFF_VNET_HDR = 0x4000;
export const IFF_TUN_EXCL = 0x8000;
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_DETACH_QUEUE = 0x0400;
export const IFF_PERSIST = 0x0800;

/**
 * A descriptor (close-on-exec) on /dev/net/tun opened inside the network namespace `nsPath`
 * names (undefined: this process's), with `openFlags`' access mode and O_NONBLOCK, attached to
 * device `name` with TUNSETIFF `flags`; a device that does not exist is made, at `ifindex` when
 * given. With `name` empty, the file is left unattached.
 */
export function tunAttach(nsPath: string | undefined, name: string, flags: number, openFlags: number, ifindex = 0): number {
  return orThrow(addon.get().tunAttach(nsPath ?? '', name, flags, ifindex, openFlags), 'TUNSETIFF', { message: `tun device ${name}` });
}

/** What the /dev/net/tun file at task pid's fd says (through a pidfd_getfd copy). */
export function taskTunFile(pid: number, fd: number): TunFileInfo {
  const own = takeTaskFd(pid, fd);
  try {
    return orThrow(addon.get().tunInfo(own), 'TUNGETIFF', { pid, message: `/dev/net/tun at fd ${fd}` });
  } finally {
    closeSync(own);
  }
}

/**
 * What a persistent device no file is attached to says: a file attached to it for the while,
 * inside the namespace `nsPath` names, with the device's own flags (`flags`, its tun_flags:
 * TUNSETIFF sets the device's features to those it is given).
 */
export function persistentTunDevice(nsPath: string, name: string, flags: number): TunFileInfo {
  const fd = tunAttach(nsPath, name, flags & 0xffff & ~IFF_PERSIST, 2);
  try {
    return orThrow(addon.get().tunInfo(fd), 'TUNGETIFF', { message: `tun device ${name}` });
  } finally {
    closeSync(fd);
  }
}

/**
 * Give the device `fd` is attached to the settings given: its owner and group (-1: none, left
 * so), send buffer, vnet header size and persistence.
 */
export function setTunDevice(fd: number, s: { owner?: number; group?: number; sndbuf?: number; vnethdr?: number; persist?: boolean }): void {
  const set = (what: 'owner' | 'group' | 'persist' | 'sndbuf' | 'vnethdr', v: number) => orThrow(addon.get().tunSet(fd, what, v), `TUNSET${what.toUpperCase()}`);
  if (s.owner !== undefined && s.owner !== -1) set('owner', s.owner);
  if (s.group !== undefined && s.group !== -1) set('group', s.group);
  if (s.sndbuf !== undefined) set('sndbuf', s.sndbuf);
  if (s.vnethdr !== undefined) set('vnethdr', s.vnethdr);
  if (s.persist !== undefined) set('persist', s.persist ? 1 : 0);
}

/** Detach the queue of the multi-queue device the file `fd` is attached to (TUNSETQUEUE IFF_DETACH_QUEUE). */
export function detachTunQueue(fd: number): void {
  orThrow(addon.get().tunSet(fd, 'detach', 0), 'TUNSETQUEUE');
}

export type { TunFileInfo };
