import { CrtoolsError, ExitCode, hexReplacer } from '@crtools/common';
import { KERNDAT_SCHEMA, type Kerndat } from './types.js';

/** The kerndat document as JSON text (64-bit values as '0x…' strings). */
export function stringifyKerndat(k: Kerndat, indent = 2): string {
  return JSON.stringify(k, hexReplacer, indent);
}

const TOP_BIGINT = ['task_size', 'mmap_min_addr', 'zero_page_pfn', 'uffd_features', 'cap_eff'];

function bad(msg: string): never {
  throw new CrtoolsError('KERNDAT_BAD_INPUT', `malformed kerndat document: ${msg}`, { exitCode: ExitCode.BAD_INPUT });
}

function big(v: unknown, where: string): bigint {
  if (typeof v === 'string' && /^0x[0-9a-fA-F]+$/.test(v)) return BigInt(v);
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  return bad(`${where} should be a hex string, got ${JSON.stringify(v)}`);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Check and convert a kerndat document read from JSON (text or parsed value).
 * Throws CrtoolsError KERNDAT_BAD_INPUT (exit code 3) on anything malformed.
 */
export function parseKerndat(input: string | unknown): Kerndat {
  let v: unknown = input;
  if (typeof input === 'string') {
    if (input.trim() === '') bad('empty input');
    try {
      v = JSON.parse(input);
    } catch (e) {
      bad(`not JSON (${(e as Error).message})`);
    }
  }
  if (!isObj(v)) bad('not a JSON object');
  const o: Record<string, unknown> = { ...v };
  if (o.schema !== KERNDAT_SCHEMA) bad(`schema should be "${KERNDAT_SCHEMA}", got ${JSON.stringify(o.schema)}`);
  for (const k of ['release', 'boot_id', 'arch']) if (typeof o[k] !== 'string') bad(`"${k}" should be a string`);
  if (o.errors === undefined) o.errors = {};
  if (o.probes === undefined) o.probes = [];
  if (!Array.isArray(o.probes) || o.probes.some((p) => typeof p !== 'string')) bad('"probes" should be an array of probe names');
  if (!isObj(o.errors)) bad('"errors" should be an object');
  for (const [k, val] of Object.entries(o)) {
    if ((k.startsWith('has_') || ['ipv6', 'sk_ns', 'sk_unix_file', 'tun_ns', 'can_map_vdso', 'compat_cr', 'stack_guard_gap_hidden', 'vdso_hint_reliable'].includes(k)) && typeof val !== 'boolean')
      bad(`"${k}" should be true or false, got ${JSON.stringify(val)}`);
  }
  for (const k of TOP_BIGINT) if (o[k] !== undefined) o[k] = big(o[k], k);
  for (const k of ['page_size', 'stack_guard_gap', 'last_cap', 'sysctl_nr_open', 'shmem_dev', 'probe_revision'])
    if (o[k] !== undefined && (typeof o[k] !== 'number' || !Number.isFinite(o[k]))) bad(`"${k}" should be a number`);
  if (o.vdso !== undefined) {
    if (!isObj(o.vdso)) bad('"vdso" should be an object');
    const d: Record<string, unknown> = { ...o.vdso };
    if (!Array.isArray(d.areas)) bad('"vdso.areas" should be an array');
    d.areas = (d.areas as unknown[]).map((a, i) => {
      if (!isObj(a) || typeof a.name !== 'string') bad(`vdso.areas[${i}] is not an area`);
      return { name: a.name, start: big(a.start, `vdso.areas[${i}].start`), end: big(a.end, `vdso.areas[${i}].end`), size: big(a.size, `vdso.areas[${i}].size`) };
    });
    for (const k of ['vvar_size', 'vvar_vclock_size', 'vdso_size']) d[k] = big(d[k], `vdso.${k}`);
    if (!isObj(d.symbols)) bad('"vdso.symbols" should be an object');
    d.symbols = Object.fromEntries(Object.entries(d.symbols).map(([n, x]) => [n, big(x, `vdso.symbols.${n}`)]));
    for (const k of ['mremap_ok', 'elf_ok', 'has_vvar_vclock', 'has_vsyscall']) if (typeof d[k] !== 'boolean') bad(`"vdso.${k}" should be true or false`);
    o.vdso = d;
  }
  if (o.xsave !== undefined) {
    if (!isObj(o.xsave)) bad('"xsave" should be an object');
    o.xsave = { ...o.xsave, xcr0: big(o.xsave.xcr0, 'xsave.xcr0') };
  }
  if (o.libc_rseq_conf !== undefined) {
    if (!isObj(o.libc_rseq_conf)) bad('"libc_rseq_conf" should be an object');
    o.libc_rseq_conf = { ...o.libc_rseq_conf, rseq_abi_pointer: big(o.libc_rseq_conf.rseq_abi_pointer, 'libc_rseq_conf.rseq_abi_pointer') };
  }
  if (o.sock_diag !== undefined) {
    if (!isObj(o.sock_diag)) bad('"sock_diag" should be an object');
    for (const [k, val] of Object.entries(o.sock_diag)) if (typeof val !== 'boolean') bad(`"sock_diag.${k}" should be true or false`);
  }
  return o as unknown as Kerndat;
}
