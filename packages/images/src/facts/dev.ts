/**
 * Device numbers, in the two encodings images and the kernel use:
 * - userspace dev_t (glibc's makedev: what stat(2) gives and most image fields hold);
 * - the kernel's kdev_t, 12-bit major << 20 | 20-bit minor (what fdinfo's s_dev shows and
 *   fields CRIU marks `dev` hold).
 */
export interface DevNumber {
  major: number;
  minor: number;
}

/** major and minor of a userspace dev_t. */
export function decodeDev(dev: number | bigint): DevNumber {
  const d = BigInt(dev);
  return {
    major: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)),
    minor: Number((d & 0xffn) | ((d >> 12n) & ~0xffn)),
  };
}

/** A userspace dev_t from major and minor. */
export function encodeDev(major: number | bigint, minor: number | bigint): bigint {
  const [a, b] = [BigInt(major), BigInt(minor)];
  return ((a & 0xfffn) << 8n) | ((a & ~0xfffn) << 32n) | (b & 0xffn) | ((b & ~0xffn) << 12n);
}

const MINORBITS = 20n;

/** major and minor of a kernel kdev_t. */
export function decodeKdev(dev: number | bigint): DevNumber {
  const d = BigInt(dev);
  return { major: Number(d >> MINORBITS), minor: Number(d & ((1n << MINORBITS) - 1n)) };
}

/** A kernel kdev_t from major and minor. */
export function encodeKdev(major: number | bigint, minor: number | bigint): bigint {
  return (BigInt(major) << MINORBITS) | BigInt(minor);
}
