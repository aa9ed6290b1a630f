export * from './wait-status.js';
export * from './regs.js';
export * from './xsave.js';
export * from './ptrace.js';
export * from './remote.js';
export * from './commands.js';
export * from './parasite.js';
export { native, setNativeBinding } from './load-native.js';
export type { ParasiteNative } from './native.js';
