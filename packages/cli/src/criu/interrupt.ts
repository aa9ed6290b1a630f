/**
 * SIGINT and SIGTERM turned into an AbortSignal for the work of one command (dump, pre-dump,
 * restore: each stops at its next safe point and undoes what it did). Each is taken once: a
 * second one meanwhile ends criu as by default. `release()` gives both back their default.
 */
export function interruptible(): { signal: AbortSignal; release: () => void } {
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => ac.abort(sig);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: ac.signal,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
