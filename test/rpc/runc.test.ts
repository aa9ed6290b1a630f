/**
 * Acceptance (issue 13): Debian's runc 1.1.5 drives crtools' `criu swrk` as its criu. A busybox
 * container counting in a file is checkpointed: runc asks VERSION, then DUMP with its container
 * options; crtools answers with a clear refusal (its namespaces are carried now, the container
 * options runc asks — cgroups, external mounts, --root — not yet: crtools issue 17), written where runc sends its
 * user, the criu log, before the container is touched: it runs on and keeps counting. A restore
 * from the failed checkpoint's directory fails as clearly, runc's restore options all taken.
 * Then (with CRIU 4.2 here: env CRIU) CRIU 4.2 checkpoints a second counting container and
 * `runc restore` with crtools as its criu brings it back, twice in a row: running in runc's
 * state, in its namespaces and mounts, the counter going on, notifications in CRIU's order, no
 * mount of it left in ours. What runc sent and what we answered
 * is read from the trace `criu swrk` writes with CRTOOLS_RPC_TRACE. Skipped only when runc or a
 * static busybox is not installed (scripts/setup.sh installs both). Containers are deleted with
 * `runc delete -f`, anything left is killed by pid.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NS_KINDS } from '@crtools/images/facts';
import { criuBin } from '../lib/paths.js';
import { CRIU } from '../restore/criu-ref.js';
import { alive, criu, killTree, sleep, tmp, waitGone } from '../dump/helpers.js';

/** Where `name` is on PATH (or in the sbin directories root has), else undefined. */
function which(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  return dirs.map((d) => path.join(d, name)).find((f) => existsSync(f));
}

/** An x86_64 ELF executable with no program interpreter (static: it runs alone in a rootfs). */
function isStaticElf(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const h = Buffer.alloc(64);
    if (readSync(fd, h, 0, 64, 0) < 64 || h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2) return false;
    const phoff = Number(h.readBigUInt64LE(0x20));
    const phentsize = h.readUInt16LE(0x36);
    const phnum = h.readUInt16LE(0x38);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3 /* PT_INTERP */) return false;
    return true;
  } finally {
    closeSync(fd);
  }
}

const RUNC = which('runc');
const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((b) => existsSync(b) && isStaticElf(b));
const missing = [!RUNC && 'runc (Debian package runc)', !BUSYBOX && 'a static busybox (Debian package busybox-static)'].filter(Boolean).join(' and ');

const work = RUNC && BUSYBOX ? tmp('runc') : '';
const stateRoot = path.join(work, 'state'); // runc's --root: our containers only
const bundle = path.join(work, 'bundle');
const counter = path.join(bundle, 'rootfs/tmp/count');
const ids = [`crtools-runc-${process.pid}`, `crtools-runc-${process.pid}-restored`, `crtools-runc-${process.pid}-criu`];
const pids = new Set<number>();

/**
 * runc with our state root. `quiet`: stdout and stderr on /dev/null, for `runc run -d`, whose
 * container inherits them (pipes would keep us waiting for the container); its errors go to --log.
 */
function runc(args: string[], env: Record<string, string> = {}, quiet = false) {
  const r = spawnSync(RUNC!, ['--root', stateRoot, ...args], {
    cwd: bundle, encoding: 'utf8', timeout: 120_000, stdio: quiet ? 'ignore' : ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  // (runc's error line is plain with --log, logrus's quoted text without: its \n escaped)
  return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '').replaceAll('\\n', '\n'), error: r.error };
}

/** `runc state ID` as JSON, undefined when runc does not know the container. */
function state(id: string): { status: string; pid: number } | undefined {
  const r = runc(['state', id]);
  return r.status === 0 ? JSON.parse(r.stdout) : undefined;
}

/** The container's counter (the loop rewrites the file: retried while it is caught empty). */
function count(file = counter): number {
  for (let i = 0; i < 100; i++) {
    const n = Number.parseInt(existsSync(file) ? readFileSync(file, 'utf8') : '', 10);
    if (Number.isInteger(n)) return n;
    sleep(20);
  }
  throw new Error(`no counter in ${file}`);
}

/** The counter goes on: a later reading is larger. */
function advances(ms = 3000, file = counter): { before: number; after: number } {
  const before = count(file);
  const end = Date.now() + ms;
  let after = before;
  while (Date.now() < end && after <= before) {
    sleep(100);
    after = count(file);
  }
  return { before, after };
}

/** A bundle: busybox alone in a rootfs, a shell loop counting in /tmp/count every 0.1 s. */
function makeBundle(dir = bundle): void {
  const rootfs = path.join(dir, 'rootfs');
  for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp']) mkdirSync(path.join(rootfs, d), { recursive: true });
  copyFileSync(BUSYBOX!, path.join(rootfs, 'bin/busybox'));
  chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  for (const applet of ['sh', 'sleep', 'echo', 'cat']) symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  const spec = runc(['spec', '--bundle', dir]);
  if (spec.status !== 0) throw new Error(`runc spec failed: ${spec.stderr}`);
  const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
  config.process.terminal = false;
  config.process.args = ['/bin/sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done'];
  config.root.readonly = false;
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 1));
}

/** What criu swrk traced: each message, in order. */
function traced(file: string): { pid: number; dir: 'in' | 'out'; msg: Record<string, any> }[] {
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
}

/** The namespaces (CRIU's names, in crtools' order) pid lives in that are not ours (nor criu's: it is our grandchild). */
function ownNamespaces(pid: number): string[] {
  return NS_KINDS.filter((n) => readlinkSync(`/proc/${pid}/ns/${n}`) !== readlinkSync(`/proc/self/ns/${n}`));
}

afterAll(() => {
  if (!work) return;
  for (const id of ids) {
    const s = state(id);
    if (s?.pid) pids.add(s.pid);
    runc(['delete', '-f', id]);
  }
  for (const pid of pids) {
    if (alive(pid)) killTree(pid);
    waitGone(pid);
  }
  rmSync(work, { recursive: true, force: true });
});

// (the reason is in the title: a skipped run says what to install)
describe.skipIf(!!missing)(`runc with crtools as its criu${missing ? ` (skipped: ${missing} not installed)` : ''}`, () => {
  const [id, restoredId] = ids as [string, string];

  it('checkpoint: VERSION, then DUMP answered with a refusal naming an option not taken yet (its namespaces are carried); the container runs on, counting', () => {
    makeBundle();
    const run = runc(['--log', path.join(work, 'runc-run.log'), 'run', '-d', '--bundle', bundle, id], {}, true);
    expect(run.status, `${run.stderr}${existsSync(path.join(work, 'runc-run.log')) ? readFileSync(path.join(work, 'runc-run.log'), 'utf8') : ''}`).toBe(0);
    const started = state(id)!;
    pids.add(started.pid);
    expect(started.status).toBe('running');
    expect(advances().after).toBeGreaterThan(0);
    const namespaces = ownNamespaces(started.pid);
    expect(namespaces).toEqual(expect.arrayContaining(['pid', 'net', 'ipc', 'uts', 'mnt']));

    const images = path.join(work, 'images');
    const logs = path.join(work, 'work');
    const trace = path.join(work, 'dump-trace.jsonl');
    const runcLog = path.join(work, 'runc-checkpoint.log');
    const ck = runc(['--debug', '--log', runcLog, '--criu', criuBin, 'checkpoint', '--image-path', images, '--work-path', logs, id], { CRTOOLS_RPC_TRACE: trace });

    // what runc sent and what crtools answered
    const msgs = traced(trace);
    expect(msgs.map((m) => `${m.dir} ${m.msg.type}`)).toEqual(['in VERSION', 'out VERSION', 'in DUMP', 'out DUMP']);
    expect(msgs[1]!.msg).toMatchObject({ success: true, version: { major_number: 4, minor_number: 2 } });
    const opts = msgs[2]!.msg.opts;
    expect(opts).toMatchObject({
      pid: started.pid, log_level: 4, log_file: 'dump.log', notify_scripts: true, manage_cgroups: true, empty_ns: 0x40000000,
      orphan_pts_master: true, root: expect.any(String), ext_mnt: expect.any(Array), config_file: '/etc/criu/runc.conf',
    });
    const answer = msgs[3]!.msg;
    // every namespace of the container is carried now (UTS, IPC, pid, network, mount, time); what
    // stops the dump is the first of the options runc asks that crtools does not take yet
    expect(namespaces.filter((n) => !['uts', 'ipc', 'pid', 'net', 'mnt', 'time'].includes(n))).toEqual([]);
    expect(answer).toMatchObject({ type: 'DUMP', success: false, dump: { restored: false } });
    expect(answer.cr_errmsg).toMatch(/^Error \(dump\): dump: option (manage_cgroups|orphan_pts_master|empty_ns|ext_mnt|root) is not supported by crtools yet$/);

    // runc: past the version check, DUMP asked and its failure reported with the log's path
    const debug = readFileSync(runcLog, 'utf8');
    expect(debug).toContain('Using CRIU 40200 at');
    expect(debug).toContain('Using CRIU in DUMP mode');
    expect(ck.status).toBe(1);
    expect(ck.stderr).toContain(`criu failed: type DUMP errno ${answer.cr_errno}\nlog file: ${path.join(logs, 'dump.log')}`);
    // the criu log, where runc sends its user: the refusal, whole
    expect(readFileSync(path.join(logs, 'dump.log'), 'utf8')).toContain(answer.cr_errmsg);
    // no images: only runc's own descriptors.json
    expect(readdirSync(images)).toEqual(['descriptors.json']);

    // the container is intact: same init, running, counting, never traced
    expect(state(id)).toMatchObject({ status: 'running', pid: started.pid });
    const { before, after } = advances();
    expect(after).toBeGreaterThan(before);
    expect(readFileSync(`/proc/${started.pid}/status`, 'utf8')).toMatch(/^TracerPid:\s+0$/m);
  });

  it("restore from the failed checkpoint's directory fails clearly, named in the criu log; nothing is left of it", () => {
    const mountsBefore = ownMounts();
    const images = path.join(work, 'images');
    const logs = path.join(work, 'work-restore');
    const trace = path.join(work, 'restore-trace.jsonl');
    const r = runc(['--criu', criuBin, 'restore', '-d', '--image-path', images, '--work-path', logs, '--bundle', bundle, restoredId], { CRTOOLS_RPC_TRACE: trace });
    const msgs = traced(trace);
    expect(msgs.map((m) => `${m.dir} ${m.msg.type}`)).toEqual(['in VERSION', 'out VERSION', 'in RESTORE', 'out RESTORE']);
    expect(msgs[2]!.msg.opts).toMatchObject({ rst_sibling: true, log_file: 'restore.log', notify_scripts: true, evasive_devices: true });
    const answer = msgs[3]!.msg;
    // runc's restore options are all taken now (root, ext_mnt, manage_cgroups, cg_root, empty_ns,
    // evasive_devices...): what stops it is the checkpoint that is not there
    expect(answer).toMatchObject({ type: 'RESTORE', success: false, restore: { pid: -1 } });
    expect(answer.cr_errmsg).toMatch(/^Error \(restore\): .*\/inventory\.img: image missing$/);
    expect(r.status).toBe(1);
    // (an image missing is no errno CRIU would name: cr_errno unset, runc says 0)
    expect(answer.cr_errno).toBeUndefined();
    expect(r.stderr).toContain(`criu failed: type RESTORE errno 0\nlog file: ${path.join(logs, 'restore.log')}`);
    expect(readFileSync(path.join(logs, 'restore.log'), 'utf8')).toContain(`${answer.cr_errmsg}\n`);
    // nothing left of it: no container, no mount in our namespace
    expect(state(restoredId)).toBeUndefined();
    expect(ownMounts()).toEqual(mountsBefore);
    expect(state(id)).toMatchObject({ status: 'running' });
  });
});

/** This process's mount points, sorted (a restore must leave none of its own here). */
function ownMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n').map((l) => l.split(' ')[4]!).sort();
}

// CRIU 4.2 checkpoints the counting container (the default spec: its own pid, mount, network,
// UTS and IPC namespaces, pivot_root'ed rootfs, /proc, /dev tmpfs with its device nodes, devpts,
// mqueue, read-only /sys with its cgroup mounts, masked and read-only paths), crtools restores it
// under runc (root, ext_mnt, manage_cgroups and cg_root, empty_ns net, evasive_devices,
// orphan_pts_master); twice, each checkpoint CRIU's of what crtools restored
const criuMissing = missing || (!CRIU && 'CRIU 4.2 (env CRIU)');
describe.skipIf(!!criuMissing)(`runc restores CRIU 4.2's checkpoint with crtools as its criu${criuMissing ? ` (skipped: ${criuMissing} not here)` : ''}`, () => {
  const id = ids[2]!;
  // (a bundle of its own: the first container may still count in the other one)
  const bundle2 = path.join(work, 'bundle-criu');
  const counter2 = path.join(bundle2, 'rootfs/tmp/count');
  for (const round of [1, 2]) {
    it(`round ${round}: CRIU 4.2 checkpoints, crtools restores: running in runc's state, the counter goes on from where it stopped`, () => {
      if (round === 1) {
        makeBundle(bundle2);
        const run = runc(['--log', path.join(work, 'runc-run-criu.log'), 'run', '-d', '--bundle', bundle2, id], {}, true);
        expect(run.status).toBe(0);
      }
      const running = state(id)!;
      pids.add(running.pid);
      expect(running.status).toBe('running');
      expect(advances(3000, counter2).after).toBeGreaterThan(0);
      const images = path.join(work, `criu-images-${round}`);
      const ck = runc(['--criu', CRIU!, 'checkpoint', '--image-path', images, '--work-path', path.join(work, `criu-work-${round}`), id]);
      expect(ck.status, ck.stderr).toBe(0);
      // (runc forgets a container it checkpointed without --leave-running)
      expect(state(id)).toBeUndefined();
      expect(alive(running.pid)).toBe(false);
      const stopped = count(counter2);

      const mountsBefore = ownMounts();
      const trace = path.join(work, `criu-restore-trace-${round}.jsonl`);
      const logs = path.join(work, `criu-restore-work-${round}`);
      const r = runc(['--criu', criuBin, 'restore', '-d', '--image-path', images, '--work-path', logs, '--bundle', bundle2, id], { CRTOOLS_RPC_TRACE: trace });
      const log = existsSync(path.join(logs, 'restore.log')) ? readFileSync(path.join(logs, 'restore.log'), 'utf8') : '';
      expect(r.status, `${r.stderr}\n${log}`).toBe(0);
      // what runc asked, and the notifications in CRIU's order
      const msgs = traced(trace);
      const req = msgs.find((m) => m.dir === 'in' && m.msg.type === 'RESTORE')!.msg.opts;
      expect(req).toMatchObject({ rst_sibling: true, evasive_devices: true, manage_cgroups: true, empty_ns: 0x40000000, root: expect.stringMatching(/criu-root$/), ext_mnt: expect.any(Array), cg_root: expect.any(Array) });
      const notes = msgs.filter((m) => m.dir === 'out' && m.msg.type === 'NOTIFY').map((m) => m.msg.notify.script);
      expect(notes).toEqual(['pre-restore', 'setup-namespaces', 'post-setup-namespaces', 'post-restore', 'network-unlock', 'pre-resume', 'post-resume']);
      expect(msgs.at(-1)!.msg).toMatchObject({ type: 'RESTORE', success: true });

      const restored = state(id)!;
      pids.add(restored.pid);
      expect(restored.status).toBe('running');
      expect(msgs.at(-1)!.msg.restore.pid).toBe(restored.pid);
      // in its namespaces, at its root, with its mounts
      expect(ownNamespaces(restored.pid)).toEqual(expect.arrayContaining(['pid', 'net', 'ipc', 'uts', 'mnt']));
      expect(readlinkSync(`/proc/${restored.pid}/root`)).toBe('/');
      const inside = readFileSync(`/proc/${restored.pid}/mountinfo`, 'utf8');
      for (const mp of ['/ ', '/proc ', '/dev ', '/dev/pts ', '/dev/shm ', '/dev/mqueue ', '/sys ', '/sys/fs/cgroup ', '/proc/keys ']) expect(inside).toContain(` ${mp}`);
      expect(readdirSync(`/proc/${restored.pid}/root/dev`)).toEqual(expect.arrayContaining(['null', 'zero', 'pts', 'shm', 'mqueue']));
      // the counter goes on from where the checkpoint stopped it
      const { before, after } = advances(3000, counter2);
      expect(before).toBeGreaterThanOrEqual(stopped);
      expect(after).toBeGreaterThan(before);
      // nothing of the restore is left in our mount namespace
      expect(ownMounts()).toEqual(mountsBefore);
    });
  }

  it('the same checkpoint restored under --root without the external mounts mapped: refused by name, nothing left; the container counts on', () => {
    const images = path.join(work, 'criu-images-2');
    const mountsBefore = ownMounts();
    const r = criu(['restore', '-D', images, '-o', 'restore-unmapped.log', '-d', '--root', path.join(bundle2, 'rootfs'), '--empty-ns', 'net', '--manage-cgroups', '--evasive-devices']);
    // (refused before any task is made: exit 4, as what crtools does not carry)
    expect(r.code).toBe(4);
    expect(readFileSync(path.join(images, 'restore-unmapped.log'), 'utf8')).toMatch(/Error \(restore\): mount \d+ at \/\S+ \(\w+\) is external \(mnt\[\/\S+\]\) and the restore maps nothing to it/);
    expect(ownMounts()).toEqual(mountsBefore);
    // the running container is untouched
    const s = state(id)!;
    expect(s.status).toBe('running');
    const { before, after } = advances(3000, counter2);
    expect(after).toBeGreaterThan(before);
  });
});
