/**
 * @crtools/files: every kind of file crtools carries across a checkpoint, one folder a kind
 * (src/kinds/<kind>/: dump.ts, plan.ts, view.ts). Three sides, three entry points, so that
 * each user loads only its own: `@crtools/files/dump` (descriptors of frozen tasks → files.img
 * and the images beside it), `@crtools/files/plan` (those images → what the restorer makes
 * again), `@crtools/files/view` (what crit's explorers show). This entry has all three.
 */
export * from './dump/index.js';
export * from './plan/index.js';
export * from './view/index.js';
