/**
 * criu cpuinfo dump|check and --cpu-cap end to end, on this machine's CPU (whatever it is: the
 * doctored images take a feature this CPU lacks from its own probe): the image decodes with our
 * crit and Debian's, a bit this CPU lacks makes check fail with one line, dump writes
 * cpuinfo.img only when --cpu-cap asks, restore checks it then. With a CRIU 4+ binary
 * (CRIU=/path/to/criu, or a `criu` on PATH that says 4 or later) the images cross: CRIU accepts
 * ours and we accept CRIU's.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { referenceCrit, referenceCritUsable } from '@crtools/common/testing';
import { feature, hasFeature, hostCpuinfo, INS_FEATURES } from '@crtools/cpuinfo';
import { critBin } from '../lib/paths.js';
import { askVerdict, criu, killAllStarted, killTreeAndWait, startWorkload, tmp, waitReaped } from '../dump/helpers.js';

afterAll(() => killAllStarted());

// a real CRIU 4+ (crtools' own criu also says "Version: 4.2", with a "crtools:" line after it)
const CRIU = [process.env.CRIU, 'criu'].find((c) => {
  const v = c ? (spawnSync(c, ['--version'], { encoding: 'utf8' }).stdout ?? '') : '';
  return /Version: ([4-9]|\d\d)\./.test(v) && !/^crtools:/m.test(v);
});
const haveDebianCrit = referenceCritUsable();

function crit(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [critBin, ...args], { encoding: 'utf8', input, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

/** A copy of DIR's cpuinfo.img in a new directory, its x86 entry edited (through crit decode/encode). */
function doctored(from: string, edit: (e: any) => void): string {
  const d = tmp('cpuinfo-doctored');
  const dec = crit(['decode', '-i', path.join(from, 'cpuinfo.img')]);
  expect(dec.code, dec.stderr).toBe(0);
  const doc = JSON.parse(dec.stdout);
  edit(doc.entries[0].x86_entry[0]);
  const enc = crit(['encode', '-o', path.join(d, 'cpuinfo.img')], JSON.stringify(doc));
  expect(enc.code, enc.stderr).toBe(0);
  return d;
}

const host = hostCpuinfo();
/** An instruction-set feature this CPU lacks (there is always one: no CPU has them all). */
const lacking = INS_FEATURES.find((n) => !hasFeature(host.capability, feature(n)))!;
const withLacking = (e: any) => {
  const f = feature(lacking);
  e.capability[f >> 5] = (e.capability[f >> 5] | (1 << (f & 31))) >>> 0;
};
/** A bit no rule but cpu (strict) sees: word 7 is never filled. */
const withWord7 = (e: any) => {
  e.capability[7] = 1;
};

describe('criu cpuinfo dump | check on this machine', () => {
  const dir = tmp('cpuinfo');

  it('dump writes cpuinfo.img and says nothing; check accepts it under every rule', () => {
    expect(criu(['cpuinfo', 'dump', '-D', dir])).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(readdirSync(dir)).toEqual(['cpuinfo.img']);
    for (const cap of [[], ['--cpu-cap'], ['--cpu-cap=none'], ['--cpu-cap=cpu'], ['--cpu-cap=^fpu,ins']]) {
      expect(criu(['cpuinfo', 'check', '-D', dir, ...cap]), cap.join(' ')).toEqual({ code: 0, stdout: '', stderr: '' });
    }
  });

  it('our crit decodes it (and encodes it back byte for byte), as Debian\'s crit does', (ctx) => {
    const pretty = crit(['decode', '-i', path.join(dir, 'cpuinfo.img'), '--pretty']);
    expect(pretty.code, pretty.stderr).toBe(0);
    const doc = JSON.parse(pretty.stdout);
    expect(doc.magic).toBe('CPUINFO');
    const e = doc.entries[0].x86_entry[0];
    expect(e).toMatchObject({ vendor_id: host.vendor_id, cpu_family: host.cpu_family, model: host.model, stepping: host.stepping, capability_ver: 2 });
    expect(e.capability).toEqual(host.capability);
    expect(BigInt(e.xfeatures_mask)).toBe(host.xfeatures_mask);
    const again = path.join(tmp('cpuinfo-re'), 'cpuinfo.img');
    expect(crit(['encode', '-o', again], crit(['decode', '-i', path.join(dir, 'cpuinfo.img')]).stdout).code).toBe(0);
    expect(readFileSync(again).equals(readFileSync(path.join(dir, 'cpuinfo.img')))).toBe(true);
    if (!haveDebianCrit) return ctx.skip('Debian\'s crit (/usr/bin/crit with pycriu) is not installed');
    expect(JSON.parse(referenceCrit(['decode', '-i', path.join(dir, 'cpuinfo.img'), '--pretty']).toString())).toEqual(doc);
  });

  it(`an image with an instruction this CPU lacks (${lacking}): check exits 1 with one line naming it; --cpu-cap=^ins passes`, () => {
    const d = doctored(dir, withLacking);
    const r = criu(['cpuinfo', 'check', '-D', d]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(oneLine(r.stderr)).toBe(`criu: cpu: the image's CPU had instructions this CPU lacks: ${lacking} (--cpu-cap ins)`);
    expect(criu(['cpuinfo', 'check', '-D', d, '--cpu-cap=^ins']).code).toBe(0);
    expect(criu(['cpuinfo', 'check', '-D', d, '--cpu-cap=none']).code).toBe(1); // none: every rule
  });

  it('xsave mismatches are the fpu rule\'s', () => {
    const d = doctored(dir, (e) => {
      e.xsave_size += 64;
    });
    expect(oneLine(criu(['cpuinfo', 'check', '-D', d]).stderr)).toMatch(/^criu: cpu: the xsave area size differs: \d+ bytes in the image, \d+ here \(--cpu-cap fpu\)$/);
    expect(criu(['cpuinfo', 'check', '-D', d, '--cpu-cap=^fpu']).code).toBe(0);
  });

  it('a bit only the strict rule sees: default check passes; --cpu-cap=cpu, or cpu-cap cpu in a configuration file, fails', () => {
    const d = doctored(dir, withWord7);
    expect(criu(['cpuinfo', 'check', '-D', d]).code).toBe(0);
    expect(oneLine(criu(['cpuinfo', 'check', '-D', d, '--cpu-cap=cpu']).stderr)).toBe("criu: cpu: CPU capabilities differ: the image's CPU had word 7 bit 0 (--cpu-cap cpu wants them equal)");
    const conf = path.join(tmp('cpuinfo-conf'), 'c.conf');
    writeFileSync(conf, 'cpu-cap cpu\n');
    expect(criu(['cpuinfo', 'check', '-D', d], 60_000, { CRIU_CONFIG_FILE: conf }).code).toBe(1);
  });

  it('no image, or an unknown --cpu-cap value: exit 1', () => {
    const empty = tmp('cpuinfo-empty');
    expect(oneLine(criu(['cpuinfo', 'check', '-D', empty]).stderr)).toMatch(/^criu: no cpuinfo image \(.*\/cpuinfo\.img\)/);
    expect(criu(['cpuinfo', 'check', '-D', empty]).code).toBe(1);
    const r = criu(['cpuinfo', 'check', '-D', dir, '--cpu-cap=image']);
    expect(r).toMatchObject({ code: 1, stderr: "criu: --cpu-cap: unknown value 'image' in 'image' (fpu, cpu, ins, all, none; ^ removes one)\n" });
  });
});

describe('--cpu-cap on dump and restore', () => {
  function dumped(extra: string[]): { dir: string; pid: number; state: string } {
    const w = startWorkload('sleeper', []);
    const dir = tmp('cpucap-img');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', ...extra]);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    return { dir, pid: w.pid, state: w.state };
  }
  function finish(pid: number, state: string): void {
    expect(askVerdict(state, pid, 20_000)).toMatch(/^check ok/);
    killTreeAndWait(pid);
  }

  it('dump without --cpu-cap writes no cpuinfo.img (CRIU\'s default); a restore with --cpu-cap then fails, before anything runs', () => {
    const { dir, pid, state } = dumped([]);
    expect(existsSync(path.join(dir, 'cpuinfo.img'))).toBe(false);
    const r = criu(['restore', '-D', dir, '-d', '--cpu-cap=fpu']);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toMatch(/^criu: no cpuinfo image/);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    // the default restore does not look for it
    expect(criu(['restore', '-D', dir, '-d']).code).toBe(0);
    finish(pid, state);
  });

  it('dump --cpu-cap writes it (this CPU, as criu cpuinfo dump does); restore --cpu-cap checks it', () => {
    const { dir, pid, state } = dumped(['--cpu-cap']);
    const own = tmp('cpucap-own');
    expect(criu(['cpuinfo', 'dump', '-D', own]).code).toBe(0);
    expect(readFileSync(path.join(dir, 'cpuinfo.img')).equals(readFileSync(path.join(own, 'cpuinfo.img')))).toBe(true);
    // a doctored one is refused before anything runs
    const saved = readFileSync(path.join(dir, 'cpuinfo.img'));
    copyFileSync(path.join(doctored(dir, withLacking), 'cpuinfo.img'), path.join(dir, 'cpuinfo.img'));
    const bad = criu(['restore', '-D', dir, '-d', '--cpu-cap']);
    expect(bad.code).toBe(1);
    expect(oneLine(bad.stderr)).toBe(`criu: cpu: the image's CPU had instructions this CPU lacks: ${lacking} (--cpu-cap ins)`);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    writeFileSync(path.join(dir, 'cpuinfo.img'), saved);
    const r = criu(['restore', '-D', dir, '-d', '--cpu-cap', '-v4', '-o', 'restore.log']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(path.join(dir, 'restore.log'), 'utf8')).toMatch(/cpu: cpuinfo\.img fits this CPU \(--cpu-cap fpu,cpu,ins,image\)/);
    finish(pid, state);
  });

  it('--cpu-cap=none on dump writes none; an unknown value stops the dump before the tree is touched', () => {
    const w = startWorkload('sleeper', []);
    const bad = criu(['dump', '-t', String(w.pid), '-D', tmp('cpucap-bad'), '--cpu-cap=sse']);
    expect(bad).toMatchObject({ code: 1, stderr: "criu: --cpu-cap: unknown value 'sse' in 'sse' (fpu, cpu, ins, all, none; ^ removes one)\n" });
    expect(askVerdict(w.state, w.pid)).toMatch(/^check ok/);
    const dir = tmp('cpucap-none');
    expect(criu(['dump', '-t', String(w.pid), '-D', dir, '--cpu-cap=none', '-R']).code).toBe(0);
    expect(existsSync(path.join(dir, 'cpuinfo.img'))).toBe(false);
    w.kill();
  });
});

describe.skipIf(!CRIU)(`cpuinfo.img between CRIU and crtools (${CRIU ?? 'no CRIU 4+ binary here: CRIU=/path/to/criu'})`, () => {
  const run = (args: string[]) => spawnSync(CRIU!, args, { encoding: 'utf8', timeout: 60_000 });

  it('CRIU\'s cpuinfo dump: the same bytes as ours; we accept it under every rule, CRIU accepts ours', () => {
    const theirs = tmp('cpuinfo-criu');
    const ours = tmp('cpuinfo-ours');
    expect(run(['cpuinfo', 'dump', '-D', theirs]).status).toBe(0);
    expect(criu(['cpuinfo', 'dump', '-D', ours]).code).toBe(0);
    expect(readFileSync(path.join(ours, 'cpuinfo.img')).toString('hex')).toBe(readFileSync(path.join(theirs, 'cpuinfo.img')).toString('hex'));
    for (const cap of ['--cpu-cap=fpu', '--cpu-cap', '--cpu-cap=none']) {
      expect(criu(['cpuinfo', 'check', '-D', theirs, cap]).code, cap).toBe(0);
      expect(run(['cpuinfo', 'check', '-D', ours, cap]).status, cap).toBe(0);
    }
  });

  it('both refuse the same doctored images, and pass the same ones', () => {
    const ours = tmp('cpuinfo-ours2');
    expect(criu(['cpuinfo', 'dump', '-D', ours]).code).toBe(0);
    const cases: [string, (e: any) => void][] = [
      ['lacking', withLacking],
      ['word7', withWord7],
      ['xsave_size', (e) => { e.xsave_size += 64; }],
      ['xfeatures', (e) => { e.xfeatures_mask = Number(e.xfeatures_mask) | 0x200; }],
      ['v1', (e) => { e.capability_ver = 1; e.capability = e.capability.slice(0, 12); }],
      ['ver3', (e) => { e.capability_ver = 3; }],
    ];
    for (const [name, edit] of cases) {
      const d = doctored(ours, edit);
      for (const cap of [[], ['--cpu-cap'], ['--cpu-cap=^ins'], ['--cpu-cap=^fpu'], ['--cpu-cap=none']]) {
        expect(criu(['cpuinfo', 'check', '-D', d, ...cap]).code, `${name} ${cap.join(' ')}`).toBe(run(['cpuinfo', 'check', '-D', d, ...cap]).status);
      }
    }
  });

  it('dumped by CRIU with --cpu-cap, restored by us with --cpu-cap', () => {
    const w = startWorkload('sleeper', []);
    const dir = tmp('cpucap-criu-img');
    const d = run(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '--cpu-cap']);
    expect(d.status, d.stderr).toBe(0);
    expect(existsSync(path.join(dir, 'cpuinfo.img'))).toBe(true);
    expect(waitReaped(w.pid)).toBe(true);
    const r = criu(['restore', '-D', dir, '-d', '--cpu-cap']);
    expect(r.code, r.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid, 20_000)).toMatch(/^check ok/);
    killTreeAndWait(w.pid);
  });

  it('dumped by us with --cpu-cap, restored by CRIU with --cpu-cap', () => {
    const w = startWorkload('sleeper', []);
    const dir = tmp('cpucap-our-img');
    expect(criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '--cpu-cap']).code).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const r = run(['restore', '-D', dir, '-d', '-o', 'restore.log', '--cpu-cap']);
    expect(r.status, r.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid, 20_000)).toMatch(/^check ok/);
    killTreeAndWait(w.pid);
  });
});
