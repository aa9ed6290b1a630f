import { defineCommand } from 'citty';
import { exploreDir, usage, VIEWS } from '@crtools/crit';

/** `crit x DIR VIEW`: flags into @crtools/crit's exploreDir. */
export const xCommand = defineCommand({
  meta: { name: 'x', description: 'explore image dir' },
  args: {
    dir: { type: 'positional', required: false, description: 'checkpoint directory, or a checkpoint archive (podman checkpoint --export)' },
    what: { type: 'positional', required: false, description: `view: ${VIEWS.join(', ')}` },
    format: { type: 'string', description: 'text (default, as crit prints) or json' },
  },
  async run({ args }) {
    if (!args.dir || !args.what) throw usage(`x: usage: crit x DIR {${VIEWS.join(',')}} [--format json]`);
    return exploreDir(args.dir, args.what, process.stdout, { format: (args.format ?? 'text') as 'text' | 'json' });
  },
});
