/**
 * 64-bit values (addresses, flags, inodes, PFNs) are bigint in TypeScript and
 * '0x…' hex strings in JSON. These two helpers are the only conversion.
 */
export function toHex(v: bigint | number): string {
  return '0x' + BigInt(v).toString(16);
}

export function fromHex(s: string): bigint {
  if (!/^0x[0-9a-fA-F]+$/.test(s)) throw new TypeError(`not a hex string: ${JSON.stringify(s)}`);
  return BigInt(s);
}

/** JSON.stringify replacer that writes bigint as hex strings. */
export function hexReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? toHex(value) : value;
}
