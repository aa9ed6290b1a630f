export { criuCommand } from './criu/command.js';
export { critCommand } from './crit/command.js';
