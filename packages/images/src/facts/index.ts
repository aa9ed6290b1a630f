// Facts of CRIU's image format that code on both sides needs, with no dependencies of their
// own (importable as @crtools/images/facts without loading the image codec).
export * from './vma.js';
export * from './pagemap.js';
export * from './task.js';
export * from './locks.js';
export * from './dev.js';
export * from './sockets.js';
export * from './tty.js';
export * from './mounts.js';
