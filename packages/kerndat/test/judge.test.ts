import { describe, expect, it } from 'vitest';
import { CHECK_BAD, CHECK_GOOD, CHECK_MAYBE, FEATURES, FEATURE_LIST, judge, type Kerndat } from '../src/index.js';
import { booleanPaths, machineDoc, perfectDoc, withBool } from './helpers.js';

describe('judge: the verdicts of criu check', () => {
  it('a document where everything works: Looks good. for every category', () => {
    const k = perfectDoc();
    for (const category of ['required', 'extra', 'experimental', 'all'] as const) {
      const r = judge(k, { category });
      expect(r, category).toMatchObject({ verdict: 'good', exitCode: 0, stdout: [CHECK_GOOD], stderr: [] });
    }
  });

  it('the real 6.18 machine: required features all there; --extra names what this kernel lacks', () => {
    const k = machineDoc();
    expect(judge(k)).toMatchObject({ verdict: 'good', exitCode: 0, stdout: [CHECK_GOOD] });
    const extra = judge(k, { category: 'extra' });
    expect(extra.verdict).toBe('maybe');
    expect(extra.exitCode).toBe(1);
    expect(extra.stdout).toEqual([CHECK_MAYBE]);
    // no soft-dirty on this kernel, but uffd-wp + PAGEMAP_SCAN tracks written pages instead
    expect(extra.findings.map((f) => f.name)).not.toContain('mem_dirty_track');
    expect(extra.findings.map((f) => f.name)).not.toContain('pagemap_scan');
  });

  it('each boolean turned off in turn: category 1 -> Does not look good., others -> only with --extra/--all', () => {
    const good = perfectDoc();
    const baseline = new Set(FEATURES.filter((f) => f.test(good) !== undefined).map((f) => f.name));
    expect([...baseline]).toEqual([]);
    let flipsThatMatter = 0;
    const caught = new Set<string>();
    for (const path of booleanPaths(good)) {
      if (good[path[0] as keyof Kerndat] === undefined) continue;
      const k = withBool(good, path, false);
      const broken = FEATURES.filter((f) => f.test(k) !== undefined && !baseline.has(f.name));
      broken.forEach((f) => caught.add(f.name));
      const cat1 = broken.filter((f) => f.category === 1);
      const base = judge(k);
      const all = judge(k, { category: 'all' });
      if (cat1.length) {
        flipsThatMatter++;
        expect(base.verdict, path.join('.')).toBe('bad');
        expect(base.exitCode).toBe(1);
        expect(base.stderr.at(-1)).toBe(CHECK_BAD);
        // one line naming what is missing and what it breaks, before the verdict
        expect(base.stderr).toHaveLength(2);
        expect(base.stderr[0]).toMatch(new RegExp(`^${cat1[0]!.name}: .+; .+`));
        expect(base.stdout).toEqual([]);
        expect(all.verdict).toBe('bad');
      } else if (broken.some((f) => (f.category === 2 || f.category === 3) && all.findings.some((x) => x.name === f.name))) {
        flipsThatMatter++;
        expect(base.verdict, path.join('.')).toBe('good');
        expect(all.verdict, path.join('.')).toBe('maybe');
        expect(all.exitCode).toBe(1);
        const named = broken.filter((f) => f.category !== 4 && all.findings.some((x) => x.name === f.name));
        expect(named.length, path.join('.')).toBeGreaterThan(0);
        for (const f of named) expect(all.stderr.some((l) => l.startsWith(`${f.name}: `))).toBe(true);
      }
    }
    expect(flipsThatMatter).toBeGreaterThan(60);
    // every feature is reachable by turning one fact off, except the ones that are not kernel
    // facts, apparmor (needs lsm=APPARMOR), loginuid (an enum, tested below) and mem_dirty_track
    // (soft-dirty or uffd-wp + PAGEMAP_SCAN: both must be off, tested below)
    const unreachable = FEATURES.map((f) => f.name).filter((n) => !caught.has(n));
    expect(unreachable.sort()).toEqual(['apparmor_stacking', 'external_net_ns', 'loginuid', 'mem_dirty_track'].sort());
  });

  it('all has_* false: Does not look good. with a non-zero exit', () => {
    const k = perfectDoc() as unknown as Record<string, unknown>;
    for (const key of Object.keys(k)) if (key.startsWith('has_')) k[key] = false;
    const r = judge(k as unknown as Kerndat);
    expect(r.verdict).toBe('bad');
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr.at(-1)).toBe(CHECK_BAD);
    expect(r.stderr[0]).toMatch(/^caps: neither CAP_CHECKPOINT_RESTORE nor CAP_SYS_ADMIN is effective; /);
  });

  it('missing keys count as missing features (not probed), never as present', () => {
    const k = perfectDoc() as unknown as Record<string, unknown>;
    delete k.has_kcmp;
    (k.errors as Record<string, string>).kcmp = 'the probe blew up';
    const r = judge(k as unknown as Kerndat);
    expect(r.verdict).toBe('bad');
    expect(r.stderr[0]).toContain('kcmp');
    expect(r.stderr[0]).toContain('not probed');
  });

  it('an optional (category 4) feature warns but keeps Looks good.', () => {
    const r = judge({ ...perfectDoc(), has_breakpoints: false });
    expect(r).toMatchObject({ verdict: 'good', exitCode: 0, stdout: [CHECK_GOOD] });
    expect(r.stderr).toEqual([expect.stringMatching(/^breakpoints: a hardware breakpoint set with ptrace did not fire; /)]);
  });

  it('--feature list: CRIU feature names, each one checkable', () => {
    const r = judge(perfectDoc(), { feature: 'list' });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toEqual([...FEATURE_LIST]);
    expect(r.stdout).toContain('uffd-noncoop');
    expect(r.stdout).toContain('pagemap_scan_guard_pages');
    for (const name of FEATURE_LIST) {
      const one = judge(perfectDoc(), { feature: name });
      if (name === 'pidfd_store') expect(one.verdict).toBe('unsupported');
      else expect(one, name).toMatchObject({ verdict: 'supported', exitCode: 0, stdout: [`${name} is supported${name === 'mem_dirty_track' ? ' (soft-dirty)' : ''}`] });
    }
  });

  it("--feature pidfd_store: unsupported whatever the kernel has, naming crtools, as its RPC FEATURE_CHECK answers (CRIU's libcriu test_feature_check compares them); the sweeps judge the kernel alone", () => {
    expect(judge(perfectDoc(), { category: 'all' })).toMatchObject({ verdict: 'good', exitCode: 0 });
    expect(judge(perfectDoc(), { feature: 'pidfd_store' })).toMatchObject({ verdict: 'unsupported', exitCode: 1, stderr: [expect.stringMatching(/^pidfd_store: crtools keeps no pidfd store \(RPC pidfd_store_sk\); /)] });
    expect(judge({ ...perfectDoc(), has_pidfd_getfd: false }, { feature: 'pidfd_store' }).stderr[0]).toMatch(/^pidfd_store: pidfd_open or pidfd_getfd is not supported; /);
  });

  it('--feature NAME: supported / missing / unknown', () => {
    const k = machineDoc();
    expect(judge(k, { feature: 'clone3_set_tid' })).toMatchObject({ exitCode: 0, stdout: ['clone3_set_tid is supported'] });
    // no soft-dirty here: the method said is uffd-wp + PAGEMAP_SCAN; without either, unsupported
    expect(judge(k, { feature: 'mem_dirty_track' })).toMatchObject({ exitCode: 0, stdout: ['mem_dirty_track is supported (uffd-wp + PAGEMAP_SCAN, no soft-dirty on this kernel)'] });
    const m = judge({ ...k, has_pagemap_scan_dirty_track: false }, { feature: 'mem_dirty_track' });
    expect(m).toMatchObject({ exitCode: 1, verdict: 'unsupported', stdout: [] });
    expect(m.stderr[0]).toMatch(/^mem_dirty_track: neither soft-dirty/);
    expect(judge(k, { feature: 'no_such_thing' })).toMatchObject({ exitCode: 1, stderr: ['Unknown feature no_such_thing'] });
    // category-1 names are not CRIU feature names
    expect(judge(k, { feature: 'map_files' }).verdict).toBe('unknown-feature');
  });

  it('loginuid needs LUID_FULL; apparmor_stacking matters only under AppArmor', () => {
    expect(judge({ ...perfectDoc(), luid: 'LUID_READ' }, { feature: 'loginuid' }).verdict).toBe('unsupported');
    expect(judge({ ...perfectDoc(), luid: 'LUID_FULL' }, { feature: 'loginuid' }).verdict).toBe('supported');
    const aa = { ...perfectDoc(), lsm: 'APPARMOR' as const, apparmor_ns_dumping_enabled: false };
    expect(judge(aa, { category: 'extra' }).findings.map((f) => f.name)).toEqual(['apparmor_stacking']);
    expect(judge({ ...aa, apparmor_ns_dumping_enabled: true }, { category: 'extra' }).verdict).toBe('good');
  });

  it('uffd-noncoop needs the fork/remap/remove/unmap events', () => {
    const k = { ...perfectDoc(), uffd_features: 0x1n };
    expect(judge(k, { feature: 'uffd' }).verdict).toBe('supported');
    expect(judge(k, { feature: 'uffd-noncoop' }).verdict).toBe('unsupported');
    // fork, remap, remove, unmap = bits 1, 2, 3, 6
    expect(judge({ ...k, uffd_features: 0x4en }, { feature: 'uffd-noncoop' }).verdict).toBe('supported');
    expect(judge({ ...k, uffd_features: 0x0en }, { feature: 'uffd-noncoop' }).verdict).toBe('unsupported');
  });

  it('--extra and --experimental combine like --all', () => {
    const k = { ...perfectDoc(), has_tun: false, compat_cr: false };
    expect(judge(k, { category: 'extra' }).findings.map((f) => f.name)).toEqual(['tun']);
    expect(judge(k, { category: 'experimental' }).findings.map((f) => f.name)).toEqual(['compat_cr']);
    expect(judge(k, { category: ['extra', 'experimental'] }).findings.map((f) => f.name)).toEqual(['tun', 'compat_cr']);
    expect(judge(k, { category: 'all' }).findings.map((f) => f.name)).toEqual(['tun', 'compat_cr']);
  });
});
