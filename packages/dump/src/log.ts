import { appendFileSync, openSync, closeSync, writeSync } from 'node:fs';

/**
 * A log in CRIU's style: every line starts with the time since the start of the run,
 * `(00.012345) `, errors and warnings say so and where: `Error (dump/tree): message`.
 * Levels as CRIU's -v: 0 = errors only, 1 = + warnings, 2 = + info (default),
 * 3 = + more info, 4 = + debug.
 */
export class DumpLog {
  private readonly t0 = process.hrtime.bigint();
  private fd: number | undefined;

  constructor(
    readonly level = 2,
    path?: string,
    private readonly stderr: (line: string) => void = () => {},
  ) {
    if (path) this.fd = openSync(path, 'a', 0o600);
  }

  private stamp(): string {
    const us = Number((process.hrtime.bigint() - this.t0) / 1000n);
    const s = Math.floor(us / 1e6);
    return `(${String(s).padStart(2, '0')}.${String(us % 1e6).padStart(6, '0')})`;
  }

  private line(lvl: number, text: string): void {
    if (lvl > this.level) return;
    const l = `${this.stamp()} ${text}\n`;
    if (this.fd !== undefined) writeSync(this.fd, l);
  }

  error(where: string, msg: string): void {
    this.line(0, `Error (${where}): ${msg}`);
    this.stderr(msg);
  }
  warn(where: string, msg: string): void {
    this.line(1, `Warn  (${where}): ${msg}`);
  }
  info(msg: string): void {
    this.line(2, msg);
  }
  debug(msg: string): void {
    this.line(4, msg);
  }
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Append to a log file without a DumpLog (used after the log was closed). */
export function appendLog(path: string, text: string): void {
  appendFileSync(path, text);
}
