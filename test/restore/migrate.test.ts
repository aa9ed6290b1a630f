/**
 * Live migration: incremental rounds over the page server (pre-dump --page-server, a final dump
 * --page-server --prev-images-dir --track-mem), the page server writing each round with its
 * parent link; --auto-dedup on dump, pre-dump, page server and restore; scripts/migrate.sh run
 * end to end with the workload's own verdict. Every process is killed by pid.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { repoRoot } from '../lib/paths.js';
import { alive, askVerdict, criu, killAllStarted, killTreeAndWait, ourCritDecode, sleep, startWorkload, tmp, waitGone, waitReaped } from '../dump/helpers.js';
import { killRestored, restoreDir } from './roundtrip.js';

afterEach(() => {
  killRestored();
  killAllStarted();
});

function stats(dir: string): { pages_written: number; pages_skipped_parent: number } {
  const d = ourCritDecode(path.join(dir, 'stats-dump')).entries[0].dump;
  return { pages_written: Number(d.pages_written), pages_skipped_parent: Number(d.pages_skipped_parent) };
}

/** A free TCP port on loopback (bound and released), and the one after it free too, for a script's rounds. */
function freePorts(n: number): number {
  for (;;) {
    const r = spawnSync(process.execPath, ['-e', `const net=require('net');const s=net.createServer().listen(0,'127.0.0.1',async()=>{const p=s.address().port;s.close();let ok=true;for(let i=1;i<=${n};i++){ok=ok&&await new Promise(r=>{const t=net.createServer().once('error',()=>r(false)).listen(p+i,'127.0.0.1',()=>{t.close();r(true)})})}console.log(ok&&p+${n}<65536?p:0)})`], { encoding: 'utf8' });
    const p = Number(r.stdout.trim());
    if (p > 0) return p;
  }
}

/** Allocated blocks of a pages image (holes punched lower it). */
const blocks = (f: string) => statSync(f).blocks;

function kill(pid: number): void {
  killTreeAndWait(pid);
}

describe('live migration over the page server', () => {
  it('scripts/migrate.sh: 2 pre-dumps while the workload writes, a final dump over the page server, restored from the destination with its verdict', () => {
    // 32 MiB, rewriting 1 MiB/s on its own
    const w = startWorkload('dirtier', ['32', '1', '0']);
    const base = tmp('migrate');
    const src = path.join(base, 'src');
    const dst = path.join(base, 'dst');
    const port = freePorts(3);
    // (the script runs the criu named by CRIU when set: the interop tests' CRIU= names CRIU 4.2,
    // whose pre-dump cannot run on this kernel; this test is crtools' own migration)
    const { CRIU: _other, ...env } = process.env;
    const r = spawnSync('bash', [path.join(repoRoot, 'scripts/migrate.sh'), String(w.pid), src, dst, '2'], {
      encoding: 'utf8', timeout: 240_000, env: { ...env, PORT: String(port - 1), PAUSE: '0.3', AUTO_DEDUP: '1' },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(Number(r.stdout.trim())).toBe(w.pid);
    // the destination's chain: final → 2 → 1, the pages there; the source kept no pages
    expect(readlinkSync(path.join(dst, 'final', 'parent'))).toBe('../2');
    expect(readlinkSync(path.join(dst, '2', 'parent'))).toBe('../1');
    expect(existsSync(path.join(dst, 'final', `pagemap-${w.pid}.img`))).toBe(true);
    expect(existsSync(path.join(src, 'final', `pagemap-${w.pid}.img`))).toBe(false);
    // the final dump sent only what was written since the second pre-dump
    const s = stats(path.join(src, 'final'));
    expect(s.pages_skipped_parent).toBeGreaterThan(0);
    expect(s.pages_written).toBeLessThan(32 * 256);
    expect(askVerdict(w.state, w.pid, 20_000)).toMatch(/^check ok bad=0/);
    kill(w.pid);
  }, 300_000);

  it('pre-dump --page-server and dump --page-server --prev-images-dir --track-mem: the page server links each round to its parent, dedups with --auto-dedup, the restore reads the chain', () => {
    const w = startWorkload('dirtier', ['8', '0', '0']);
    const PAGES = 8 * 256;
    const base = tmp('ps-incr');
    const port = freePorts(3);
    const rounds = ['p1', 'p2', 'final'];
    for (const [i, name] of rounds.entries()) {
      const dst = path.join(base, 'dst', name);
      const src = path.join(base, 'src', name);
      spawnSync('mkdir', ['-p', dst, src]);
      const parent = i ? ['--prev-images-dir', `../${rounds[i - 1]}`] : [];
      const ps = criu(['page-server', '-D', dst, '--address', '127.0.0.1', '--port', String(port + i), ...parent, '--auto-dedup', '--daemon', '--pidfile', 'ps.pid', '-o', 'ps.log', '-v4']);
      expect(ps.code, ps.stderr).toBe(0);
      const server = Number(readFileSync(path.join(dst, 'ps.pid'), 'utf8'));
      const cmd = name === 'final' ? ['dump', '--track-mem'] : ['pre-dump'];
      const d = criu([...cmd, '-t', String(w.pid), '-D', src, ...parent, '--page-server', '--address', '127.0.0.1', '--port', String(port + i), '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(0);
      expect(waitGone(server, 10_000)).toBe(true);
      if (i) {
        expect(readlinkSync(path.join(dst, 'parent'))).toBe(`../${rounds[i - 1]}`);
        const st = stats(src);
        expect(st.pages_skipped_parent).toBeGreaterThan(PAGES / 2);
        expect(st.pages_written).toBeLessThan(PAGES / 8 + 256);
        expect(readFileSync(path.join(dst, 'ps.log'), 'utf8')).toMatch(/page-server/);
      }
      if (name !== 'final') {
        expect(askVerdict(w.state, w.pid)).toMatch(/^check ok/);
        process.kill(w.pid, 'SIGUSR2');
        sleep(150);
      }
    }
    expect(waitReaped(w.pid)).toBe(true);
    // the page server's --auto-dedup punched what p2 rewrote out of p1's pages
    const p1Pages = path.join(base, 'dst', 'p1', 'pages-65537.img');
    expect(blocks(p1Pages) * 512).toBeLessThan(statSync(p1Pages).size);
    const final = path.join(base, 'dst', 'final');
    for (const f of spawnSync('ls', [path.join(base, 'src', 'final')], { encoding: 'utf8' }).stdout.split('\n')) {
      if (f && !['parent', 'dump.log', 'crtools-mem-track.json'].includes(f)) spawnSync('cp', ['-a', path.join(base, 'src', 'final', f), final]);
    }
    const r = restoreDir(final);
    expect(r.code, r.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid, 20_000)).toMatch(/^check ok bad=0/);
    kill(w.pid);
  }, 300_000);

  it('--auto-dedup on pre-dump, dump and restore (local images); criu dedup over a pre-dump chain', () => {
    const w = startWorkload('dirtier', ['8', '0', '0']);
    const base = tmp('autodedup');
    const [p1, p2, p3, fin] = ['p1', 'p2', 'p3', 'final'].map((d) => path.join(base, d));
    expect(criu(['pre-dump', '-t', String(w.pid), '-D', p1!]).code).toBe(0);
    const full = blocks(path.join(p1!, 'pages-1.img'));
    process.kill(w.pid, 'SIGUSR2');
    sleep(150);
    const a = criu(['pre-dump', '-t', String(w.pid), '-D', p2!, '--prev-images-dir', '../p1', '--auto-dedup', '-o', 'pre-dump.log', '-v4']);
    expect(a.code, a.stderr).toBe(0);
    expect(readFileSync(path.join(p2!, 'pre-dump.log'), 'utf8')).toMatch(/auto-dedup: \d+ bytes punched/);
    const afterP2 = blocks(path.join(p1!, 'pages-1.img'));
    expect(afterP2).toBeLessThan(full);
    // criu dedup over a chain of pre-dumps: p3 written without --auto-dedup, then deduped
    process.kill(w.pid, 'SIGUSR2');
    sleep(150);
    expect(criu(['pre-dump', '-t', String(w.pid), '-D', p3!, '--prev-images-dir', '../p2']).code).toBe(0);
    const chain = () => blocks(path.join(p1!, 'pages-1.img')) + blocks(path.join(p2!, 'pages-1.img'));
    const beforeDedup = chain();
    const dd = criu(['dedup', '-D', p3!]);
    expect(dd.code, dd.stderr).toBe(0);
    expect(chain()).toBeLessThan(beforeDedup);
    expect(askVerdict(w.state, w.pid)).toMatch(/^check ok bad=0/);
    process.kill(w.pid, 'SIGUSR2');
    sleep(150);
    const d = criu(['dump', '-t', String(w.pid), '-D', fin!, '--prev-images-dir', '../p3', '--track-mem', '--auto-dedup']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const finPages = path.join(fin!, 'pages-1.img');
    const finBlocks = blocks(finPages);
    const r = restoreDir(fin!, ['--auto-dedup', '-o', 'restore.log', '-v4']);
    expect(r.code, r.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid, 20_000)).toMatch(/^check ok bad=0/);
    // the pages read back were punched out of the images
    expect(readFileSync(path.join(fin!, 'restore.log'), 'utf8')).toMatch(/auto-dedup: [1-9]\d* bytes/);
    expect(blocks(finPages)).toBeLessThan(finBlocks);
    // every page the chain still held was needed and read back (or was the vDSO's, given afresh):
    // no pages image of the chain keeps a block (CRIU's others/mem-snap dedup-on-restore check)
    const left = [p1!, p2!, p3!, fin!].flatMap((d) => readdirSync(d).filter((f) => /^pages-\d+\.img$/.test(f)).map((f) => [path.join(d, f), blocks(path.join(d, f))] as const));
    expect(left.filter(([, b]) => b > 0)).toEqual([]);
    expect(alive(w.pid)).toBe(true);
    kill(w.pid);
  }, 300_000);
});
