// Facts of CRIU's mountpoints-<id>.img (mnt_entry): the file system codes of its fstype field,
// the per-mount flags it keeps, and how it splits a mount's options (CRIU 4.2's parse of
// /proc/PID/mountinfo).

/** mnt_entry.fstype: file systems CRIU names by code (any other is UNSUPPORTED, 0). */
export const FSTYPE: Readonly<Record<string, number>> = {
  proc: 1, sysfs: 2, devtmpfs: 3, binfmt_misc: 4, tmpfs: 5, devpts: 6, simfs: 7, pstore: 8, securityfs: 9,
  fusectl: 10, debugfs: 11, cgroup: 12, aufs: 13, mqueue: 14, fuse: 15, overlay: 17, autofs: 18, tracefs: 19, cgroup2: 23,
};

/** The file system name of an fstype code (undefined: UNSUPPORTED or AUTO, named by fsname if at all). */
export function fstypeName(code: number): string | undefined {
  return Object.keys(FSTYPE).find((k) => FSTYPE[k] === code);
}

/** mount(2) flags as mnt_entry.flags and sb_flags hold them. */
export const MNT_FLAG = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, SYNCHRONOUS: 0x10, MANDLOCK: 0x40, DIRSYNC: 0x80,
  NOATIME: 0x400, NODIRATIME: 0x800, UNBINDABLE: 0x20000, SLAVE: 0x80000, SHARED: 0x100000, RELATIME: 0x200000, STRICTATIME: 0x1000000,
} as const;

/** The per-mount flags of mountinfo's mount options (the atime mode STRICTATIME when neither relatime nor noatime). */
export function mountFlagsOf(mountOptions: string): number {
  const by: Record<string, number> = {
    ro: MNT_FLAG.RDONLY, nosuid: MNT_FLAG.NOSUID, nodev: MNT_FLAG.NODEV, noexec: MNT_FLAG.NOEXEC,
    noatime: MNT_FLAG.NOATIME, nodiratime: MNT_FLAG.NODIRATIME, relatime: MNT_FLAG.RELATIME,
  };
  let f = 0;
  for (const o of mountOptions.split(',')) f |= by[o] ?? 0;
  if (!(f & (MNT_FLAG.RELATIME | MNT_FLAG.NOATIME))) f |= MNT_FLAG.STRICTATIME;
  return f;
}

/** Super block options split as CRIU keeps them: the flags (ro, sync, dirsync, mand) and the rest, in order, without rw. */
export function superOptionsOf(superOptions: string): { sbFlags: number; options: string } {
  const by: Record<string, number> = { rw: 0, ro: MNT_FLAG.RDONLY, sync: MNT_FLAG.SYNCHRONOUS, dirsync: MNT_FLAG.DIRSYNC, mad: MNT_FLAG.MANDLOCK };
  let sbFlags = 0;
  const rest: string[] = [];
  for (const o of superOptions.split(',')) {
    if (o in by) sbFlags |= by[o]!;
    else if (o !== '') rest.push(o);
  }
  return { sbFlags, options: rest.join(',') };
}
