/** sched_setscheduler's flag that rides in bit 30 of the policy sched_getscheduler() gives */
export const SCHED_RESET_ON_FORK = 0x40000000;

/** Whether a policy (SCHED_RESET_ON_FORK or not) is SCHED_FIFO or SCHED_RR: one with a real-time priority. */
export function isRealtimePolicy(policy: number): boolean {
  const base = policy & ~SCHED_RESET_ON_FORK;
  return base === 1 /* SCHED_FIFO */ || base === 2 /* SCHED_RR */;
}
