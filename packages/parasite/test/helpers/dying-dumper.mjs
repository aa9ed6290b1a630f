// A dumper to be SIGKILLed by the test in the middle of a page transfer: it seizes PID, infects
// it and moves the task's readable pages through a 64 KiB pipe into fd 3, a pipe that its parent
// never empties, so that the task soon waits in its vmsplice. It says `transferring` first.
// (Built package: tests run after the build.)
import { freezeProcess, openPageTransfer, withInfection } from '../../dist/index.js';
import { readFileSync, writeSync } from 'node:fs';

const pid = Number(process.argv[2]);
const runs = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')
  .filter((l) => l && /^r/.test(l.split(/\s+/)[1] ?? '') && !/\[(vvar|vvar_vclock|vsyscall)\]$/.test(l))
  .map((l) => {
    const [a, b] = l.split(' ')[0].split('-').map((x) => BigInt(`0x${x}`));
    return { vaddr: a, nrPages: Number((b - a) / 4096n) };
  });
const threads = freezeProcess(pid);
await withInfection(pid, threads, (inf) => {
  const x = openPageTransfer(inf, 65536, true);
  writeSync(1, 'transferring\n');
  x.transfer(runs, 3);
});
writeSync(1, 'transfer ended: the test did not kill us in time\n');
