/** Memory of the checkpoint: areas (mm-PID.img VMAs) → VmaPlans, shared memory objects, pages images checked. */
import { existsSync, statSync } from 'node:fs';
import { PAGE_SIZE_BIGINT } from '@crtools/common';
import { VMA_ANON_PRIVATE, VMA_ANON_SHARED, VMA_AREA_AIORING, VMA_AREA_GUARD, VMA_AREA_MEMFD, VMA_AREA_REGULAR, VMA_AREA_SOCKET, VMA_AREA_SYSVIPC, VMA_AREA_VDSO, VMA_AREA_VSYSCALL, VMA_AREA_VVAR, VMA_FILE_PRIVATE, VMA_FILE_SHARED, VMA_UNSUPP } from '@crtools/images';
import { badImage as badInput, big, FilePlanTable, hugetlbBits, isAnonShared, missingFile as missing, refuse as unsupported, SEAL, type MemfdPlans, type Obj } from '@crtools/files/plan';
import { type MemfdObjectPlan, type PageRun, type ShmemOwner, type VmaPlan } from '../plan.js';
import { MAP } from '@crtools/procfs';
import { coveredUpTo, endingAfterCursor } from '../areas.js';
import { hugePageBytes } from './hugetlb.js';

/**
 * The shared memory objects of a checkpoint. CRIU 4.2 writes MAP_SHARED|MAP_ANONYMOUS memory
 * the memfd way (a MEMFD file whose memfd.img inode is named /dev/zero; pages in
 * pagemap-shmem-<shmid>.img), older CRIU as VMA_ANON_SHARED areas naming the shmid directly:
 * one object per shmid, sized to cover every area that maps it. A real memfd (any other name)
 * is one object per memfd.img inode, its own size, shared by every descriptor (MEMFD files) and
 * every area (shared or private) that names the inode.
 */
export class ShmemTable {
  readonly objects: { shmid: number; size: bigint; memfd?: MemfdObjectPlan; hugetlb?: number; owner?: ShmemOwner }[] = [];
  private byKey = new Map<string, number>();
  constructor(private readonly memfds: MemfdPlans) {}

  /** Object index of a memfd-way area (file = its files.img entry). */
  memfd(file: Obj, v: VmaPlan, where: string): number {
    if (file.type !== 'MEMFD' || !file.memfd) throw unsupported(`${where}: mapping of a ${file.type} file as shared memory`);
    const id = Number(file.memfd.inode_id);
    const inode = this.memfds.inode(id, where);
    if (!isAnonShared(inode)) return this.memfdObject(id, where);
    const shared = v.kind === 'file-shared';
    if (!shared && hugetlbBits(inode) !== undefined) throw unsupported(`${where}: a private mapping of shared anonymous memory on huge pages`);
    // a private mapping (through a descriptor opened on a map_files link) takes the object as it
    // is: its pages past the object's end fault, as they did
    return this.anonObject(id, inode, shared ? v : undefined);
  }

  /** Object index of memfd.img inode `id`: a memfd, or shared anonymous memory (a descriptor opened on its map_files link). */
  memfdObject(id: number, where: string): number {
    const key = `memfd:${id}`;
    const have = this.byKey.get(key);
    if (have !== undefined) return have;
    const m = this.memfds.inode(id, where);
    if (isAnonShared(m)) return this.anonObject(id, m, undefined);
    const seals = Number(m.seals ?? 0);
    if (seals & ~KNOWN_SEALS) throw unsupported(`${where}: memfd "${m.name}" has seals 0x${seals.toString(16)}, some of which restore does not know`);
    const hugetlb = hugetlbBits(m);
    const i = this.objects.push({
      shmid: Number(m.shmid), size: big(m.size),
      memfd: { name: String(m.name), seals, uid: Number(m.uid), gid: Number(m.gid), mode: Number(m.mode ?? 0o100777) },
      ...(hugetlb !== undefined ? { hugetlb } : {}),
    }) - 1;
    this.byKey.set(key, i);
    return i;
  }

  /** Object index of a VMA_ANON_SHARED area (older CRIU's; on huge pages when its flags say MAP_HUGETLB). */
  anon(shmid: number, v: VmaPlan): number {
    return this.add(`anon:${shmid}`, shmid, 0n, v, v.flags & MAP.HUGETLB ? v.flags & MAP_HUGE_MASK : undefined);
  }

  /** shared anonymous memory kept the memfd way (memfd.img inode `m`): its own size and owner */
  private anonObject(id: number, m: Obj, v: VmaPlan | undefined): number {
    const owner = { uid: Number(m.uid), gid: Number(m.gid), mode: Number(m.mode ?? 0o100777) };
    return this.add(`memfd:${id}`, Number(m.shmid), big(m.size), v, hugetlbBits(m), owner);
  }

  /** the object of `key`, made the first time; a shared area `v` makes it at least as long as the area needs */
  private add(key: string, shmid: number, size: bigint, v: VmaPlan | undefined, hugetlb: number | undefined, owner?: ShmemOwner): number {
    let i = this.byKey.get(key);
    if (i === undefined) {
      i = this.objects.push({ shmid, size, ...(hugetlb !== undefined ? { hugetlb } : {}), ...(owner ? { owner } : {}) }) - 1;
      this.byKey.set(key, i);
    }
    const o = this.objects[i]!;
    const need = v ? v.pgoff + (v.end - v.start) : 0n;
    if (need > o.size) o.size = (need + 4095n) & ~4095n;
    return i;
  }
}

/**
 * A guard region entry of mm.img (CRIU 4.2: VMA_AREA_GUARD appended after the real areas, its
 * range and nothing else): no mapping of its own, but a range whose pages fault.
 */
export function isGuardEntry(v: Obj): boolean {
  return ((v.status >>> 0) & VMA_AREA_GUARD) !== 0;
}

/**
 * The guard ranges of a task, checked against its areas (`sorted` by start): page-aligned and
 * each page inside some area, since the kernel installs guards only in mappings.
 */
export function guardsFrom(entries: readonly Obj[], sorted: readonly VmaPlan[], pid: number): { start: bigint; end: bigint }[] {
  return entries.map((v) => {
    const start = big(v.start);
    const end = big(v.end);
    const where = `mm-${pid}.img: guard region ${start.toString(16)}-${end.toString(16)}`;
    if (end <= start || start % PAGE_SIZE_BIGINT || end % PAGE_SIZE_BIGINT) throw badInput(`${where} is not a page range`, { pid, image: `mm-${pid}.img` });
    if (coveredUpTo(sorted, start, end) < end) throw badInput(`${where} lies outside the task's mappings`, { pid, image: `mm-${pid}.img` });
    return { start, end };
  });
}

/** the seals a restore sets again (F_SEAL_SEAL, SHRINK, GROW, WRITE, FUTURE_WRITE, EXEC) */
const KNOWN_SEALS = SEAL.SEAL | SEAL.SHRINK | SEAL.GROW | SEAL.WRITE | SEAL.FUTURE_WRITE | SEAL.EXEC;
const O_RDWR = 2;
const MAP_SHARED = 0x01;
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;
/** mmap's huge page size bits (log2 of the size << 26) */
const MAP_HUGE_MASK = 0x3f << 26;

/**
 * mm.img's AIO rings, each checked against the task's areas: an area marked VMA_AREA_AIORING at
 * its address, of its length (the ring CRIU's restore or ours makes again there).
 */
export function aioRingsFrom(aios: readonly Obj[], vmas: readonly VmaPlan[], pid: number): { addr: bigint; len: bigint; nrReq: number }[] {
  const out = aios.map((a) => ({ addr: big(a.id), len: big(a.ring_len), nrReq: Number(a.nr_req) }));
  for (const r of out) {
    const v = vmas.find((x) => x.aio && x.start === r.addr);
    if (!v || v.end - v.start !== r.len || r.len % PAGE_SIZE_BIGINT !== 0n || r.nrReq <= 0) {
      throw badInput(`mm-${pid}.img: AIO ring ${r.addr.toString(16)} (${r.len} bytes, ${r.nrReq} requests) has no ring area of that size`, { pid });
    }
  }
  for (const v of vmas) {
    if (v.aio && !out.some((r) => r.addr === v.start)) throw badInput(`mm-${pid}.img: area ${v.start.toString(16)}-${v.end.toString(16)} is an AIO ring without its aios entry`, { pid });
  }
  return out;
}

export function vmaFrom(v: Obj, files: FilePlanTable, shmem: ShmemTable, pid: number): VmaPlan {
  const s = v.status >>> 0;
  if (s & VMA_AREA_GUARD) throw badInput(`pid ${pid}: guard region ${big(v.start).toString(16)}-${big(v.end).toString(16)} is not an area (isGuardEntry)`, { pid });
  // one object per area, its kind set and its other fields added below (each area spread from a
  // base object into a new one cost ~10x as much: ~70 ms for 60,000 areas here, ~6 so)
  const a: VmaPlan = { start: big(v.start), end: big(v.end), pgoff: big(v.pgoff), prot: v.prot, flags: v.flags, madv: big(v.madv ?? 0n), kind: 'anon' };
  if (v.cow_huge) a.cowHuge = true;
  // (the area's name only for a message: made for each of 60,000 areas it cost a restore ~30 ms)
  const where = () => `pid ${pid}: area ${a.start.toString(16)}-${a.end.toString(16)}`;
  const as = (kind: VmaPlan['kind']): VmaPlan => {
    a.kind = kind;
    return a;
  };
  if (s & VMA_AREA_VSYSCALL) return as('vsyscall');
  if (s & VMA_AREA_VVAR) return as('vvar');
  if (s & VMA_AREA_VDSO) return as('vdso');
  if (s & VMA_AREA_REGULAR && s & VMA_AREA_MEMFD && s & (VMA_FILE_SHARED | VMA_FILE_PRIVATE) && !(s & (VMA_AREA_SYSVIPC | VMA_UNSUPP))) {
    const shared = (s & VMA_FILE_SHARED) !== 0;
    // CRIU's guess when the image has no fdflags: read-write for a writable shared area
    a.kind = shared ? 'file-shared' : 'file-private';
    a.openFlags = Number(v.fdflags ?? (shared && a.prot & 2 ? O_RDWR : 0)) & ~0o100;
    a.shmem = shmem.memfd(files.entry(Number(v.shmid), where()), a, where());
    return a;
  }
  if (s & VMA_AREA_REGULAR && s & VMA_ANON_SHARED && !(s & (VMA_AREA_SYSVIPC | VMA_AREA_MEMFD | VMA_UNSUPP))) {
    a.kind = 'file-shared';
    a.shmem = shmem.anon(Number(v.shmid), a);
    return a;
  }
  // a SysV segment attached there (checked against the IPC namespace's segments: checkSysvAttaches)
  if (s & VMA_AREA_REGULAR && s & VMA_AREA_SYSVIPC && !(s & (VMA_AREA_MEMFD | VMA_UNSUPP))) {
    a.shmid = Number(v.shmid);
    return as('sysv');
  }
  // an AIO ring: private anonymous memory holding the dumped ring until the new one is moved over it
  if (s & VMA_AREA_AIORING && !(s & (VMA_AREA_SYSVIPC | VMA_AREA_SOCKET | VMA_AREA_MEMFD | VMA_UNSUPP | VMA_FILE_PRIVATE | VMA_FILE_SHARED))) {
    a.flags = (a.flags & ~MAP_SHARED) | MAP_PRIVATE | MAP_ANONYMOUS;
    a.aio = true;
    return as('anon');
  }
  // a packet socket's rings: mapped again (shared or private, as the kernel maps them: whole)
  // from the task's descriptor of the socket (socketAreas)
  if (s & VMA_AREA_REGULAR && s & VMA_AREA_SOCKET && !(s & (VMA_AREA_SYSVIPC | VMA_AREA_AIORING | VMA_AREA_MEMFD | VMA_UNSUPP | VMA_ANON_SHARED | VMA_FILE_PRIVATE | VMA_FILE_SHARED))) {
    if (a.pgoff !== 0n) throw unsupported(`${where()}: a part of a packet socket's rings is not restored`, { pid });
    a.socket = { fileId: Number(v.shmid), fd: -1 };
    return as('socket');
  }
  if (s & (VMA_AREA_SYSVIPC | VMA_AREA_SOCKET | VMA_AREA_AIORING | VMA_AREA_MEMFD | VMA_UNSUPP | VMA_ANON_SHARED)) {
    throw unsupported(`${where()}: this kind of mapping (status 0x${s.toString(16)}) is not restored yet`, { pid });
  }
  if (!(s & VMA_AREA_REGULAR)) throw unsupported(`${where()}: irregular mapping (status 0x${s.toString(16)})`, { pid });
  if (s & (VMA_FILE_PRIVATE | VMA_FILE_SHARED)) {
    const f = files.entry(Number(v.shmid), where());
    if (!f.reg) throw unsupported(`${where()}: mapped ${f.type} file`, { pid });
    const path = f.reg.name as string;
    a.kind = s & VMA_FILE_SHARED ? 'file-shared' : 'file-private';
    a.path = path;
    a.openFlags = Number(v.fdflags ?? 0) & ~0o100;
    const ghost = files.ghostOf(Number(v.shmid));
    if (ghost !== undefined) {
      a.ghost = ghost;
      return a;
    }
    if (files.gone(path)) throw missing(`${where()}: mapped file ${path} no longer exists`, path);
    const changed = files.changedSince(f.reg);
    if (changed) throw missing(`${where()}: mapped file ${path} ${changed}`, path);
    a.fileSize = f.reg.size === undefined ? undefined : big(f.reg.size);
    return a;
  }
  if (s & VMA_ANON_PRIVATE) return a;
  throw unsupported(`${where()}: unknown mapping (status 0x${s.toString(16)})`, { pid });
}

/**
 * A task's areas that map a packet socket's rings get the descriptor they are mapped from: the
 * task's own descriptor of that socket (CRIU 4.2 asks the same), which must be a packet socket
 * with rings of the area's size (RX then TX, as the kernel maps them).
 */
export function socketAreas(vmas: VmaPlan[], fds: readonly { fd: number; file: number }[], files: FilePlanTable, pid: number): void {
  for (const v of vmas) {
    if (v.kind !== 'socket' || !v.socket) continue;
    const where = `pid ${pid}: area ${v.start.toString(16)}-${v.end.toString(16)}`;
    const e = files.entry(v.socket.fileId, where);
    const psk = e.psk as Obj | undefined;
    if (!psk) throw unsupported(`${where}: a mapping of a ${String(e.type)} file (only packet sockets' rings are) is not restored`, { pid });
    const bytes = (r: Obj | undefined) => (r ? BigInt(Number(r.block_size)) * BigInt(Number(r.block_nr)) : 0n);
    const size = bytes(psk.rx_ring as Obj | undefined) + bytes(psk.tx_ring as Obj | undefined);
    if (size !== v.end - v.start) throw badInput(`${where}: maps packet socket ${v.socket.fileId} whose rings span ${size} bytes`, { pid });
    const index = files.index(v.socket.fileId, where, pid);
    const fd = fds.find((d) => d.file === index);
    if (!fd) throw unsupported(`${where}: maps packet socket ${v.socket.fileId}, which the task holds no descriptor of`, { pid });
    v.socket.fd = fd.fd;
  }
}

/**
 * Each SysV attach names a segment of the restored IPC namespace and covers it whole from its
 * start (shmat attaches a segment whole): anything else is refused.
 */
export function checkSysvAttaches(tasks: readonly { pid: number; vmas: VmaPlan[] }[], sysv: readonly { kind: string; id: number; size?: bigint; hugetlb?: number }[] | undefined): void {
  for (const t of tasks) {
    for (const v of t.vmas) {
      if (v.kind !== 'sysv') continue;
      const where = `pid ${t.pid}: area ${v.start.toString(16)}-${v.end.toString(16)}`;
      const seg = sysv?.find((o) => o.kind === 'shm' && o.id === v.shmid);
      if (!seg) throw unsupported(`${where}: an attach of SysV shared memory ${v.shmid}, which is no segment of the tree's own IPC namespace, is not restored`, { pid: t.pid });
      // (an attach spans whole pages of the segment: huge ones on huge pages)
      const unit = seg.hugetlb === undefined ? PAGE_SIZE_BIGINT : hugePageBytes(seg.hugetlb);
      if (v.pgoff !== 0n || unit <= 0n || v.end - v.start !== (((seg.size ?? 0n) + unit - 1n) & ~(unit - 1n))) throw unsupported(`${where}: a part of an attach of SysV shared memory ${v.shmid} is not restored`, { pid: t.pid });
    }
  }
}

/** A truncated pages image must fail while planning, not halfway through a restore. */
export function checkPagesImages(pages: PageRun[]): void {
  const ends = new Map<string, bigint>();
  for (const p of pages) {
    const end = p.offset + p.npages * PAGE_SIZE_BIGINT;
    if (end > (ends.get(p.path!) ?? 0n)) ends.set(p.path!, end);
  }
  for (const [path, end] of ends) {
    const have = existsSync(path) ? BigInt(statSync(path).size) : -1n;
    if (have < end) throw badInput(`${path}: pages image is ${have < 0n ? 'missing' : `${have} bytes`}, its pagemap needs ${end}`, { path, image: path });
  }
}


/**
 * The runs cut where areas meet (`sorted`: the task's areas by start). A pagemap entry may span
 * adjacent areas, since CRIU's dump and ours merge contiguous pages whatever area they lie in;
 * but the restored areas stay apart when their protections or madvise flags differ (a thread's
 * stack marked MADV_NOHUGEPAGE beside a heap), and UFFDIO_COPY fills one area at a time: a copy
 * across the boundary fails with ENOENT. Pages outside every area are left out (the caller has
 * refused those already).
 */
export function splitAtAreas(pages: readonly PageRun[], sorted: readonly VmaPlan[]): PageRun[] {
  const out: PageRun[] = [];
  const meeting = endingAfterCursor(sorted);
  for (const p of pages) {
    const end = p.vaddr + p.npages * PAGE_SIZE_BIGINT;
    for (let k = meeting(p.vaddr); k < sorted.length && sorted[k]!.start < end; k++) {
      const v = sorted[k]!;
      const from = v.start > p.vaddr ? v.start : p.vaddr;
      const to = v.end < end ? v.end : end;
      if (from === p.vaddr && to === end) out.push(p);
      else out.push({ ...p, vaddr: from, npages: (to - from) / PAGE_SIZE_BIGINT, offset: p.offset + (from - p.vaddr) });
    }
  }
  return out;
}
