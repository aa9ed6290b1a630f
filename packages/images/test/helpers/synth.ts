import { FT, type FieldSpec, type MessageSpec } from '../../src/schema.js';
import { magicByName, messageSpec, type Entry, type MagicInfo } from '../../src/index.js';

/**
 * A deterministic sample entry for a message: every field set (repeated ones with two values),
 * values varied by field number so that flags, dictionaries, hex and big u64s all show up.
 */
export function sampleMessage(spec: MessageSpec, depth = 0, seed = 1): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const f of spec.fields) {
    if (f.type === FT.MESSAGE && depth >= 3 && !f.required) continue;
    if (f.repeated) {
      const n = f.ipadd ? 4 : 2;
      o[f.name] = Array.from({ length: n }, (_, i) => sampleValue(f, depth, seed + i));
    } else o[f.name] = sampleValue(f, depth, seed);
  }
  return o;
}

function sampleValue(f: FieldSpec, depth: number, seed: number): unknown {
  const k = f.id + seed;
  switch (f.type) {
    case FT.INT32:
    case FT.SFIXED32:
    case FT.SINT32:
      return k % 3 === 0 ? -k : k;
    case FT.UINT32:
    case FT.FIXED32:
      if (f.dict) return [1, 2, 10][k % 3]!;
      // flag values avoid the bits only CRIU 4.x names (MAP_DROPPABLE, VMA_AREA_MEMFD/SHSTK/UPROBES),
      // so that Debian's 3.17 tables render them the same way; unknown bits show as hex in both
      if (f.flags) return [0x7, 0x223, 0x40000201][k % 3]!;
      return k % 4 === 0 ? 0xfffffff0 : k * 1000 + 7;
    case FT.INT64:
    case FT.SINT64:
    case FT.SFIXED64:
      return k % 2 ? -(2n ** 62n) + BigInt(k) : BigInt(k);
    case FT.UINT64:
    case FT.FIXED64:
      return k % 2 ? 0xffffffffff600000n + BigInt(k) : BigInt(k) * 4096n;
    case FT.BOOL:
      return k % 2 === 0;
    case FT.STRING:
      return `s${k}/é`;
    case FT.BYTES:
      return f.conv ? Buffer.from(`\0sock-${k}=x`) : Buffer.from([0, k & 255, 0xff, 0x3d]);
    case FT.ENUM: {
      const names = [...f.enumValues!.keys()];
      return names[k % names.length];
    }
    case FT.MESSAGE:
      return sampleMessage(f.message!, depth + 1, seed);
    default:
      return 1.5;
  }
}

/** Sample images of every protobuf kind, with consistent payloads where the kind carries one. */
export function sampleImages(): { label: string; magic: string; entries: Entry[] }[] {
  const out: { label: string; magic: string; entries: Entry[] }[] = [];
  const kinds = ['INVENTORY', 'PSTREE', 'FDINFO', 'CORE', 'IDS', 'VMAS', 'PIPES', 'FIFO', 'SIGACT', 'UNIXSK', 'INETSK', 'PACKETSK', 'ITIMERS',
    'POSIX_TIMERS', 'UTSNS', 'CREDS', 'IPC_VAR', 'REG_FILES', 'EXT_FILES', 'FS', 'MM', 'REMAP_FPATH', 'EVENTFD_FILE', 'EVENTPOLL_FILE',
    'EVENTPOLL_TFD', 'SIGNALFD', 'INOTIFY_FILE', 'INOTIFY_WD', 'MNTS', 'NETDEV', 'NETNS', 'TTY_FILES', 'TTY_INFO', 'TTY_DATA', 'FILE_LOCKS',
    'RLIMIT', 'FANOTIFY_FILE', 'FANOTIFY_MARK', 'SIGNAL', 'NETLINK_SK', 'NS_FILES', 'TUNFILE', 'CGROUP', 'TIMERFD', 'CPUINFO', 'USERNS',
    'SECCOMP', 'BINFMT_MISC', 'AUTOFS', 'FILES', 'MEMFD_INODE', 'TIMENS', 'PIDNS', 'BPFMAP_FILE', 'APPARMOR', 'PIDFD', 'STATS', 'IRMAP_CACHE'];
  for (const name of kinds) {
    const info = magicByName(name)!;
    const spec = messageSpec(info.message!);
    out.push({ label: name, magic: name, entries: [sampleMessage(spec, 0, 1), sampleMessage(spec, 0, 2)] });
  }
  const withPayload = (info: MagicInfo, fields: (e: Record<string, unknown>, i: number) => Buffer) => {
    const spec = messageSpec(info.message!);
    const entries = [1, 2, 3].map((seed, i) => {
      const e = sampleMessage(spec, 0, seed) as Entry;
      e.extra = fields(e, i);
      return e;
    });
    out.push({ label: info.name, magic: info.name, entries });
  };
  const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255));
  withPayload(magicByName('PIPES_DATA')!, (e, i) => ((e['bytes'] = [0, 3, 100][i]), bytes(e['bytes'] as number, i)));
  withPayload(magicByName('FIFO_DATA')!, (e, i) => ((e['bytes'] = [5, 0, 70][i]), bytes(e['bytes'] as number, i)));
  withPayload(magicByName('SK_QUEUES')!, (e, i) => ((e['length'] = [1, 0, 58][i]), bytes(e['length'] as number, i)));
  withPayload(magicByName('TCP_STREAM')!, (e, i) => ((e['inq_len'] = [2, 0, 9][i]), (e['outq_len'] = [3, 4, 0][i]), bytes([5, 4, 9][i]!, i)));
  withPayload(magicByName('BPFMAP_DATA')!, (e, i) => ((e['keys_bytes'] = [4, 8, 0][i]), (e['values_bytes'] = [4, 1, 0][i]), bytes([8, 9, 0][i]!, i)));
  withPayload(magicByName('IPCNS_SHM')!, (e, i) => {
    e['in_pagemaps'] = false;
    e['size'] = BigInt([5, 8, 0][i]!);
    const b = Buffer.alloc(Math.ceil([5, 8, 0][i]! / 4) * 4);
    bytes([5, 8, 0][i]!, i).copy(b);
    return b;
  });
  withPayload(magicByName('IPCNS_SEM')!, (e, i) => {
    const n = [3, 4, 1][i]!;
    e['nsems'] = n;
    const b = Buffer.alloc(Math.ceil((n * 2) / 8) * 8);
    for (let j = 0; j < n; j++) b.writeUInt16LE(j * 1000 + i, 2 * j);
    return b;
  });
  withPayload(magicByName('IPCNS_MSG')!, (e, i) => {
    const q = [2, 0, 1][i]!;
    e['qnum'] = q;
    const parts: Buffer[] = [];
    for (let j = 0; j < q; j++) {
      const msize = [3, 9][j]!;
      // ipc_msg: mtype (u64, field 1) = 7, msize (u32, field 2)
      const body = Buffer.from([0x08, 7, 0x10, msize]);
      const len = Buffer.alloc(4);
      len.writeUInt32LE(body.length);
      const data = Buffer.alloc(Math.ceil(msize / 8) * 8);
      bytes(msize, j).copy(data);
      parts.push(len, body, data);
    }
    return Buffer.concat(parts);
  });
  // SysV shm as CRIU 4.2 writes it: contents in pagemaps, no payload after the entry
  const shm = messageSpec('ipc_shm_entry');
  out.push({
    label: 'IPCNS_SHM (in pagemaps)',
    magic: 'IPCNS_SHM',
    entries: [1, 2].map((seed) => ({ ...sampleMessage(shm, 0, seed), in_pagemaps: true, size: 4099n })),
  });
  // ghost files: contents after the entry, or in chunks
  const gf = messageSpec('ghost_file_entry');
  const plain = sampleMessage(gf, 0, 1) as Entry;
  plain['chunks'] = false;
  plain.extra = bytes(100, 3);
  out.push({ label: 'GHOST_FILE (contents)', magic: 'GHOST_FILE', entries: [plain] });
  const chunked = sampleMessage(gf, 0, 2) as Entry;
  chunked['chunks'] = true;
  const chunkSpec = messageSpec('ghost_chunk_entry');
  const chunks = [10, 0, 77].map((len, i) => {
    const c = sampleMessage(chunkSpec, 0, i) as Entry;
    c['len'] = BigInt(len);
    c.extra = bytes(len, i);
    return c;
  });
  out.push({ label: 'GHOST_FILE (chunks)', magic: 'GHOST_FILE', entries: [chunked, ...chunks] });
  // pagemap: head, then entries
  out.push({
    label: 'PAGEMAP',
    magic: 'PAGEMAP',
    entries: [sampleMessage(messageSpec('pagemap_head')), sampleMessage(messageSpec('pagemap_entry'), 0, 1), sampleMessage(messageSpec('pagemap_entry'), 0, 2)],
  });
  return out;
}
