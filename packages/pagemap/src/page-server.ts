/**
 * CRIU's page-server wire protocol (criu/page-xfer.c) as a library: a server that receives
 * pagemaps and pages into an images directory, and a client sink a dump writes into.
 *
 * Every message starts with a 32-byte little-endian header
 *   u32 cmd | u32 padding | u64 nr_pages | u64 vaddr | u64 dst_id
 * cmd's low 16 bits are the command, the high 16 bits the PE_* flags of PS_IOV_ADD_F.
 * dst_id is (image id << 8) | type, type 1 for a task pagemap and 2 for a shmem one.
 * Replies: OPEN2 → 1 byte has_parent; PARENT → int32 has_parent; CLOSE → int32 status.
 * ADD_F with PE_PRESENT is followed by nr_pages * 4096 bytes of page data.
 */
import type { Duplex } from 'node:stream';
import { CrtoolsError, ExitCode, silentLogger, type Logger } from '@crtools/common';
import {
  PAGE_SIZE,
  PE_LAZY,
  PE_PARENT,
  PE_PRESENT,
  PS_IOV_ADD,
  PS_IOV_ADD_F,
  PS_IOV_CLOSE,
  PS_IOV_FORCE_CLOSE,
  PS_IOV_GET,
  PS_IOV_HOLE,
  PS_IOV_OPEN,
  PS_IOV_OPEN2,
  PS_IOV_PARENT,
  PS_TYPE_PID,
  PS_TYPE_SHMEM,
} from './constants.js';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { openPageReader, type PageReader } from './reader.js';
import { createPagesIdAllocator, openLocalSink, pagemapFileName, type LocalSink, type PagemapKind, type PagemapSink, type SinkItem } from './sink.js';

export const PS_IOV_SIZE = 32;

export interface PsIov {
  cmd: number;
  nrPages: bigint;
  vaddr: bigint;
  dstId: bigint;
}

export function encodePsIov(m: PsIov): Buffer {
  const b = Buffer.alloc(PS_IOV_SIZE);
  b.writeUInt32LE(m.cmd >>> 0, 0);
  b.writeBigUInt64LE(m.nrPages, 8);
  b.writeBigUInt64LE(m.vaddr, 16);
  b.writeBigUInt64LE(m.dstId, 24);
  return b;
}

export function decodePsIov(b: Buffer): PsIov {
  if (b.length < PS_IOV_SIZE) throw new CrtoolsError('PS_SHORT_HEADER', `page-server header of ${b.length} bytes`, { exitCode: ExitCode.BAD_INPUT });
  return { cmd: b.readUInt32LE(0), nrPages: b.readBigUInt64LE(8), vaddr: b.readBigUInt64LE(16), dstId: b.readBigUInt64LE(24) };
}

export const encodePsCmd = (cmd: number, flags = 0): number => ((flags << 16) | cmd) >>> 0;
export const decodePsCmd = (cmd: number): { cmd: number; flags: number } => ({ cmd: cmd & 0xffff, flags: cmd >>> 16 });

export function encodeDstId(kind: PagemapKind, id: number | bigint): bigint {
  return (BigInt(id) << 8n) | BigInt(kind === 'shmem' ? PS_TYPE_SHMEM : PS_TYPE_PID);
}

/** Also accepts the type numbers older CRIU versions sent (see decode_pm in criu/page-xfer.c). */
export function decodeDstId(dstId: bigint): { kind: PagemapKind; id: bigint } | null {
  const type = Number(dstId & 0xffn);
  const id = dstId >> 8n;
  if ([PS_TYPE_PID, 10, 11, 16, 17].includes(type)) return { kind: 'task', id };
  if ([PS_TYPE_SHMEM, 27, 28, 29, 32, 33, 34].includes(type)) return { kind: 'shmem', id };
  return null;
}

/** Reads exact byte counts from a stream, in order. */
class ExactReader {
  private chunks: Buffer[] = [];
  private have = 0;
  private ended = false;
  private error: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly s: Duplex) {
    s.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.have += c.length;
      if (this.have >= 1 << 24) s.pause(); // bound what we buffer
      this.notify();
    });
    s.on('end', () => {
      this.ended = true;
      this.notify();
    });
    s.on('error', (e) => {
      this.error = e;
      this.notify();
    });
    s.on('close', () => {
      this.ended = true;
      this.notify();
    });
  }

  private notify() {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Resolves with n bytes, or null on a clean end of stream before any byte of them. */
  async read(n: number): Promise<Buffer | null> {
    if (n === 0) return Buffer.alloc(0);
    while (this.have < n) {
      if (this.error) throw peerGone(this.s, this.error);
      if (this.ended) {
        if (this.have === 0) return null;
        throw new CrtoolsError('PS_TRUNCATED', `page-server stream ended inside a message (${this.have}/${n} bytes)`, { exitCode: ExitCode.BAD_INPUT });
      }
      if (this.s.isPaused()) this.s.resume();
      await new Promise<void>((r) => (this.wake = r));
    }
    // take only the chunks needed, never copy the whole backlog
    let out: Buffer;
    const first = this.chunks[0];
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let got = 0;
      while (got < n) {
        const c = this.chunks[0];
        const k = Math.min(c.length, n - got);
        c.copy(out, got, 0, k);
        got += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.have -= n;
    if (this.have < 1 << 24 && this.s.isPaused()) this.s.resume();
    return out;
  }
}

/** The peer is gone (reset, closed, or the socket failed): one error for every way of seeing it. */
function peerGone(s: Duplex, cause?: unknown): CrtoolsError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new CrtoolsError('PS_PEER_GONE', `the page-server connection was lost${code ? ` (${code})` : ''}`, { exitCode: ExitCode.FAILED, cause });
}

/** Write and wait until the stream took it; rejects (never hangs) when the socket fails or closes first. */
function write(s: Duplex, b: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (s.destroyed || s.writableEnded) return reject(peerGone(s));
    let done = false;
    const fail = (e?: unknown) => {
      if (done) return;
      done = true;
      s.off('error', fail);
      s.off('close', onClose);
      reject(peerGone(s, e));
    };
    const onClose = () => fail();
    s.once('error', fail);
    s.once('close', onClose);
    s.write(b, (e) => {
      if (done) return;
      done = true;
      s.off('error', fail);
      s.off('close', onClose);
      if (e) reject(peerGone(s, e));
      else resolve();
    });
  });
}

/** Queue bytes; wait only when the stream asks for it (backpressure), failing if it dies meanwhile. */
function push(s: Duplex, b: Buffer): Promise<void> {
  if (s.destroyed || s.writableEnded) return Promise.reject(peerGone(s));
  if (s.write(b)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const off = () => {
      s.off('drain', onDrain);
      s.off('error', onFail);
      s.off('close', onFail);
    };
    const onDrain = () => {
      off();
      resolve();
    };
    const onFail = (e?: unknown) => {
      off();
      reject(peerGone(s, e));
    };
    s.once('drain', onDrain);
    s.once('error', onFail);
    s.once('close', onFail);
  });
}

/**
 * The lazy pages a 'lazy' page server answers PS_IOV_GET from: `run` says how many pages of
 * task `id` from vaddr (at most `want`) it has in one piece (0: none there), `read` copies them.
 */
export interface LazyPageSource {
  run(id: bigint, vaddr: bigint, want: bigint): number | Promise<number>;
  read(id: bigint, vaddr: bigint, dest: Buffer): void | Promise<void>;
  close?(): void;
}

/** The lazy pages of the images in `dir` (pagemap entries flagged PE_LAZY with their data). */
export function imagesLazySource(dir: string): LazyPageSource {
  const readers = new Map<bigint, Promise<PageReader>>();
  const reader = (id: bigint) => {
    let r = readers.get(id);
    if (!r) readers.set(id, (r = openPageReader({ dir, id })));
    return r;
  };
  return {
    async run(id, vaddr, want) {
      return lazyRun(await reader(id), vaddr, want);
    },
    async read(id, vaddr, dest) {
      (await reader(id)).read(vaddr, dest);
    },
    close() {
      for (const r of readers.values()) r.then((x) => x.close(), () => {});
    },
  };
}

export interface PageServerOptions {
  /** Images directory the received pagemaps and pages are written to. */
  dir: string;
  /** First pages image id (CRIU's page server starts at 0x10001). */
  firstPagesId?: number;
  /** Largest data piece handled at once (default 8 MiB). */
  chunkBytes?: number;
  /**
   * 'receive' (default): a dump sends pagemaps and pages into `dir`, the session must end with
   * PS_IOV_CLOSE. 'lazy': `criu page-server --lazy-pages` role, answering PS_IOV_GET requests
   * for lazy pages from the images already in `dir`; the session ends when the peer closes.
   */
  mode?: 'receive' | 'lazy';
  /**
   * CRIU's --auto-dedup on the page server: the pages a received entry holds are punched out of
   * the parent snapshot (`<dir>/parent`, linked from --prev-images-dir) as they are written.
   */
  autoDedup?: boolean;
  /**
   * 'lazy' mode: where the lazy pages come from (default: the pages images of `dir`). `dump
   * --lazy-pages` serves the pages it kept in its memory instead.
   */
  lazySource?: LazyPageSource;
  /** After PS_IOV_CLOSE, wait for the peer to close the connection, as CRIU's server does (default true). */
  waitPeerClose?: boolean;
  logger?: Logger;
}

/**
 * Serve one page-server session on a connected socket: receive until PS_IOV_CLOSE (or
 * FORCE_CLOSE), answering as CRIU does. Resolves with the list of images written.
 * In 'lazy' mode PS_IOV_GET requests are answered from the images of `dir`: the reply is an
 * ADD_F header whose nr_pages may be smaller than asked (clamped to the end of the pagemap
 * entry holding vaddr), then the data; a request for a page that is not a lazy page with data
 * in the images fails the session, as in CRIU. `closed`: the peer ended with PS_IOV_CLOSE (a
 * lazy-pages daemon that completed its tasks), not only by closing the connection.
 */
export async function servePageServer(sock: Duplex, o: PageServerOptions): Promise<{ pagemaps: string[]; closed: boolean }> {
  const log = o.logger ?? silentLogger;
  const nextPagesId = createPagesIdAllocator(o.firstPagesId ?? 0x10001);
  const chunk = Math.max(PAGE_SIZE, o.chunkBytes ?? 8 << 20);
  const rd = new ExactReader(sock);
  let curDst: bigint | null = null;
  let curSink: LocalSink | null = null;
  const written: string[] = [];
  // every file this session created: removed again when it fails (no half-written images)
  const created: string[] = [];
  let flushed = false;
  const lazy = o.mode === 'lazy';
  const lazySource = lazy ? (o.lazySource ?? imagesLazySource(o.dir)) : undefined;

  // Received entries and data are handed to the sink in batches (fewer, larger writes).
  let pending: SinkItem[] = [];
  let pendingBytes = 0;
  const flushPending = async () => {
    if (pending.length && curSink) await curSink.write(pending);
    pending = [];
    pendingBytes = 0;
  };
  const closeCur = async () => {
    await flushPending();
    const s = curSink;
    curSink = null;
    curDst = null;
    if (s) {
      await s.close();
      written.push(s.pagemapPath);
    }
  };
  const openCur = async (dstId: bigint): Promise<LocalSink> => {
    const d = decodeDstId(dstId);
    if (!d) throw new CrtoolsError('PS_BAD_DST', `page server: unknown pagemap type in dst_id 0x${dstId.toString(16)}`, { exitCode: ExitCode.BAD_INPUT });
    await closeCur();
    log.info(`page-server: opening ${d.kind} ${d.id}`);
    const sink = await openLocalSink({ dir: o.dir, id: d.id, kind: d.kind, pagesId: nextPagesId(), ...(o.autoDedup ? { autoDedup: true } : {}) });
    created.push(sink.pagemapPath, sink.pagesPath);
    curSink = sink;
    curDst = dstId;
    return sink;
  };

  try {
    for (;;) {
      const hdr = await rd.read(PS_IOV_SIZE);
      if (!hdr) break;
      const pi = decodePsIov(hdr);
      const { cmd, flags: cmdFlags } = decodePsCmd(pi.cmd);
      flushed = false;
      if (cmd === PS_IOV_OPEN) {
        await openCur(pi.dstId);
      } else if (cmd === PS_IOV_OPEN2) {
        const sink = await openCur(pi.dstId);
        await write(sock, Buffer.from([sink.hasParent ? 1 : 0]));
      } else if (cmd === PS_IOV_PARENT) {
        const d = decodeDstId(pi.dstId);
        if (!d) throw new CrtoolsError('PS_BAD_DST', `page server: unknown pagemap type in dst_id 0x${pi.dstId.toString(16)}`, { exitCode: ExitCode.BAD_INPUT });
        const b = Buffer.alloc(4);
        b.writeInt32LE(existsSync(join(o.dir, 'parent', pagemapFileName(d.kind, d.id))) ? 1 : 0);
        await write(sock, b);
      } else if (cmd === PS_IOV_ADD_F || cmd === PS_IOV_ADD || cmd === PS_IOV_HOLE) {
        const flags = cmd === PS_IOV_ADD_F ? cmdFlags : cmd === PS_IOV_ADD ? PE_PRESENT : PE_PARENT;
        // CRIU tolerates data without an OPEN ("deprecated IO w/o open") by opening on the fly
        const sink: LocalSink = curSink !== null && curDst === pi.dstId ? curSink : await openCur(pi.dstId);
        if (pi.nrPages === 0n || pi.nrPages > 1n << 32n) throw new CrtoolsError('PS_BAD_IOV', `page server: bad nr_pages ${pi.nrPages}`, { exitCode: ExitCode.BAD_INPUT });
        const nr = Number(pi.nrPages);
        pending.push({ entry: { vaddr: pi.vaddr, nrPages: nr, flags } });
        if (flags & PE_PRESENT) {
          let left = nr * PAGE_SIZE;
          while (left > 0) {
            const n = Math.min(left, chunk);
            const data = await rd.read(n);
            if (!data) throw new CrtoolsError('PS_TRUNCATED', 'page server: connection closed inside page data', { exitCode: ExitCode.BAD_INPUT });
            pending.push({ data });
            pendingBytes += n;
            if (pendingBytes >= chunk) await flushPending();
            left -= n;
          }
        }
      } else if (cmd === PS_IOV_CLOSE || cmd === PS_IOV_FORCE_CLOSE) {
        await closeCur();
        const b = Buffer.alloc(4);
        b.writeInt32LE(0);
        await write(sock, b);
        flushed = true;
        break;
      } else if (cmd === PS_IOV_GET) {
        if (!lazySource) throw new CrtoolsError('PS_UNSUPPORTED', 'page server: PS_IOV_GET outside lazy mode', { exitCode: ExitCode.UNSUPPORTED });
        const nr = await lazySource.run(pi.dstId, pi.vaddr, pi.nrPages);
        if (nr === 0) throw new CrtoolsError('PS_NO_PAGES', `page server: no lazy pages of ${pi.dstId} at ${pi.vaddr.toString(16)}`, { exitCode: ExitCode.FAILED });
        const data = Buffer.allocUnsafe(nr * PAGE_SIZE);
        await lazySource.read(pi.dstId, pi.vaddr, data);
        await write(sock, encodePsIov({ cmd: encodePsCmd(PS_IOV_ADD_F, PE_PRESENT), nrPages: BigInt(nr), vaddr: pi.vaddr, dstId: pi.dstId }));
        await write(sock, data);
      } else {
        throw new CrtoolsError('PS_BAD_CMD', `page server: unknown command ${pi.cmd}`, { exitCode: ExitCode.BAD_INPUT });
      }
    }
    if (!flushed && !lazy) throw new CrtoolsError('PS_NOT_FLUSHED', 'page server: the connection ended before the dump sent all its pages (no PS_IOV_CLOSE)', { exitCode: ExitCode.FAILED });
    if (flushed && o.waitPeerClose !== false) {
      // as CRIU: the peer closes first (no TIME_WAIT on the server's side); anything else it sends is an error
      const more = await rd.read(1);
      if (more) throw new CrtoolsError('PS_BAD_CMD', 'page server: unexpected data after PS_IOV_CLOSE', { exitCode: ExitCode.BAD_INPUT });
    }
    return { pagemaps: written, closed: flushed };
  } catch (e) {
    if (!lazy) {
      await closeCur().catch(() => {});
      for (const f of created) rmSync(f, { force: true });
    }
    throw e;
  } finally {
    await closeCur().catch(() => {});
    lazySource?.close?.();
  }
}

/** How many pages from vaddr (at most `want`) a lazy entry with data holds. */
function lazyRun(r: PageReader, vaddr: bigint, want: bigint): number {
  if (vaddr % BigInt(PAGE_SIZE) !== 0n) return 0;
  const i = r.entryAt(vaddr);
  const c = r.columns;
  if (i < 0 || !(c.flags[i]! & PE_LAZY) || !(c.flags[i]! & PE_PRESENT)) return 0;
  const left = c.nrPages[i]! - (Number(vaddr) - c.vaddr[i]!) / PAGE_SIZE;
  return Number(want < BigInt(left) ? want : BigInt(left));
}

/** The dump side of a page-server connection. */
export class PageServerClient {
  private readonly rd: ExactReader;
  constructor(private readonly sock: Duplex) {
    this.rd = new ExactReader(sock);
  }

  /** Queue bytes on the socket; wait only when the socket asks us to (backpressure). */
  private push(b: Buffer): Promise<void> {
    return push(this.sock, b);
  }

  private async send(m: PsIov, data?: Buffer): Promise<void> {
    await write(this.sock, encodePsIov(m));
    if (data && data.length) await write(this.sock, data);
  }

  private async reply(n: number): Promise<Buffer> {
    const b = await this.rd.read(n);
    if (!b) throw new CrtoolsError('PS_NO_ANSWER', "the page server doesn't answer", { exitCode: ExitCode.FAILED });
    return b;
  }

  /** PS_IOV_PARENT: does the server's images directory have a parent for this pagemap? */
  async checkParent(kind: PagemapKind, id: number | bigint): Promise<boolean> {
    await this.send({ cmd: PS_IOV_PARENT, nrPages: 0n, vaddr: 0n, dstId: encodeDstId(kind, id) });
    return (await this.reply(4)).readInt32LE(0) !== 0;
  }

  /** PS_IOV_OPEN2 and a sink that sends PS_IOV_ADD_F messages with their data. */
  async openSink(kind: PagemapKind, id: number | bigint): Promise<PagemapSink> {
    const dstId = encodeDstId(kind, id);
    await this.send({ cmd: PS_IOV_OPEN2, nrPages: 0n, vaddr: 0n, dstId });
    const hasParent = (await this.reply(1))[0] !== 0;
    const self = this;
    return {
      hasParent,
      async write(items: readonly SinkItem[]) {
        for (const it of items) {
          if (it.entry) {
            const e = it.entry;
            await self.push(encodePsIov({ cmd: encodePsCmd(PS_IOV_ADD_F, e.flags), nrPages: BigInt(e.nrPages), vaddr: e.vaddr, dstId }));
          }
          // copied: the writer reuses its buffers once write() resolves
          if (it.data && it.data.length) await self.push(Buffer.from(it.data));
        }
      },
      async close() {
        /* the next OPEN or the final CLOSE ends this pagemap on the server */
      },
    };
  }

  /**
   * PS_IOV_GET: ask a lazy page server for up to `dest.length / 4096` pages of task `pid` from
   * `vaddr`. Resolves with the number of pages received into dest (may be fewer than asked).
   */
  async getPages(pid: number | bigint, vaddr: bigint, dest: Buffer): Promise<number> {
    const want = Math.floor(dest.length / PAGE_SIZE);
    await this.send({ cmd: PS_IOV_GET, nrPages: BigInt(want), vaddr, dstId: BigInt(pid) });
    const h = decodePsIov(await this.reply(PS_IOV_SIZE));
    const n = Number(h.nrPages);
    if (h.vaddr !== vaddr || n > want) throw new CrtoolsError('PS_BAD_REPLY', `page server answered ${n} pages at ${h.vaddr.toString(16)} for ${want} at ${vaddr.toString(16)}`, { exitCode: ExitCode.BAD_INPUT });
    (await this.reply(n * PAGE_SIZE)).copy(dest);
    return n;
  }

  /** PS_IOV_CLOSE (or FORCE_CLOSE) and the server's status (0 when all data arrived). */
  async close(force = false): Promise<number> {
    await this.send({ cmd: force ? PS_IOV_FORCE_CLOSE : PS_IOV_CLOSE, nrPages: 0n, vaddr: 0n, dstId: 0n });
    return (await this.reply(4)).readInt32LE(0);
  }
}
