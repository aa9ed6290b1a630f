/**
 * A classic socket filter (SO_ATTACH_FILTER) as sk_opts_entry.so_filter keeps it: one 64-bit
 * word per instruction, its fields in a fixed order whatever the machine's byte order (code in
 * bits 48-63, jt 40-47, jf 32-39, k 0-31), as CRIU 4.2 writes and reads them.
 */

/** struct sock_filter[] (8 bytes each: u16 code, u8 jt, u8 jf, u32 k) into so_filter's words */
export function filterWords(prog: Buffer): bigint[] {
  return Array.from({ length: prog.length / 8 }, (_, i) => {
    const at = 8 * i;
    return (BigInt(prog.readUInt16LE(at)) << 48n) | (BigInt(prog[at + 2]!) << 40n) | (BigInt(prog[at + 3]!) << 32n) | BigInt(prog.readUInt32LE(at + 4));
  });
}

/** so_filter's words back into struct sock_filter[] */
export function filterProgram(words: readonly (bigint | number)[]): Buffer {
  const b = Buffer.alloc(words.length * 8);
  words.forEach((w, i) => {
    const v = BigInt.asUintN(64, BigInt(w));
    b.writeUInt16LE(Number((v >> 48n) & 0xffffn), 8 * i);
    b[8 * i + 2] = Number((v >> 40n) & 0xffn);
    b[8 * i + 3] = Number((v >> 32n) & 0xffn);
    b.writeUInt32LE(Number(v & 0xffffffffn), 8 * i + 4);
  });
  return b;
}
