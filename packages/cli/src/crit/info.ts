import { defineCommand } from 'citty';
import { infoImage, usage } from '@crtools/crit';

/** `crit info`: flags into @crtools/crit's infoImage. */
export const infoCommand = defineCommand({
  meta: { name: 'info', description: 'show info about image' },
  args: {
    in: { type: 'positional', required: false, description: 'criu image in binary format' },
  },
  async run({ args }) {
    if (!args.in) throw usage('info: missing image file argument (crit info IMAGE)');
    return infoImage(args.in, process.stdout);
  },
});
