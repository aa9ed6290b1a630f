/** Helpers of the othersocks workload's tests (sockets.test.ts, criu-images.test.ts). */
import { readFileSync, writeFileSync } from 'node:fs';
import { readState, startWorkload, type Workload } from '../dump/helpers.js';

const PING_RANGE = '/proc/sys/net/ipv4/ping_group_range';

/**
 * Ping sockets need the caller's group in net.ipv4.ping_group_range: root's (0) is let in for
 * the tests and the setting put back after.
 */
export function allowRootPing(): () => void {
  const saved = readFileSync(PING_RANGE, 'utf8').trim();
  const [lo, hi] = saved.split(/\s+/).map(Number) as [number, number];
  if (lo <= 0 && hi >= 0) return () => {};
  writeFileSync(PING_RANGE, '0 0');
  return () => writeFileSync(PING_RANGE, saved.replace(/\s+/, ' '));
}

/** A UDP echo server on 127.0.0.1, outside the tree under test, and its port. */
export function startEcho(): { echo: Workload; port: number } {
  const echo = startWorkload('othersocks', ['echo']);
  const port = Number(/port=(\d+)/.exec(readState(echo.state))![1]);
  return { echo, port };
}

