/**
 * --force-irmap: the path of a watched or marked file (inotify, fanotify) whose kernel handle
 * does not open, found by its device and inode under a few directories, as CRIU's irmap finds
 * it: the --irmap-scan-path directories first (each searched whole), then CRIU's own list (the
 * places system daemons watch: /etc, /var/spool, /var/log, D-Bus's and polkit's directories,
 * /lib/udev, searched whole, and / itself). Paths are the tree's, looked at through the root
 * task's /proc/PID/root; symbolic links are not followed.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { decodeKdev, encodeDev } from '@crtools/images/facts';

/** CRIU's own scan list (irmap.c's hints): [path, searched whole] */
const HINTS: readonly (readonly [string, boolean])[] = [
  ['/etc', true], ['/var/spool', true], ['/var/log', true],
  ['/usr/share/dbus-1/services', true], ['/usr/share/dbus-1/system-services', true],
  ['/var/lib/polkit-1/localauthority', true], ['/usr/share/polkit-1/actions', true],
  ['/lib/udev', true], ['/', false],
];

/** At most this many directory entries are looked at for one file (a bound on a deep tree). */
const BUDGET = 200_000;

/**
 * A lookup of a file by device (the kernel's encoding, as fdinfo shows it) and inode under the
 * tree's root `root` (a /proc/PID/root): its path inside the tree, or undefined when none of the
 * scanned directories holds it. Each directory is searched once per dump.
 */
export function irmapLookup(root: string, scanPaths: readonly string[]): (sdev: number, ino: bigint) => string | undefined {
  const found = new Map<string, string>();
  const scanned = new Set<string>();
  const scan = (dir: string, whole: boolean) => {
    if (scanned.has(`${dir}\0${whole}`)) return;
    scanned.add(`${dir}\0${whole}`);
    let budget = BUDGET;
    // [path, depth]: a directory not searched whole is looked into one level only
    const stack: [string, number][] = [[dir, 0]];
    while (stack.length && budget-- > 0) {
      const [p, depth] = stack.pop()!;
      let st;
      try {
        st = lstatSync(root + p, { bigint: true });
      } catch {
        continue;
      }
      const key = `${st.dev}:${st.ino}`;
      if (!found.has(key)) found.set(key, p);
      if (!st.isDirectory() || (!whole && depth > 0)) continue;
      try {
        for (const n of readdirSync(root + p)) stack.push([`${p === '/' ? '' : p}/${n}`, depth + 1]);
      } catch {
        // unreadable: not searched
      }
    }
  };
  return (sdev, ino) => {
    const d = decodeKdev(sdev);
    const key = `${encodeDev(d.major, d.minor)}:${ino}`;
    for (const [dir, whole] of [...scanPaths.map((p) => [p, true] as const), ...HINTS]) {
      const hit = found.get(key);
      if (hit !== undefined) return hit;
      scan(dir, whole);
    }
    return found.get(key);
  };
}
