export * from './constants.js';
export * from './plan.js';
