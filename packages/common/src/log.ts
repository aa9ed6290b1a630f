import { appendFileSync } from 'node:fs';
import type { Logger } from './logger.js';

/**
 * A log in CRIU's shape and with CRIU's levels (-v0..-v4): every line starts with the time
 * since the start, `(00.012345) `; errors and warnings say so and where:
 * `Error (dump): message`, `Warn  (restore): message`. Level 1 errors, 2 warnings (the
 * default), 3 info, 4 debug. Into a file (-o) when given; otherwise lines of level 3 and up
 * go to `stderr` only when that much was asked for (errors reach the user once, through the
 * command's own error line).
 */
export class CriuLog {
  /**
   * Whether any log file was opened in this process: a command that fails before its library
   * opens the log (a refused option, a bad value) writes its error line there itself, as CRIU,
   * which opens its log before anything else, would have it (callers read the log on failure).
   */
  static fileOpened = false;
  private readonly t0 = process.hrtime.bigint();

  // (appended line by line, no descriptor held: nothing of it can reach the tasks a restore makes)
  constructor(
    readonly level = 2,
    private path?: string,
    private readonly stderr: (line: string) => void = () => {},
  ) {
    if (path) {
      appendFileSync(path, '', { mode: 0o600 }); // the file exists even when nothing is logged
      CriuLog.fileOpened = true;
    }
  }

  private stamp(): string {
    const us = Number((process.hrtime.bigint() - this.t0) / 1000n);
    return `(${String(Math.floor(us / 1e6)).padStart(2, '0')}.${String(us % 1e6).padStart(6, '0')})`;
  }

  private line(lvl: number, text: string): void {
    if (lvl > this.level) return;
    const l = `${this.stamp()} ${text}`;
    if (this.path !== undefined) appendFileSync(this.path, l + '\n', { mode: 0o600 });
    else if (this.level >= 3 && lvl > 1) this.stderr(l);
  }

  error(where: string, msg: string): void {
    this.line(1, `Error (${where}): ${msg}`);
  }
  /**
   * An error the operation goes on after (a failing post-resume script): no command error
   * line will carry it, so without a log file it goes to `stderr` whatever the level.
   */
  errorGoingOn(where: string, msg: string): void {
    if (this.path === undefined && this.level >= 1) this.stderr(`${this.stamp()} Error (${where}): ${msg}`);
    else this.error(where, msg);
  }
  warn(where: string, msg: string): void {
    this.line(2, `Warn  (${where}): ${msg}`);
  }
  info(msg: string): void {
    this.line(3, msg);
  }
  debug(msg: string): void {
    this.line(4, msg);
  }

  /** This log as the Logger interface libraries take, errors and warnings marked `where`. */
  logger(where: string): Logger {
    const text = (a: unknown[]) => a.map(String).join(' ');
    return {
      error: (...a) => this.error(where, text(a)),
      warn: (...a) => this.warn(where, text(a)),
      info: (...a) => this.info(text(a)),
      debug: (...a) => this.debug(text(a)),
    };
  }

  /** No more lines to the file after this. */
  close(): void {
    this.path = undefined;
  }
}
