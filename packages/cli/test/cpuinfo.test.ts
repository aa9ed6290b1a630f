import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CPU_CAP } from '@crtools/common';
import { feature, hasFeature, hostCpuinfo, INS_FEATURES, setFeature, writeCpuinfoImage } from '@crtools/cpuinfo';
import { cpuCapOf } from '../src/criu/cpu-cap.js';
import { runCpuinfo } from '../src/criu/cpuinfo.js';
import { parseConfig } from '../src/criu/config.js';
import { optionalValueOption } from '../src/criu/flags.js';

const root = mkdtempSync(path.join(tmpdir(), 'crtools-cli-cpuinfo-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const newDir = () => {
  const d = path.join(root, `d${n++}`);
  mkdirSync(d);
  return d;
};
const criuBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/criu.js');
const criu = (args: string[]) => spawnSync(process.execPath, [criuBin, ...args], { encoding: 'utf8' });

async function run(action: 'dump' | 'check', dir: string, cap: number = CPU_CAP.FPU | CPU_CAP.INS, extra: { log_file?: string; log_level?: number } = {}) {
  const err: string[] = [];
  const code = await runCpuinfo(action, { images_dir: dir, cpu_cap: cap, log_level: extra.log_level ?? 2, log_file: extra.log_file }, { err: (l) => err.push(l) });
  return { code, err };
}

describe('--cpu-cap on the command line (optional value, as getopt takes it)', () => {
  it('only --cpu-cap=V carries a value; a bare --cpu-cap leaves the next word alone', () => {
    expect(optionalValueOption(['--cpu-cap', '-D', 'x', '--cpu-cap=ins', '--cpu-cap='], '--cpu-cap')).toEqual([undefined, 'ins', '']);
    expect(optionalValueOption(['--', '--cpu-cap'], '--cpu-cap')).toEqual([]);
  });

  it('every occurrence over the default', () => {
    const { FPU, CPU, INS, IMAGE, ALL } = CPU_CAP;
    expect(cpuCapOf(['-D', 'x'])).toBe(FPU | INS);
    expect(cpuCapOf(['--cpu-cap', '-D', 'x'])).toBe(ALL | IMAGE);
    expect(cpuCapOf(['--cpu-cap=none', '--cpu-cap=cpu'])).toBe(CPU | IMAGE);
    expect(() => cpuCapOf(['--cpu-cap=image'])).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => cpuCapOf(['--no-cpu-cap'])).toThrow(/unrecognized option '--no-cpu-cap'/);
  });

  it('a configuration file\'s `cpu-cap VALUE` is --cpu-cap=VALUE', () => {
    expect(parseConfig('cpu-cap ^fpu\ncpu-cap\ncpu-cap=ins\nlog-file x.log\n', 'f').map((s) => s.words)).toEqual([
      ['--cpu-cap=^fpu'], ['--cpu-cap'], ['--cpu-cap=ins'], ['--log-file', 'x.log'],
    ]);
  });
});

describe('runCpuinfo (the core of criu cpuinfo dump|check)', () => {
  it('dump then check on this CPU: 0, nothing said', async () => {
    const d = newDir();
    expect(await run('dump', d)).toEqual({ code: 0, err: [] });
    for (const cap of [CPU_CAP.FPU | CPU_CAP.INS, CPU_CAP.NONE, CPU_CAP.ALL | CPU_CAP.IMAGE]) expect(await run('check', d, cap)).toEqual({ code: 0, err: [] });
  });

  it('an image with an instruction this CPU lacks: exit 1, one line naming it; ^ins passes', async () => {
    const host = hostCpuinfo();
    const lacking = INS_FEATURES.find((f) => !hasFeature(host.capability, feature(f)))!;
    const capability = [...host.capability];
    setFeature(capability, feature(lacking));
    const d = newDir();
    await writeCpuinfoImage(d, { ...host, capability });
    const r = await run('check', d, CPU_CAP.FPU | CPU_CAP.INS, { log_file: 'check.log' });
    expect(r.code).toBe(1);
    expect(r.err).toEqual([`criu: cpu: the image's CPU had instructions this CPU lacks: ${lacking} (--cpu-cap ins)`]);
    expect(readFileSync(path.join(d, 'check.log'), 'utf8')).toMatch(/Error \(cpu\): cpu: the image's CPU had instructions/);
    expect((await run('check', d, CPU_CAP.FPU)).code).toBe(0);
  });

  it('no image, a bad image, no directory: check exits 1', async () => {
    const d = newDir();
    expect(await run('check', d)).toMatchObject({ code: 1, err: [expect.stringMatching(/^criu: no cpuinfo image/)] });
    writeFileSync(path.join(d, 'cpuinfo.img'), 'garbage!');
    expect(await run('check', d)).toMatchObject({ code: 1, err: [expect.stringMatching(/^criu: /)] });
    expect((await run('check', path.join(root, 'none'))).code).toBe(1);
  });

  it('dump: no directory exits 1, a failed write 255 (CRIU\'s main returning -1)', async () => {
    expect(await run('dump', path.join(root, 'none'))).toMatchObject({ code: 1, err: [expect.stringMatching(/^criu: cannot open the images directory .*: ENOENT$/)] });
    const d = newDir();
    mkdirSync(path.join(d, 'cpuinfo.img'));
    expect(await run('dump', d)).toMatchObject({ code: 255, err: [expect.stringMatching(/EISDIR/)] });
  });
});

describe('the bin', () => {
  it('criu cpuinfo dump && criu cpuinfo check; an unknown --cpu-cap value is a usage error (exit 1, as criu)', () => {
    const d = newDir();
    expect(criu(['cpuinfo', 'dump', '-D', d])).toMatchObject({ status: 0, stdout: '', stderr: '' });
    expect(criu(['cpuinfo', 'check', '--cpu-cap', '-D', d])).toMatchObject({ status: 0, stdout: '', stderr: '' });
    expect(criu(['cpuinfo', 'check', '-D', d, '--cpu-cap=fpu,image'])).toMatchObject({
      status: 1, stderr: "criu: --cpu-cap: unknown value 'image' in 'fpu,image' (fpu, cpu, ins, all, none; ^ removes one)\n",
    });
    expect(criu(['cpuinfo', 'check', '-D', d, '--link-remap'])).toMatchObject({ status: 4 });
  });
});
