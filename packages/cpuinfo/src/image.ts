/**
 * cpuinfo.img: one cpuinfo_entry holding one cpuinfo_x86_entry, written and read through
 * @crtools/images (the same framing as every image), and judged against this CPU.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { CPU_CAP, CrtoolsError, ExitCode, isCrtoolsError, silentLogger, type Logger } from '@crtools/common';
import { readImageFile, writeImageFile } from '@crtools/images';
import { cpuMismatch } from './check.js';
import { NCAPINTS, WORDS_OF_VERSION } from './features.js';
import { hostCpuinfo } from './probe.js';
import type { X86Cpuinfo } from './types.js';

/** The file name CRIU gives it in an images directory. */
export const CPUINFO_IMAGE = 'cpuinfo.img';

/** Error codes of this package. */
export const CpuinfoErrorCode = {
  /** the images directory cannot be opened (exit 1) */
  DIR: 'CPUINFO_DIR',
  /** no cpuinfo.img, or one without an entry (exit 1) */
  MISSING: 'CPUINFO_MISSING',
  /** an entry CRIU would not accept: no x86 entry, unknown vendor or capability version, wrong word count (exit 3) */
  BAD_IMAGE: 'CPUINFO_BAD_IMAGE',
  /** the image's CPU breaks a --cpu-cap rule here; context: rule, mismatch (the CpuMismatch) (exit 1) */
  MISMATCH: 'CPUINFO_MISMATCH',
  /** this CPU's vendor is neither Intel nor AMD (exit 4) */
  VENDOR: 'CPUINFO_VENDOR',
  /** this CPU has an FPU without fxsave (exit 4) */
  NO_FXSR: 'CPUINFO_NO_FXSR',
} as const;

/** The cpuinfo_entry written for an x86 CPU. */
export function cpuinfoEntry(cpu: X86Cpuinfo): { x86_entry: object[] } {
  return {
    x86_entry: [{
      vendor_id: cpu.vendor_id,
      cpu_family: cpu.cpu_family,
      model: cpu.model,
      stepping: cpu.stepping,
      capability_ver: cpu.capability_ver,
      capability: cpu.capability,
      ...(cpu.model_id ? { model_id: cpu.model_id } : {}),
      xfeatures_mask: cpu.xfeatures_mask,
      xsave_size: cpu.xsave_size,
      xsave_size_max: cpu.xsave_size_max,
    }],
  };
}

function dirError(dir: string, e: unknown): CrtoolsError {
  const code = (e as NodeJS.ErrnoException).code ?? 'ENOTDIR';
  return new CrtoolsError(CpuinfoErrorCode.DIR, `cannot open the images directory ${dir}: ${code}`, { exitCode: ExitCode.FAILED, context: { path: dir }, cause: e });
}

function checkDir(dir: string): void {
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    throw dirError(dir, e);
  }
  if (!st.isDirectory()) throw dirError(dir, Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }));
}

/** Write cpuinfo.img for `cpu` (default: this CPU) into an existing images directory; its path. */
export async function writeCpuinfoImage(dir: string, cpu: X86Cpuinfo = hostCpuinfo()): Promise<string> {
  checkDir(dir);
  const file = path.join(dir, CPUINFO_IMAGE);
  await writeImageFile(file, { magic: 'CPUINFO', entries: [cpuinfoEntry(cpu)] });
  return file;
}

function badImage(file: string, why: string): CrtoolsError {
  return new CrtoolsError(CpuinfoErrorCode.BAD_IMAGE, `${file}: ${why}`, { exitCode: ExitCode.BAD_INPUT, context: { path: file } });
}

/**
 * An image's x86 entry as a complete X86Cpuinfo, the way CRIU reads it: the vendor must be
 * Intel or AMD, the capability version 1 (12 words) or 2 (19); a version 1 image's missing
 * words, and a missing xfeatures_mask or xsave size, are taken from `host`, so that no rule
 * fails on what the image does not say.
 */
export function imageCpuinfo(entry: Record<string, unknown>, host: X86Cpuinfo, file = CPUINFO_IMAGE): X86Cpuinfo {
  const x86 = entry['x86_entry'];
  if (!Array.isArray(x86) || x86.length !== 1) {
    throw badImage(file, `no x86 cpuinfo in the image (${Array.isArray(x86) ? x86.length : 0} x86 entries, 1 expected)`);
  }
  const e = x86[0] as Record<string, unknown>;
  const vendor = e['vendor_id'];
  if (vendor !== 'INTEL' && vendor !== 'AMD') throw badImage(file, `unknown CPU vendor ${String(vendor)}`);
  const ver = Number(e['capability_ver']);
  const words = (e['capability'] as number[] | undefined) ?? [];
  const want = WORDS_OF_VERSION[ver];
  if (want === undefined) throw badImage(file, `unknown capability version ${ver}`);
  if (words.length !== want) throw badImage(file, `${words.length} capability words where version ${ver} has ${want}`);
  const capability = [...words.map((x) => x >>> 0), ...host.capability.slice(words.length, NCAPINTS)];
  const opt = <T>(k: string, dflt: T): T => (e[k] === undefined ? dflt : (e[k] as T));
  return {
    vendor_id: vendor,
    cpu_family: Number(e['cpu_family']),
    model: Number(e['model']),
    stepping: Number(e['stepping']),
    capability_ver: ver,
    capability,
    ...(typeof e['model_id'] === 'string' ? { model_id: e['model_id'] } : {}),
    xfeatures_mask: BigInt(opt<bigint | number>('xfeatures_mask', host.xfeatures_mask)),
    xsave_size: opt('xsave_size', host.xsave_size),
    xsave_size_max: opt('xsave_size_max', host.xsave_size_max),
  };
}

export interface ValidateOptions {
  /** the CPU to judge against (default: this one) */
  host?: X86Cpuinfo;
  logger?: Logger;
}

/**
 * Judge the images directory's cpuinfo.img against this CPU under `cap` (CRIU's restore-time
 * check, also `criu cpuinfo check`'s). Returns the image's CPU; throws CPUINFO_MISSING,
 * CPUINFO_BAD_IMAGE (or an image framing error) or CPUINFO_MISMATCH, whose message is one line
 * naming what differs and whose context holds the CpuMismatch (`mismatch`).
 */
export async function validateCpuinfoImage(dir: string, cap: number, opts: ValidateOptions = {}): Promise<X86Cpuinfo> {
  const log = opts.logger ?? silentLogger;
  checkDir(dir);
  const host = opts.host ?? hostCpuinfo();
  const file = path.join(dir, CPUINFO_IMAGE);
  if (!existsSync(file)) {
    throw new CrtoolsError(CpuinfoErrorCode.MISSING, `no cpuinfo image (${file}): 'criu cpuinfo dump' writes one, so does a dump with --cpu-cap (a restore with --cpu-cap=none does without)`, { exitCode: ExitCode.FAILED, context: { path: file } });
  }
  const img = await readImageFile(file, { name: 'CPUINFO' });
  if (img.entries.length === 0) {
    throw new CrtoolsError(CpuinfoErrorCode.MISSING, `no cpuinfo in ${file} (the image has no entry)`, { exitCode: ExitCode.FAILED, context: { path: file } });
  }
  const image = imageCpuinfo(img.entries[0] as Record<string, unknown>, host, file);
  log.debug(`cpu: image: ${describe(image)}; here: ${describe(host)}`);
  const m = cpuMismatch(image, host, cap);
  if (m) throw new CrtoolsError(CpuinfoErrorCode.MISMATCH, `cpu: ${m.message}`, { exitCode: ExitCode.FAILED, context: { path: file, rule: m.rule, mismatch: m } });
  return image;
}

/**
 * `criu cpuinfo check`: validateCpuinfoImage, except that cpu_cap 0 (--cpu-cap=none) means
 * every rule, as in CRIU (one may still ask for ins alone, and so on).
 */
export function checkCpuinfoImage(dir: string, cap: number, opts: ValidateOptions = {}): Promise<X86Cpuinfo> {
  return validateCpuinfoImage(dir, cap === CPU_CAP.NONE ? CPU_CAP.ALL : cap, opts);
}

function describe(c: X86Cpuinfo): string {
  return `${c.vendor_id} family ${c.cpu_family} model ${c.model} stepping ${c.stepping} '${c.model_id ?? ''}' xfeatures 0x${c.xfeatures_mask.toString(16)} xsave ${c.xsave_size}/${c.xsave_size_max}`;
}

/** Whether an error is one of this package's. */
export function isCpuinfoError(e: unknown): e is CrtoolsError {
  return isCrtoolsError(e) && Object.values(CpuinfoErrorCode).includes(e.code as never);
}
