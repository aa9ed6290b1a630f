/** FileLockEntry (filelocks.img): `flag` says whose lock it is, `type` read or write (CRIU's FL_* and F_*LCK). */
/** LEASE: a file lease (F_SETLEASE), `type` the lease's; a lease being broken has LEASE_BREAKING in `type` */
export const FILE_LOCK_FLAG = { POSIX: 1, FLOCK: 2, OFD: 4, LEASE: 8 } as const;
export const LEASE_BREAKING = 4;
export const FILE_LOCK_TYPE = { READ: 0, WRITE: 1 } as const;
