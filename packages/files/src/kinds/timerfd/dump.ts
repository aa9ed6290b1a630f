/** timerfd: clock, time left, interval and expirations not yet read, as fdinfo shows them. */
import { anonInodeKind, fown, noFdinfo } from '../../dump/kind.js';

export const timerfdDump = anonInodeKind('anon_inode:[timerfd]', 'TIMERFD', (pid, rec, id, flags) => {
  const t = rec.timerfd ?? noFdinfo(pid, rec);
  // it_value is the time left until the next expiry (relative, whatever settime flags said)
  return {
    type: 'TIMERFD', id,
    tfd: {
      id, flags, fown: fown(), clockid: t.clockid, ticks: t.ticks, settime_flags: t.settimeFlags,
      vsec: t.value.sec, vnsec: t.value.nsec, isec: t.interval.sec, insec: t.interval.nsec,
    },
  };
});
