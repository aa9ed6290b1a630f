export * from './constants.js';
export * from './plan.js';
export * from './writer.js';
export * from './sink.js';
export * from './reader.js';
export * from './dedup.js';
export * from './page-server.js';
export * from './command.js';
