export * from './exit-codes.js';
export * from './error.js';
export * from './hex.js';
export * from './logger.js';
export * from './version.js';
export * from './options.js';
export * from './native.js';
export * from './sleep.js';
