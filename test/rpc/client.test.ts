/**
 * @crtools/rpc's CriuClient against crtools' `criu swrk`: every request type, every
 * notification a host-process dump and restore produce, and a client that says "no".
 * Every process is cleaned up by pid.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CriuClient, RpcError, type Notification } from '@crtools/rpc';
import { criuBin } from '../lib/paths.js';
import { killAllStarted, killTree, startWorkload, tmp, waitReaped } from '../dump/helpers.js';

afterAll(() => killAllStarted());

const client = new CriuClient({ criu: criuBin });
const CRIU_42 = '/tmp/criu-4.2/criu/criu';

function ppidOf(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]);
}

describe('CriuClient → criu swrk', () => {
  it('VERSION, CHECK, FEATURE_CHECK', async () => {
    expect(await client.version()).toMatchObject({ major: 4, minor: 2, number: 40200, name: expect.stringMatching(/^crtools /) });
    await expect(client.check()).resolves.toBeUndefined();
    // mem_track: where kerndat found a dirty-tracking method (test/rpc/predump.test.ts uses it)
    const canTrack = spawnSync(process.execPath, [criuBin, 'check', '--feature', 'mem_dirty_track'], { stdio: 'ignore' }).status === 0;
    // lazy_pages: where userfaultfd has the events a lazy restore follows (test/restore/lazy.test.ts)
    const canLazy = spawnSync(process.execPath, [criuBin, 'check', '--feature', 'uffd-noncoop'], { stdio: 'ignore' }).status === 0;
    expect(await client.featureCheck()).toEqual({ mem_track: canTrack, lazy_pages: canLazy, pidfd_store: false });
  });

  it('requests without what they need are answered with a reason (PRE_DUMP, PAGE_SERVER without an images directory)', async () => {
    for (const type of ['PRE_DUMP', 'SINGLE_PRE_DUMP', 'PAGE_SERVER', 'PAGE_SERVER_CHLD'] as const) {
      const r = await client.request({ type, opts: { images_dir_fd: -1 } });
      expect(r).toMatchObject({ success: false });
      expect(r.cr_errmsg).toMatch(/^images_dir_fd: neither images_dir_fd nor images_dir was given/);
    }
  });

  it('DUMP and RESTORE with notifications: pre-dump, post-dump; pre-restore, post-restore (root pid), pre-resume, post-resume; the sibling root is our child', async () => {
    const w = startWorkload('pattern', ['8']);
    const img = tmp('rpc-client');
    const seen: Notification[] = [];
    const record = (n: Notification) => (seen.push(n), true);
    try {
      expect(await client.dump({ imagesDir: img, pid: w.pid, notify_scripts: true, log_file: 'dump.log', log_level: 4 }, record)).toEqual({ restored: false });
      expect(seen).toEqual([{ script: 'pre-dump' }, { script: 'query-ext-files' }, { script: 'post-dump' }]);
      expect(waitReaped(w.pid)).toBe(true);
      seen.length = 0;
      const r = await client.restore({ imagesDir: img, notify_scripts: true, rst_sibling: true, log_file: 'restore.log', log_level: 4 }, record);
      expect(r).toEqual({ pid: w.pid });
      expect(seen).toEqual([{ script: 'pre-restore' }, { script: 'post-restore', pid: w.pid }, { script: 'pre-resume' }, { script: 'post-resume' }]);
      expect(ppidOf(w.pid)).toBe(process.pid);
      expect(w.check(20_000)).toBe('check ok bad=0');
    } finally {
      killTree(w.pid);
    }
  });

  for (const at of ['pre-dump', 'query-ext-files', 'post-dump'] as const) {
    it(`a client answering "no" at ${at}: the dump fails, the tree runs on intact, no images left`, async () => {
      const w = startWorkload('pattern', ['4']);
      const img = tmp(`rpc-no-${at}`);
      try {
        const err = await client.dump({ imagesDir: img, pid: w.pid, notify_scripts: true }, (n) => n.script !== at).catch((e) => e);
        expect(err).toBeInstanceOf(RpcError);
        expect(err.message).toMatch(new RegExp(`^DUMP failed: .*reported a failure at ${at}`));
        expect(existsSync(path.join(img, 'inventory.img'))).toBe(false);
        expect(w.check(20_000)).toBe('check ok bad=0');
      } finally {
        w.kill();
      }
    });
  }

  it('a notification handler that throws counts as "no"', async () => {
    const w = startWorkload('pattern', ['2']);
    try {
      const err = await client.dump({ imagesDir: tmp('rpc-throw'), pid: w.pid, notify_scripts: true }, () => {
        throw new Error('boom');
      }).catch((e) => e);
      expect(err).toBeInstanceOf(RpcError);
      expect(w.check(20_000)).toBe('check ok bad=0');
    } finally {
      w.kill();
    }
  });

  it('query-ext-files answered with external objects: the dump refuses them by name, the tree runs on intact', async () => {
    const w = startWorkload('pattern', ['2']);
    const img = tmp('rpc-ext');
    try {
      const answer = (n: Notification) => (n.script === 'query-ext-files' ? { external: ['file[42:7]'] } : true);
      const err = await client.dump({ imagesDir: img, pid: w.pid, notify_scripts: true }, answer).catch((e) => e);
      expect(err).toBeInstanceOf(RpcError);
      expect(err.message).toMatch(/--external file\[42:7\] is not supported yet \(only unix\[INO\], tty\[RDEV:DEV\], net\[INO\]:KEY, mnt\[KEY\]:VAL and mnt\[\]\[:m\|:s\] are; crtools issue 17\)/);
      expect(existsSync(path.join(img, 'inventory.img'))).toBe(false);
      expect(w.check(20_000)).toBe('check ok bad=0');
    } finally {
      w.kill();
    }
  });

  it('CPUINFO_DUMP writes cpuinfo.img; CPUINFO_CHECK accepts it, and refuses a directory without one', async () => {
    const img = tmp('rpc-cpuinfo');
    await client.cpuinfoDump({ imagesDir: img, log_file: 'cpuinfo.log', log_level: 4 });
    expect(existsSync(path.join(img, 'cpuinfo.img'))).toBe(true);
    await expect(client.cpuinfoCheck({ imagesDir: img })).resolves.toBeUndefined();
    await expect(client.cpuinfoCheck({ imagesDir: img, cpu_cap: 0 })).resolves.toBeUndefined();
    const err = await client.cpuinfoCheck({ imagesDir: tmp('rpc-cpuinfo-none') }).catch((e) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect(err.message).toMatch(/^CPUINFO_CHECK failed: .*cpuinfo\.img/);
  });

  it('RESTORE then WAIT_PID on one kept-open connection: the root is that criu\'s child, its end answered as a wait status', async () => {
    const w = startWorkload('pattern', ['2']);
    const img = tmp('rpc-waitpid');
    let restored = 0;
    const session = client.session();
    try {
      await client.dump({ imagesDir: img, pid: w.pid });
      expect(waitReaped(w.pid)).toBe(true);
      restored = (await session.restore({ imagesDir: img })).pid;
      expect(restored).toBe(w.pid);
      expect(w.check(20_000)).toBe('check ok bad=0');
      const criuPid = ppidOf(restored);
      expect(criuPid).not.toBe(process.pid);
      expect(readFileSync(`/proc/${criuPid}/cmdline`, 'utf8')).toMatch(/swrk/);
      // a pid that is not its child: a failure with ECHILD, the connection kept
      const notChild = await session.request({ type: 'WAIT_PID', pid: process.pid });
      expect(notChild).toMatchObject({ type: 'WAIT_PID', success: false, cr_errno: 10 });
      process.kill(restored, 'SIGKILL');
      expect(await session.waitPid(restored)).toBe(9); // WIFSIGNALED, WTERMSIG 9
      expect(existsSync(`/proc/${restored}`)).toBe(false);
    } finally {
      await session.close();
      if (restored) killTree(restored);
      w.kill();
    }
  });

  it('an option crtools does not carry out: refused by name, the tree untouched', async () => {
    const w = startWorkload('pattern', ['2']);
    try {
      await expect(client.dump({ imagesDir: tmp('rpc-opt'), pid: w.pid, evasive_devices: true })).rejects.toThrow(/evasive_devices/);
      await expect(client.dump({ imagesDir: tmp('rpc-opt'), pid: w.pid, unprivileged: true })).rejects.toThrow(/^DUMP failed: RPC option unprivileged is not supported by crtools yet$/);
      expect(w.check(20_000)).toBe('check ok bad=0');
    } finally {
      w.kill();
    }
  });
});

describe.skipIf(!existsSync(CRIU_42))('CriuClient → CRIU 4.2 (the same client speaks to the reference)', () => {
  it('VERSION and FEATURE_CHECK', async () => {
    const ref = new CriuClient({ criu: CRIU_42 });
    expect(await ref.version()).toMatchObject({ major: 4, minor: 2, number: 40200 });
    expect(await ref.featureCheck()).toHaveProperty('mem_track');
  });
});

describe('a client that goes away', () => {
  it('closing the socket instead of answering pre-dump: the dump fails cleanly, the tree runs on intact', async () => {
    const { spawn } = await import('node:child_process');
    const { seqpacketPair } = await import('@crtools/sys');
    const { decodeResponse, encodeRequest } = await import('@crtools/rpc');
    const w = startWorkload('pattern', ['2']);
    const img = tmp('rpc-gone');
    const [mine, theirs] = seqpacketPair();
    const child = spawn(process.execPath, [criuBin, 'swrk', '3'], { stdio: ['ignore', 'ignore', 'ignore', theirs.fd] });
    theirs.close();
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      mine.send(encodeRequest({ type: 'DUMP', opts: { images_dir: img, images_dir_fd: -1, pid: w.pid, notify_scripts: true } }));
      const first = decodeResponse((await mine.receive())!.data);
      expect(first).toMatchObject({ type: 'NOTIFY', notify: { script: 'pre-dump' } });
      mine.close();
      expect(await exited).toBe(1);
      expect(existsSync(path.join(img, 'inventory.img'))).toBe(false);
      expect(w.check(20_000)).toBe('check ok bad=0');
    } finally {
      mine.close();
      w.kill();
    }
  });
});

describe('criu_opts.config_file, read by the --config parser', () => {
  it('its options win over the request (leave-running, log-file); an unknown option names file and line', async () => {
    const { writeFileSync } = await import('node:fs');
    const w = startWorkload('pattern', ['2']);
    const dir = tmp('rpc-conf');
    const conf = path.join(dir, 'rpc.conf');
    writeFileSync(conf, '# as runc.conf\nleave-running\nlog-file from-conf.log\nverbosity 4\n');
    try {
      expect(await client.dump({ imagesDir: dir, pid: w.pid, config_file: conf, log_file: 'request.log' })).toEqual({ restored: false });
      expect(existsSync(path.join(dir, 'inventory.img'))).toBe(true);
      expect(readFileSync(path.join(dir, 'from-conf.log'), 'utf8')).toMatch(/Dumping finished successfully/);
      expect(existsSync(path.join(dir, 'request.log'))).toBe(false);
      expect(w.check(20_000)).toBe('check ok bad=0'); // left running
      writeFileSync(conf, 'leave-running\nno-such-option\n');
      await expect(client.dump({ imagesDir: tmp('rpc-conf2'), pid: w.pid, config_file: conf })).rejects.toThrow(`${conf}:2: unknown option 'no-such-option'`);
      writeFileSync(conf, 'allow-uprobes\n');
      await expect(client.dump({ imagesDir: tmp('rpc-conf3'), pid: w.pid, config_file: conf })).rejects.toThrow(/--allow-uprobes is not supported yet/);
      expect(w.check(20_000)).toBe('check ok bad=0');
    } finally {
      w.kill();
    }
  });

  it('a file that does not exist sets nothing, as in CRIU (runc names /etc/criu/runc.conf in every request)', async () => {
    const w = startWorkload('pattern', ['2']);
    const dir = tmp('rpc-conf-none');
    try {
      expect(await client.dump({ imagesDir: dir, pid: w.pid, config_file: path.join(dir, 'no-such.conf'), leave_running: true })).toEqual({ restored: false });
      expect(existsSync(path.join(dir, 'inventory.img'))).toBe(true);
      expect(w.check(20_000)).toBe('check ok bad=0');
    } finally {
      w.kill();
    }
  });
});
