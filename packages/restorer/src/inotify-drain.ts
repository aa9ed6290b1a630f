/**
 * The events a restore itself queues on the tree's inotify instances — the unlinked files made
 * again and unlinked once the tasks hold them: IN_ATTRIB on a watch on such a file, IN_DELETE of
 * its names on a watch on its directory — which no task caused: read and dropped once those
 * names are gone, before any task resumes, as CRIU 4.2's restore drops them. A queue is never
 * carried (the dump keeps no events, as CRIU's), so all it holds then is the restore's.
 */
import { readSync } from 'node:fs';
import { closeFd, probeFile, takeTaskFd } from '@crtools/sys';
import type { RestorePlan } from './plan.js';

export function dropRestoreEvents(plan: RestorePlan, hostOf: (pid: number) => number | undefined): void {
  plan.files.forEach((f, i) => {
    if (f.kind !== 'inotify') return;
    const t = plan.tasks.find((x) => !x.zombie && x.fds.some((d) => d.file === i));
    if (!t) return;
    const fd = t.fds.find((d) => d.file === i)!.fd;
    const pid = hostOf(t.pid) ?? t.pid;
    const queued = probeFile(pid, fd).nread;
    if (queued <= 0) return;
    // (whole events only come out of a read: the queued bytes are whole events, nothing adds to them now)
    const own = takeTaskFd(pid, fd);
    try {
      const buf = Buffer.alloc(queued);
      for (let got = 0; got < queued; ) got += readSync(own, buf, got, queued - got, null);
    } finally {
      closeFd(own);
    }
  });
}
