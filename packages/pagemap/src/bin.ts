import { pagemapCommand } from './command.js';

// a closed pipe (… | head) ends the output quietly
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
});
pagemapCommand(process.argv.slice(2), process.stdout, process.stderr).then((code) => {
  process.exitCode = code;
});
