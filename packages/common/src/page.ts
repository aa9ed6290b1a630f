/**
 * The page on x86_64: what the kernel maps and pagemap indexes, and the unit of CRIU's pages
 * images. One definition for every package (numbers for lengths and offsets in buffers and
 * files, the bigint for address arithmetic).
 */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
/** PAGE_SIZE as a bigint, for addresses (which exceed 2^53) */
export const PAGE_SIZE_BIGINT = BigInt(PAGE_SIZE);
