/**
 * What a library may log through. Libraries never print; they take an optional
 * logger. consola instances satisfy this interface.
 */
export interface Logger {
  error(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  info(...args: unknown[]): void;
  debug(...args: unknown[]): void;
}

export const silentLogger: Logger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
};
