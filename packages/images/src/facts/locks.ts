/** FileLockEntry (filelocks.img): `flag` says whose lock it is, `type` read or write (CRIU's FL_* and F_*LCK). */
export const FILE_LOCK_FLAG = { POSIX: 1, FLOCK: 2, OFD: 4 } as const;
export const FILE_LOCK_TYPE = { READ: 0, WRITE: 1 } as const;
