import { parseArgs } from 'citty';
import { describe, expect, it } from 'vitest';
import { namedOptions, unknownOption } from '../src/options-check.js';
import { criuCommand, critCommand } from '../src/index.js';
import { resolve, type AnyCommand } from '../src/run.js';

type Defs = Parameters<typeof namedOptions>[0];

async function leaf(root: AnyCommand, name: string): Promise<Defs> {
  const subs = (await resolve(root.subCommands as unknown)) as Record<string, unknown>;
  return ((await resolve(((await resolve(subs[name])) as AnyCommand).args as unknown)) ?? {}) as Defs;
}

/** What citty's parse with `defs` gives: every own key and value, and the value of every name (and alias) of `all` asked of its proxy. */
function seen(defs: Defs, words: string[], all: Defs): unknown {
  let parsed: Record<string, unknown>;
  try {
    parsed = parseArgs(words, defs as never) as Record<string, unknown>;
  } catch (e) {
    return { error: (e as Error).message };
  }
  const asked = Object.keys(all).flatMap((n) => [[n, parsed[n]], ...[(all[n]!.alias ?? [])].flat().map((a) => [a, parsed[a]])]);
  return { own: Object.entries({ ...parsed }), asked };
}

describe('namedOptions: citty parses the words with the options they name as with all of them', () => {
  it('criu dump, restore, check, pre-dump, page-server and crit decode, for words of every form', async () => {
    const cases: [AnyCommand, string, string[][]][] = [
      [criuCommand, 'dump', [
        [], ['-t', '12', '-D', 'd'], ['-t12', '-Dd', '-vvvv', '-o', 'dump.log'], ['--tree=12', '--images-dir', 'd', '--leave-running', '--shell-job'],
        ['-t', '1', '-Rj', '-lx'], ['-t', '1', '--no-leave-running', '--leave-running=false', '--file-locks=true'], ['-t', '1', '-v4', '--log-file', '--leave-running'],
        ['-t', '1', '--external', 'a', '--external', 'b', '--ext-mount-map', 'x:y', '--ext-mount-map', 'auto'], ['-t', '1', '--', '--leave-running', 'x'],
        ['-t', '1', '--tcp-established', '--skip-in-flight', '--network-lock', 'skip', '--manage-cgroups=full', '--cgroup-root', '/a'], ['-t', '1', '-R', '--no-R'],
        ['--pidfile', 'p', '-t', '2', '-W', 'w', '--display-stats', '--status-fd', '3', '--timeout', '5', '--track-mem', '--prev-images-dir', '../p'],
        ['-t', '1', '--cpu-cap', 'none', '--cpu-cap=fpu', '--log-pid', '--verbosity', '4'], ['-t'], ['-t', '1', '--images-dir'],
      ]],
      [criuCommand, 'restore', [
        [], ['-D', 'd', '-d'], ['-Dd', '-d', '-j', '--restore-detached', '--restore-sibling', '--pidfile=p'], ['-D', 'd', '--inherit-fd', 'fd[3]:x', '--inherit-fd', 'fd[4]:y', '-S'],
        ['-D', 'd', '--root', '/r', '--ext-mount-map', 'a:b', '--no-restore-detached', '-vvv', '--lazy-pages', '--tcp-close'], ['-d', '-D'],
      ]],
      [criuCommand, 'check', [[], ['--feature', 'mem_dirty_track'], ['--all', '--extra', '--experimental'], ['--kerndat', '-', '--close', '3'], ['-v4', '--feature=list']]],
      [criuCommand, 'pre-dump', [['-t', '1', '-D', 'd', '--track-mem', '--pre-dump-mode', 'read'], ['-t', '1', '--pre-dump-mode=splice']]],
      [criuCommand, 'page-server', [['-D', 'd', '--port', '1234', '--address', '127.0.0.1'], ['-d', '--port=0', '--status-fd', '3']]],
      [critCommand, 'decode', [['-i', 'core-1.img'], ['-i', 'x', '--pretty', '-o', 'y'], ['--in=x', '--no-pretty'], []]],
    ];
    let n = 0;
    for (const [root, name, wordLists] of cases) {
      const defs = await leaf(root, name);
      expect(Object.keys(defs).length).toBeGreaterThan(0);
      for (const words of wordLists) {
        if (unknownOption(defs, words) !== undefined) continue; // (runMain refuses these first)
        const fewer = namedOptions(defs, words);
        expect(Object.keys(fewer).length).toBeLessThanOrEqual(Object.keys(defs).length);
        expect([name, words, seen(fewer, words, defs)]).toEqual([name, words, seen(defs, words, defs)]);
        n++;
      }
    }
    expect(n).toBeGreaterThan(25);
    // a dump's words name a few of its ~100 options
    const dump = await leaf(criuCommand, 'dump');
    expect(Object.keys(dump).length).toBeGreaterThan(60);
    expect(Object.keys(namedOptions(dump, ['-t', '12', '-D', 'd'])).length).toBeLessThan(15);
    }, 60_000);
});
