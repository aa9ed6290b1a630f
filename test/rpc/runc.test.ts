/**
 * Acceptance (issues 13 and 17): Debian's runc 1.1.5 drives crtools' `criu swrk` as its criu. A
 * busybox container counting in a file (runc's default spec: its own pid, mount, network, UTS and
 * IPC namespaces, a pivot_root'ed rootfs, /dev a tmpfs with device nodes, cgroup mounts, masked
 * paths) is checkpointed: runc asks VERSION, then DUMP with its container options (cgroups
 * managed, the rootfs as --root, the cgroup mounts and masked paths as external mounts, the
 * network namespace left empty, the freezer cgroup); crtools writes the images as CRIU 4.2 does
 * (decoded by Debian's crit) and runc removes the container. CRIU 4.2 (env CRIU, else
 * /tmp/criu-4.2/criu/criu) restores crtools' checkpoint with `runc restore -d` and the counter
 * goes on from where it stopped; skipped, saying so, where it is not. crtools restores its own
 * checkpoint with `runc restore -d` too, and CRIU 4.2's checkpoint of another counting container,
 * twice in a row (running, its namespaces and mounts, the counter going on, the notifications in
 * CRIU's order, no mount of it left in ours); without the external mounts mapped such a restore
 * is refused by name, leaving nothing. A paused container (freezer FROZEN) is refused by name and
 * stays as it was. What runc sent and what we answered is read from the trace
 * `criu swrk` writes with CRTOOLS_RPC_TRACE; the same dump from crtools' command line (its container
 * options: --root, --external mnt[], -M, --empty-ns, --manage-cgroups, --freeze-cgroup) writes the
 * same. Skipped only when runc or a static busybox is not
 * installed (scripts/setup.sh installs both). Containers are deleted with `runc delete -f`,
 * anything left is killed by pid.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NS_KINDS } from '@crtools/images/facts';
import { criuBin } from '../lib/paths.js';
import { alive, criu, critDecode, killTree, sleep, tmp, waitGone } from '../dump/helpers.js';
import { CRIU } from '../restore/criu-ref.js';
import { BUSYBOX, COUNTING_LOOP, lastCount, which } from './containers.js';
import { repoRoot } from '../lib/paths.js';

const RUNC = which('runc');
const missing = [!RUNC && 'runc (Debian package runc)', !BUSYBOX && 'a static busybox (Debian package busybox-static)'].filter(Boolean).join(' and ');

const work = RUNC && BUSYBOX ? tmp('runc') : '';
const stateRoot = path.join(work, 'state'); // runc's --root: our containers only
const bundle = path.join(work, 'bundle');
const counter = path.join(bundle, 'rootfs/tmp/count');
const ids = [`crtools-runc-${process.pid}`, `crtools-runc-${process.pid}-restored`, `crtools-runc-${process.pid}-b`, `crtools-runc-${process.pid}-by-criu`, `crtools-runc-${process.pid}-cli`, `crtools-runc-${process.pid}-paused`, `crtools-runc-${process.pid}-criu`, `crtools-runc-${process.pid}-ghost`, `crtools-runc-${process.pid}-watch`];
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

/** The container's counter (retried while the file has no line yet). */
function count(file = counter): number {
  for (let i = 0; i < 100; i++) {
    const n = lastCount(existsSync(file) ? readFileSync(file, 'utf8') : '');
    if (n !== undefined) return n;
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

/** A bundle: busybox alone in a rootfs, a shell loop appending a count to /tmp/count every 0.1 s (or `args`). */
function makeBundle(dir = bundle, args: string[] = COUNTING_LOOP): void {
  const rootfs = path.join(dir, 'rootfs');
  for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp']) mkdirSync(path.join(rootfs, d), { recursive: true });
  copyFileSync(BUSYBOX!, path.join(rootfs, 'bin/busybox'));
  chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  for (const applet of ['sh', 'sleep', 'echo', 'cat']) symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  const spec = runc(['spec', '--bundle', dir]);
  if (spec.status !== 0) throw new Error(`runc spec failed: ${spec.stderr}`);
  const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
  config.process.terminal = false;
  config.process.args = args;
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

/** `runc run -d` of container `id` in the bundle: running, counting; its init's pid. */
function start(id: string, dir = bundle): number {
  const log = path.join(work, `runc-run-${id}.log`);
  const run = runc(['--log', log, 'run', '-d', '--bundle', dir, id], {}, true);
  expect(run.status, `${run.stderr}${existsSync(log) ? readFileSync(log, 'utf8') : ''}`).toBe(0);
  const started = state(id)!;
  pids.add(started.pid);
  expect(started.status).toBe('running');
  expect(advances(3000, path.join(dir, 'rootfs/tmp/count')).after).toBeGreaterThan(0);
  return started.pid;
}

/** The last lines of a criu log, for a failure's message. */
function tail(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-15).join('\n') : `(no ${file})`;
}

/** `runc --criu <crtools> checkpoint` of container id into `images` (logs in `logs`), traced. */
function checkpoint(id: string, images: string, logs: string, trace: string) {
  const runcLog = path.join(work, `runc-checkpoint-${id}.log`);
  const ck = runc(['--debug', '--log', runcLog, '--criu', criuBin, 'checkpoint', '--image-path', images, '--work-path', logs, id], { CRTOOLS_RPC_TRACE: trace });
  return { ...ck, runcLog };
}

/** The protobuf images of a directory decoded by Debian's crit (pages and tmpfs tarballs are not protobuf). */
function decoded(dir: string): Record<string, any> {
  const out: Record<string, any> = {};
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.img') && !n.startsWith('pages-') && !n.startsWith('tmpfs-'))) out[f] = critDecode(path.join(dir, f));
  return out;
}

/** /proc/PID/cgroup as CRIU's css set members: name ('' for v2) and path, sorted by name. */
function cgroupMembers(pid: number): { name: string; path: string }[] {
  return readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n').map((l) => {
    const [, name, p] = /^\d+:([^:]*):(.*)$/.exec(l)!;
    return { name: name!, path: p! };
  }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** What runc sent in its DUMP (the first test), for the command line's test. */
let runcOpts: Record<string, any> | undefined;
/** The count the checkpointed container had written when its checkpoint ended (the first test). */
let checkpointedAt = 0;

// (the reason is in the title: a skipped run says what to install)
describe.skipIf(!!missing)(`runc with crtools as its criu${missing ? ` (skipped: ${missing} not installed)` : ''}`, () => {
  const [id, restoredId, idB, byCriuId, idC, idP] = ids as [string, string, string, string, string, string];

  it('checkpoint: VERSION, then DUMP with runc\'s container options, done; the images hold the container as CRIU 4.2 writes it (crit decodes them) and runc removes it', () => {
    makeBundle();
    const pid = start(id);
    const namespaces = ownNamespaces(pid);
    expect(namespaces).toEqual(expect.arrayContaining(['pid', 'net', 'ipc', 'uts', 'mnt']));
    const members = cgroupMembers(pid);
    const mounts = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');

    const images = path.join(work, 'images');
    const logs = path.join(work, 'work');
    const trace = path.join(work, 'dump-trace.jsonl');
    const ck = checkpoint(id, images, logs, trace);
    expect(ck.status, `${ck.stderr}\n${tail(path.join(logs, 'dump.log'))}`).toBe(0);

    // what runc sent and what crtools answered: the action points told (runc answers each), then success
    const msgs = traced(trace);
    const kinds = msgs.map((m) => `${m.dir} ${m.msg.type}`);
    expect(kinds.slice(0, 3)).toEqual(['in VERSION', 'out VERSION', 'in DUMP']);
    expect(kinds.at(-1)).toBe('out DUMP');
    expect(msgs[1]!.msg).toMatchObject({ success: true, version: { major_number: 4, minor_number: 2 } });
    const opts = msgs[2]!.msg.opts;
    runcOpts = opts;
    expect(opts).toMatchObject({
      pid, log_level: 4, log_file: 'dump.log', notify_scripts: true, manage_cgroups: true, empty_ns: 0x40000000,
      orphan_pts_master: true, root: expect.any(String), ext_mnt: expect.any(Array), config_file: '/etc/criu/runc.conf',
    });
    const notified = msgs.filter((m) => m.dir === 'out' && m.msg.type === 'NOTIFY').map((m) => m.msg.notify.script);
    // (network-lock: the container has a network namespace of its own, as CRIU tells it)
    expect(notified).toEqual(expect.arrayContaining(['pre-dump', 'network-lock', 'query-ext-files', 'post-dump']));
    expect(msgs.at(-1)!.msg).toMatchObject({ type: 'DUMP', success: true });
    expect(readFileSync(ck.runcLog, 'utf8')).toContain('Using CRIU in DUMP mode');
    expect(readFileSync(path.join(logs, 'dump.log'), 'utf8')).toContain('Dumping finished successfully');

    // the container is gone: checkpointed without --leave-running, runc destroyed it
    expect(waitGone(pid)).toBe(true);
    expect(state(id)).toBeUndefined();
    checkpointedAt = count();

    const img = decoded(images);
    const inv = img['inventory.img'].entries[0];
    const rootIds = img[`ids-1.img`].entries[0];
    // the container's init is pid 1 of its own pid namespace
    expect(img['pstree.img'].entries[0]).toMatchObject({ pid: 1, ppid: 0 });
    for (const n of ['pid', 'net', 'ipc', 'uts', 'mnt']) expect(rootIds[`${n}_ns_id`], n).not.toBe(inv.root_ids[`${n}_ns_id`]);
    // --empty-ns net: the network namespace is not dumped
    expect(Object.keys(img).filter((f) => /^(netns|ifaddr|route|rule|iptables|ip6tables|nftables)/.test(f))).toEqual([]);

    // the mounts: the rootfs as the root mount (restored under runc's --root); the ext_mnt keys
    // (cgroup mounts, masked paths bound from /dev/null) external with runc's values as ext_key
    const mnts = img[`mountpoints-${rootIds.mnt_ns_id}.img`].entries;
    const ext = new Map<string, string>(opts.ext_mnt.map((e: { key: string; val: string }) => [e.key, e.val]));
    const root = mnts.find((m: any) => m.mountpoint === '/');
    expect(root).toMatchObject({ root: opts.root });
    expect(root.ext_key).toBeUndefined();
    const mountPoints = new Set(mounts.trim().split('\n').map((l) => l.split(' ')[4]));
    let external = 0;
    for (const m of mnts) {
      const key = `/${m.mountpoint}`.replace(/^\/+/, '/');
      if (ext.has(key) && mountPoints.has(key)) {
        expect(m.ext_key, key).toBe(ext.get(key));
        external++;
      } else {
        expect(m.ext_key, key).toBeUndefined();
      }
    }
    expect(mnts.filter((m: any) => m.fstype === 12 /* cgroup */).every((m: any) => m.ext_key)).toBe(true);
    expect(mnts.find((m: any) => m.mountpoint === '/proc/keys' || m.mountpoint === 'proc/keys')?.ext_key).toBe('/dev/null');
    expect(external).toBeGreaterThan(5);
    // /dev's tmpfs with its device nodes
    const dev = mnts.find((m: any) => m.mountpoint === '/dev');
    const tarball = path.join(images, `tmpfs-dev-${dev.root_dev}.tar.gz.img`);
    const listing = spawnSync('tar', ['tzvf', tarball], { encoding: 'utf8' }).stdout;
    expect(listing).toMatch(/^c\S+ 0\/0 +1,3 .* \.\/null$/m);

    // cgroup.img: the tasks' css set is the container's cgroups; each hierarchy's directory saved (manage_cgroups)
    const cg = img['cgroup.img'].entries[0];
    expect(inv.root_cg_set).toBe(1);
    expect(cg.sets).toEqual([{ id: 2, ctls: members }]);
    for (const m of members) {
      const c = cg.controllers.find((x: any) => x.cnames.join(',') === m.name);
      expect(c?.dirs?.map((d: any) => d.dir_name), m.name).toContain(m.path.replace(/^\//, ''));
    }
    if (opts.freeze_cgroup) {
      const freezer = cg.controllers.find((x: any) => x.cnames.join(',') === 'freezer');
      expect(freezer.dirs[0].properties).toContainEqual(expect.objectContaining({ name: 'freezer.state', value: 'THAWED' }));
    }
  });

  it("the same from crtools' command line: criu dump --root, --external mnt[KEY]:VAL, -M KEY:VAL, --empty-ns net, --manage-cgroups, --freeze-cgroup, -R: the mounts and cgroups written as over RPC; the container runs on", () => {
    expect(runcOpts, 'the checkpoint test ran first').toBeDefined();
    const pid = start(idC);
    // without --root and the external mounts: refused by name (its root mount first), exit 4, the container untouched
    const bare = spawnSync(process.execPath, [criuBin, 'dump', '-t', String(pid), '-D', path.join(work, 'images-bare')], { encoding: 'utf8', timeout: 120_000 });
    expect(bare.status, bare.stderr).toBe(4);
    expect(bare.stderr).toMatch(/^criu: mount \d+ at \/ \(\S+, source \S+\) of the tree's mount namespace \(root \d+\) is its root and not the one of criu's namespace \(pivot_root, chroot into a mount of its own\): dump with --root \(where the restore puts it\)\n$/);
    expect(readdirSync(path.join(work, 'images-bare'))).toEqual([]);
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^TracerPid:\s+0$/m);
    const dir = path.join(work, 'images-cli');
    const ext = runcOpts!.ext_mnt as { key: string; val: string }[];
    const extArgs = ext.flatMap((e, i) => (i % 2 ? ['--external', `mnt[${e.key}]:${e.val}`] : ['-M', `${e.key}:${e.val}`]));
    const freezer = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').map((l) => /^\d+:freezer:(.*)$/.exec(l)?.[1]).find(Boolean);
    const args = ['dump', '-t', String(pid), '-D', dir, '-o', 'dump.log', '-v4', '-R', '--root', runcOpts!.root, ...extArgs, '--empty-ns', 'net', '--manage-cgroups',
      ...(freezer ? ['--freeze-cgroup', `/sys/fs/cgroup/freezer${freezer}`] : [])];
    const d = spawnSync(process.execPath, [criuBin, ...args], { encoding: 'utf8', timeout: 120_000 });
    expect(d.status, `${d.stderr}\n${tail(path.join(dir, 'dump.log'))}`).toBe(0);
    const img = decoded(dir);
    const ids = img['ids-1.img'].entries[0];
    const mnts = img[`mountpoints-${ids.mnt_ns_id}.img`].entries;
    const byPoint = new Map<string, any>(mnts.map((m: any) => [m.mountpoint, m]));
    expect(byPoint.get('/')).toMatchObject({ root: runcOpts!.root });
    for (const e of ext) if (byPoint.has(e.key)) expect(byPoint.get(e.key).ext_key, e.key).toBe(e.val);
    expect(mnts.filter((m: any) => m.fstype === 12).every((m: any) => m.ext_key)).toBe(true);
    expect(Object.keys(img).filter((f) => f.startsWith('netns-'))).toEqual([]);
    expect(img['cgroup.img'].entries[0].sets).toEqual([{ id: 2, ctls: cgroupMembers(pid) }]);
    // -R: the container runs on, untraced, counting
    expect(state(idC)).toMatchObject({ status: 'running', pid });
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^TracerPid:\s+0$/m);
    const { before, after } = advances();
    expect(after).toBeGreaterThan(before);
    expect(runc(['delete', '-f', idC]).status).toBe(0);
    expect(waitGone(pid)).toBe(true);
  });

  it('a paused container (its freezer FROZEN): the DUMP is refused by name in cr_errmsg and the criu log; the container stays paused, and counts on once resumed', () => {
    const pid = start(idP);
    expect(runc(['pause', idP]).status).toBe(0);
    expect(state(idP)).toMatchObject({ status: 'paused', pid });
    const logs = path.join(work, 'work-paused');
    const trace = path.join(work, 'dump-trace-paused.jsonl');
    const ck = checkpoint(idP, path.join(work, 'images-paused'), logs, trace);
    expect(ck.status).toBe(1);
    const answer = traced(trace).at(-1)!.msg;
    expect(answer).toMatchObject({ type: 'DUMP', success: false, cr_errno: 95 });
    expect(answer.cr_errmsg).toMatch(/^Error \(dump\): --freeze-cgroup \S+: the cgroup is FROZEN already \(a paused container\), which is not supported by crtools yet \(crtools issue 17\)$/);
    expect(readFileSync(path.join(logs, 'dump.log'), 'utf8')).toContain(answer.cr_errmsg);
    expect(readdirSync(path.join(work, 'images-paused'))).toEqual(['descriptors.json']);
    expect(state(idP)).toMatchObject({ status: 'paused', pid });
    expect(runc(['resume', idP]).status).toBe(0);
    const { before, after } = advances();
    expect(after).toBeGreaterThan(before);
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^TracerPid:\s+0$/m);
    expect(runc(['delete', '-f', idP]).status).toBe(0);
    expect(waitGone(pid)).toBe(true);
  });

  it("restore by crtools of its own checkpoint: runc's RESTORE carried (the restorer's half of crtools issue 17), the counter goes on; the container is then deleted", () => {
    // (the containers of the cases between counted into the same file: what the restored one
    // writes is told apart by starting the file afresh; its shell opens it for each line)
    writeFileSync(counter, '');
    const mountsBefore = ownMounts();
    const images = path.join(work, 'images');
    const logs = path.join(work, 'work-restore');
    const trace = path.join(work, 'restore-trace.jsonl');
    const r = runc(['--criu', criuBin, 'restore', '-d', '--image-path', images, '--work-path', logs, '--bundle', bundle, restoredId], { CRTOOLS_RPC_TRACE: trace });
    expect(r.status, `${r.stderr}\n${tail(path.join(logs, 'restore.log'))}`).toBe(0);
    const msgs = traced(trace);
    expect(msgs.find((m) => m.dir === 'in' && m.msg.type === 'RESTORE')!.msg.opts).toMatchObject({ rst_sibling: true, log_file: 'restore.log', notify_scripts: true, evasive_devices: true, manage_cgroups: true, root: expect.any(String) });
    expect(msgs.at(-1)!.msg).toMatchObject({ type: 'RESTORE', success: true });
    const s = state(restoredId)!;
    pids.add(s.pid);
    expect(s.status).toBe('running');
    const { before, after } = advances();
    expect(before).toBeGreaterThanOrEqual(checkpointedAt);
    expect(before).toBeLessThanOrEqual(checkpointedAt + 2);
    expect(after).toBeGreaterThan(before);
    expect(ownMounts()).toEqual(mountsBefore);
    // (the next case counts in the same bundle)
    expect(runc(['delete', '-f', restoredId]).status).toBe(0);
    expect(waitGone(s.pid)).toBe(true);
  });

  it.skipIf(!CRIU)(`CRIU 4.2 restores crtools' checkpoint: runc restore -d, the container runs and the counter goes on from where it stopped; twice in a row${CRIU ? '' : ' (skipped: no CRIU 4.2 binary; set CRIU=)'}`, () => {
    // a container of its own, so that this does not hang on the restore by crtools above
    if (!existsSync(path.join(bundle, 'config.json'))) makeBundle();
    const pid = start(idB);
    const images = path.join(work, 'images-b');
    const logs = path.join(work, 'work-b');
    const ck = checkpoint(idB, images, logs, path.join(work, 'dump-trace-b.jsonl'));
    expect(ck.status, `${ck.stderr}\n${tail(path.join(logs, 'dump.log'))}`).toBe(0);
    expect(waitGone(pid)).toBe(true);
    const stoppedAt = count();

    const rlogs = path.join(work, 'work-b-restore');
    const r = runc(['--criu', CRIU!, 'restore', '-d', '--image-path', images, '--work-path', rlogs, '--bundle', bundle, byCriuId]);
    expect(r.status, `${r.stderr}\n${tail(path.join(rlogs, 'restore.log'))}`).toBe(0);
    const s = state(byCriuId)!;
    pids.add(s.pid);
    expect(s.status).toBe('running');
    // the same shell, its count carried: it goes on from the value it had, not from 0
    const { before, after } = advances();
    expect(before).toBeGreaterThanOrEqual(stoppedAt);
    expect(after).toBeGreaterThan(before);
    expect(after - stoppedAt).toBeLessThan(1000);
    expect(readlinkSync(`/proc/${s.pid}/exe`)).toMatch(/busybox/);

    // twice in a row: the container CRIU restored (now in a time namespace of its own, as CRIU
    // restores every tree) checkpointed by crtools again, and restored by CRIU again
    const images2 = path.join(work, 'images-b2');
    const logs2 = path.join(work, 'work-b2');
    const ck2 = checkpoint(byCriuId, images2, logs2, path.join(work, 'dump-trace-b2.jsonl'));
    expect(ck2.status, `${ck2.stderr}\n${tail(path.join(logs2, 'dump.log'))}`).toBe(0);
    expect(waitGone(s.pid)).toBe(true);
    const stoppedAgain = count();
    expect(stoppedAgain).toBeGreaterThanOrEqual(after);
    const rlogs2 = path.join(work, 'work-b2-restore');
    const r2 = runc(['--criu', CRIU!, 'restore', '-d', '--image-path', images2, '--work-path', rlogs2, '--bundle', bundle, byCriuId]);
    expect(r2.status, `${r2.stderr}\n${tail(path.join(rlogs2, 'restore.log'))}`).toBe(0);
    const s2 = state(byCriuId)!;
    pids.add(s2.pid);
    expect(s2.status).toBe('running');
    const again = advances();
    expect(again.before).toBeGreaterThanOrEqual(stoppedAgain);
    expect(again.after).toBeGreaterThan(again.before);
    expect(again.after - stoppedAgain).toBeLessThan(1000);
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
  const id = ids[6]!;
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

// crtools issue 17: a container whose process holds unlinked files (one on its root file system,
// one on its /dev/shm tmpfs) and unix sockets bound to paths (a listener with a connection
// accepted from it, a datagram socket whose file was unlinked, connected to) is restored under
// runc's --root: the workload (test/workloads/rootghost.c, built static into the rootfs) checks
// all of it every 0.1 s from inside and stops counting, saying what, on the first change.
// crtools checkpoints and restores it; CRIU 4.2 restores crtools' checkpoint of it, and crtools
// restores CRIU 4.2's.
describe.skipIf(!!missing)(`runc: a container with unlinked files and unix sockets bound to paths${missing ? ` (skipped: ${missing} not installed)` : ''}`, () => {
  const id = ids[7]!;
  const gbundle = path.join(work, 'bundle-ghost');
  const rootfs = path.join(gbundle, 'rootfs');
  const gcount = path.join(rootfs, 'tmp/count');

  /** `runc restore -d` by criu `bin` of the images; the container running, checked from inside and out */
  function restoreAndCheck(bin: string, images: string, logs: string): number {
    const r = runc(['--criu', bin, 'restore', '-d', '--image-path', images, '--work-path', logs, '--bundle', gbundle, id]);
    expect(r.status, `${r.stderr}\n${tail(path.join(logs, 'restore.log'))}`).toBe(0);
    const s = state(id)!;
    pids.add(s.pid);
    expect(s.status).toBe('running');
    const stopped = count(gcount);
    const { before, after } = advances(3000, gcount);
    expect(existsSync(path.join(rootfs, 'tmp/fail')) ? readFileSync(path.join(rootfs, 'tmp/fail'), 'utf8') : '').toBe('');
    expect(before).toBeGreaterThanOrEqual(stopped);
    expect(after).toBeGreaterThan(before);
    // from outside: the listener's socket file is there, the unlinked names are not
    expect(readdirSync(path.join(rootfs, 'tmp')).sort()).toEqual(['count', 'sock']);
    expect(readdirSync(`/proc/${s.pid}/root/dev/shm`)).toEqual([]);
    const links = readdirSync(`/proc/${s.pid}/fd`).map((fd) => readlinkSync(`/proc/${s.pid}/fd/${fd}`));
    // (as this namespace names them: within their mounts, which it does not reach)
    expect(links.filter((l) => l.endsWith('/ghost (deleted)')), links.join(' ')).toHaveLength(2);
    expect(links.filter((l) => /^socket:/.test(l))).toHaveLength(5);
    return s.pid;
  }

  /** `runc checkpoint` by criu `bin`; the container gone */
  function checkpointBy(bin: string, pid: number, images: string, logs: string): void {
    const ck = runc(['--criu', bin, 'checkpoint', '--image-path', images, '--work-path', logs, id]);
    expect(ck.status, `${ck.stderr}\n${tail(path.join(logs, 'dump.log'))}`).toBe(0);
    expect(waitGone(pid)).toBe(true);
    expect(state(id)).toBeUndefined();
  }

  it('crtools checkpoints it and restores it (runc restore -d): the files unlinked again with their contents, the sockets by their names, the count going on', () => {
    // (runc runs in the first bundle's directory, which this case may be the first to need)
    mkdirSync(bundle, { recursive: true });
    makeBundle(gbundle, ['/bin/rootghost']);
    const cc = spawnSync('gcc', ['-static', '-O1', '-o', path.join(rootfs, 'bin/rootghost'), path.join(repoRoot, 'test/workloads/rootghost.c')], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).toBe(0);
    const pid = start(id, gbundle);
    checkpointBy(criuBin, pid, path.join(work, 'ghost-images-1'), path.join(work, 'ghost-work-1'));
    const img = decoded(path.join(work, 'ghost-images-1'));
    expect(img['remap-fpath.img'].entries).toHaveLength(2);
    // the sockets' names as bound (the workload's length takes the NUL: crit shows it as =00)
    expect(img['files.img'].entries.filter((f: any) => f.usk?.name).map((f: any) => f.usk.name).sort()).toEqual(['/tmp/dg=00', '/tmp/sock=00', '/tmp/sock=00']);
    const again = restoreAndCheck(criuBin, path.join(work, 'ghost-images-1'), path.join(work, 'ghost-restore-1'));
    // twice: crtools' restore checkpointed and restored by crtools again
    checkpointBy(criuBin, again, path.join(work, 'ghost-images-2'), path.join(work, 'ghost-work-2'));
    restoreAndCheck(criuBin, path.join(work, 'ghost-images-2'), path.join(work, 'ghost-restore-2'));
  });

  it.skipIf(!CRIU)(`crtools restores CRIU 4.2's checkpoint of it, CRIU 4.2 restores crtools'${CRIU ? '' : ' (skipped: no CRIU 4.2 binary; set CRIU=)'}`, () => {
    const s = state(id);
    expect(s?.status, 'the first case left the container running').toBe('running');
    // (CRIU's checkpoint first: a tree CRIU restored lives in a time namespace of its own, which
    // crtools does not restore as runc's sibling yet)
    checkpointBy(CRIU!, s!.pid, path.join(work, 'ghost-images-3'), path.join(work, 'ghost-work-3'));
    const byCrtools = restoreAndCheck(criuBin, path.join(work, 'ghost-images-3'), path.join(work, 'ghost-restore-3'));
    checkpointBy(criuBin, byCrtools, path.join(work, 'ghost-images-4'), path.join(work, 'ghost-work-4'));
    restoreAndCheck(CRIU!, path.join(work, 'ghost-images-4'), path.join(work, 'ghost-restore-4'));
  });
});

// crtools issue 17: a container (CAP_SYS_ADMIN) whose init watches a file of its root file system
// (inotify, a fanotify inode mark) and the mount of its /dev (a fanotify mount mark: a tmpfs the
// restore mounts again below runc's --root), and whose child holds another child's
// /proc/PID/status at its lowest free descriptor number (opened once every task exists; the
// restore's own pidfd once landed on that number and took the file away): restored under
// runc's --root (these were refused by name there), the workload (test/workloads/rootwatch.c)
// checks every 0.1 s from inside that each watch and mark still sees its events and the child's
// descriptor its file, and stops counting, saying what, on the first change. Twice in a row.
describe.skipIf(!!missing)(`runc: a container with inotify and fanotify watches and another task's /proc file${missing ? ` (skipped: ${missing} not installed)` : ''}`, () => {
  const id = ids[8]!;
  const wbundle = path.join(work, 'bundle-watch');
  const rootfs = path.join(wbundle, 'rootfs');
  const wcount = path.join(rootfs, 'tmp/count');

  it('crtools checkpoints it and restores it (runc restore -d) twice: the watches and marks see their events, the child its descriptor, the count going on', () => {
    mkdirSync(bundle, { recursive: true });
    makeBundle(wbundle, ['/bin/rootwatch']);
    const config = JSON.parse(readFileSync(path.join(wbundle, 'config.json'), 'utf8'));
    for (const set of ['bounding', 'effective', 'permitted']) config.process.capabilities[set].push('CAP_SYS_ADMIN');
    writeFileSync(path.join(wbundle, 'config.json'), JSON.stringify(config, null, 1));
    const cc = spawnSync('gcc', ['-static', '-O1', '-o', path.join(rootfs, 'bin/rootwatch'), path.join(repoRoot, 'test/workloads/rootwatch.c')], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).toBe(0);
    let pid = start(id, wbundle);
    const failed = () => (existsSync(path.join(rootfs, 'tmp/fail')) ? readFileSync(path.join(rootfs, 'tmp/fail'), 'utf8') : '');
    expect(failed()).toBe('');
    for (const round of [1, 2]) {
      const images = path.join(work, `watch-images-${round}`);
      const ck = runc(['--criu', criuBin, 'checkpoint', '--image-path', images, '--work-path', path.join(work, `watch-work-${round}`), id]);
      expect(ck.status, `${ck.stderr}\n${tail(path.join(work, `watch-work-${round}`, 'dump.log'))}`).toBe(0);
      expect(waitGone(pid)).toBe(true);
      // the images as CRIU 4.2 writes them: an inotify watch, a fanotify group with an inode and a mount mark
      const files = critDecode(path.join(images, 'files.img')).entries as { type: string; ify?: { wd: unknown[] }; ffy?: { mark: { type: string }[] } }[];
      expect(files.filter((f) => f.type === 'INOTIFY').map((f) => f.ify!.wd.length)).toEqual([1]);
      expect(files.filter((f) => f.type === 'FANOTIFY').map((f) => f.ffy!.mark.map((m) => m.type).sort())).toEqual([['INODE', 'MOUNT']]);
      const logs = path.join(work, `watch-restore-${round}`);
      const r = runc(['--criu', criuBin, 'restore', '-d', '--image-path', images, '--work-path', logs, '--bundle', wbundle, id]);
      expect(r.status, `${r.stderr}\n${tail(path.join(logs, 'restore.log'))}`).toBe(0);
      const s = state(id)!;
      pids.add(s.pid);
      expect(s.status).toBe('running');
      pid = s.pid;
      const stopped = count(wcount);
      const { before, after } = advances(3000, wcount);
      expect(failed()).toBe('');
      expect(before).toBeGreaterThanOrEqual(stopped);
      expect(after).toBeGreaterThan(before);
    }
  });
});
