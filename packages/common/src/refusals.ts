/**
 * What a dump refuses: an object of the tree it cannot carry (a descriptor, a mapping, a task
 * attribute, an option). A dump stops at the first refusal; a preflight (`criu dump
 * --check-only`) goes on and gathers every one, so that one run names all that is in the way.
 * The engines say where a refusal may be raised with `Refusals.check`, around the smallest piece
 * of work that can go without it (one descriptor, one mapping, one attribute).
 */
import { CrtoolsError, isCrtoolsError } from './error.js';
import { ExitCode } from './exit-codes.js';

/** Refusals that are not "unsupported" (exit 4) but still a property of the tree, not a failure of the run. */
const TREE_REFUSALS = new Set(['DUMP_SHELL_JOB', 'DUMP_FILE_LOCKS']);

/** Whether an error is a refusal of something in the tree (rather than a failure of the dump itself). */
export function isRefusal(e: unknown): e is CrtoolsError {
  return isCrtoolsError(e) && (e.exitCode === ExitCode.UNSUPPORTED || TREE_REFUSALS.has(e.code));
}

export class Refusals {
  /** every refusal gathered so far, in the order met (each message once) */
  readonly found: CrtoolsError[] = [];

  /** gather: keep going past refusals (a preflight); otherwise the first one is thrown */
  constructor(readonly gather = false) {}

  /** Note a refusal: thrown, or gathered. */
  refuse(e: CrtoolsError): void {
    if (!this.gather) throw e;
    if (!this.found.some((f) => f.message === e.message)) this.found.push(e);
  }

  /**
   * Run `fn`; a refusal it throws is thrown again, or — gathering — kept, and `undefined` is
   * returned in place of what `fn` would have given. Any other error passes through.
   */
  check<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (e) {
      if (!this.gather || !isRefusal(e)) throw e;
      this.refuse(e);
      return undefined;
    }
  }
}
