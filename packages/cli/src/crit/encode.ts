import { defineCommand } from 'citty';
import { encodeImage, stdinInput, withOutput, type Input } from '@crtools/crit';

/** `crit encode`: flags into @crtools/crit's encodeImage. */
export const encodeCommand = defineCommand({
  meta: { name: 'encode', description: 'convert criu image from json type to binary' },
  args: {
    in: { type: 'string', alias: 'i', description: 'criu image in json format to be encoded (stdin by default)' },
    out: { type: 'string', alias: 'o', description: 'where to put criu image in binary format (stdout by default)' },
  },
  async run({ args }) {
    const input: Input = args.in ? args.in : stdinInput('JSON');
    return withOutput(args.out, (w) => encodeImage(input, w));
  },
});
