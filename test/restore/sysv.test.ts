/**
 * SysV IPC objects of a tree's own IPC namespace (issue 17): a shared memory segment with its
 * contents, a semaphore set with its values and a message queue with messages of several types
 * are dumped as CRIU 4.2 dumps them (ipcns-shm/sem/msg-<id>.img, the segment's pages in
 * pagemap-shmem-<id>.img) and made again in the restored namespace with the same ids, keys,
 * owners and modes before any task runs; the tasks' attaches of the segment (shmat) are attached
 * again at the same addresses with the same flags. Workload test/workloads/sysvipc.c.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { decodeImage } from '@crtools/images';
import { fingerprint } from '@crtools/inspect';
import { askVerdict, critDecode, killAllStarted, treePids } from '../dump/helpers.js';
import { killRestored, roundTrip } from './roundtrip.js';

afterEach(killRestored);
afterAll(() => killAllStarted());

const VERDICT = 'check ok shm=1 sem=1 msg=1 child=1';

describe('SysV IPC objects in the tree\'s IPC namespace', () => {
  it('sysvipc round trips twice: shm contents, semaphore values, queued messages with the same ids (fingerprint), verdict ok', () => {
    roundTrip('sysvipc', [], (pid, state) => {
      expect(askVerdict(state, pid, 10_000)).toBe(VERDICT);
      const objs = fingerprint(pid).namespaces!.ipc!.objects;
      expect(objs.map((o) => [o.kind, o.id, o.key.toString(16), o.mode, o.size])).toEqual([
        ['shm', 40, '5eed0001', '640', 3 * 4096 + 100],
        ['sem', 0, '5eed0002', '604', 5],
        ['msg', 1, '5eed0003', '620', 5],
      ]);
    }, true, undefined, [], (dir, pid) => {
      const ids = critDecode(`${dir}/ids-${pid}.img`).entries[0];
      const ipc = ids.ipc_ns_id;
      // the images as CRIU 4.2 writes them (Debian's crit as the reference decoder, but for the
      // segment's entry: crit reads a payload after it even with in_pagemaps, which CRIU 4.2
      // does not write; images README)
      const shm = decodeImage(readFileSync(`${dir}/ipcns-shm-${ipc}.img`)).entries;
      expect(shm).toEqual([{ desc: { key: 0x5eed0001, uid: 0, gid: 0, cuid: 0, cgid: 0, mode: 0o640, id: 40 }, size: BigInt(3 * 4096 + 100), in_pagemaps: true }]);
      expect(critDecode(`${dir}/pagemap-shmem-40.img`).entries.length).toBeGreaterThan(1);
      const sem = critDecode(`${dir}/ipcns-sem-${ipc}.img`).entries;
      expect(sem).toEqual([{ desc: { key: 0x5eed0002, uid: 0, gid: 0, cuid: 0, cgid: 0, mode: 0o604, id: 0 }, nsems: 5, extra: [0, 7, 14, 21, 28] }]);
      const msg = critDecode(`${dir}/ipcns-msg-${ipc}.img`).entries;
      expect(msg).toHaveLength(1);
      expect(msg[0]).toMatchObject({ desc: { key: 0x5eed0003, mode: 0o620, id: 1 }, qnum: 5 });
      const types = (msg[0].extra as { mtype: number }[]).filter((_, i) => i % 2 === 0).map((m) => m.mtype);
      expect(types).toEqual([3, 1, 7, 3, 2]);
      expect(Buffer.from((msg[0].extra as string[])[5]!, 'base64').toString()).toBe('seven, the longest message of the queue');
      // stats-dump counts the segment's pages with the shared memory, as CRIU: the pages images
      // hold exactly what it says was written (zdtm's page count check)
      expect(existsSync(`${dir}/stats-dump`)).toBe(true);
      const st = (decodeImage(readFileSync(`${dir}/stats-dump`)).entries[0] as { dump: { pages_written: bigint; shpages_written: bigint } }).dump;
      const inImages = readdirSync(dir).filter((f) => /^pages-\d+\.img$/.test(f)).reduce((n, f) => n + statSync(`${dir}/${f}`).size / 4096, 0);
      expect(Number(st.pages_written) + Number(st.shpages_written)).toBe(inImages);
      expect(Number(st.shpages_written)).toBeGreaterThanOrEqual(4);
    });
  });

  it('sysvipc mapped round trips twice: the segment attached again by the root (fixed address) and the child (inherited, read-write and read-only), same maps and fingerprint, verdict ok', () => {
    roundTrip('sysvipc', ['mapped'], (pid, state) => {
      expect(askVerdict(state, pid, 10_000)).toBe(VERDICT);
      const kid = treePids(pid).find((p) => p !== pid)!;
      // the attaches, where and how the tasks had them
      const attaches = (p: number) => readFileSync(`/proc/${p}/maps`, 'utf8').split('\n').filter((l) => / \/SYSV5eed0001 /.test(l)).map((l) => l.split(/\s+/)[1]);
      expect(attaches(pid)).toEqual(['rw-s']);
      expect(readFileSync(`/proc/${pid}/maps`, 'utf8')).toMatch(/^7e0000000000-7e0000004000 rw-s 00000000 .* \/SYSV5eed0001 /m);
      // the child: the root's attach (inherited by fork) and its own two
      expect(attaches(kid).sort()).toEqual(['r--s', 'rw-s', 'rw-s']);
    }, true, undefined, [], (dir, pid) => {
      const mm = critDecode(`${dir}/mm-${pid}.img`).entries[0];
      const v = mm.vmas.find((x: { start: number }) => x.start === 0x7e0000000000);
      expect(v).toMatchObject({ end: 0x7e0000004000, pgoff: 0, shmid: 40 });
      expect(v.status & (1 << 10)).toBe(1 << 10); // VMA_AREA_SYSVIPC
    });
  });
});
