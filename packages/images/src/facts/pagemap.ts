/** PagemapEntry.flags (pagemap-<id>.img), as CRIU's PE_* (criu/include/pagemap.h). */
export const PE = { PARENT: 1 << 0, LAZY: 1 << 1, PRESENT: 1 << 2 } as const;
