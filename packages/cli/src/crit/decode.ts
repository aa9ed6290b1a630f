import { defineCommand } from 'citty';
import { decodeImage, stdinInput, usage, withOutput, type Input } from '@crtools/crit';

/** `crit decode` and `crit show`: flags into @crtools/crit's decodeImage. */
export const decodeCommand = defineCommand({
  meta: { name: 'decode', description: 'convert criu image from binary type to json' },
  args: {
    pretty: { type: 'boolean', description: 'Multiline with indents and some numerical fields in field-specific format' },
    in: { type: 'string', alias: 'i', description: 'criu image in binary format to be decoded (stdin by default)' },
    out: { type: 'string', alias: 'o', description: 'where to put criu image in json format (stdout by default)' },
  },
  async run({ args }) {
    const input: Input = args.in ? args.in : stdinInput('an image');
    return withOutput(args.out, (w) => decodeImage(input, w, { pretty: !!args.pretty, newline: !args.out }));
  },
});

export const showCommand = defineCommand({
  meta: { name: 'show', description: 'convert criu image from binary to human-readable json' },
  args: {
    in: { type: 'positional', required: false, description: 'criu image in binary format' },
    nopl: { type: 'boolean', description: 'do not show entry payload (if exists)' },
  },
  async run({ args }) {
    if (!args.in) throw usage('show: missing image file argument (crit show IMAGE [--nopl])');
    return decodeImage(args.in, process.stdout, { pretty: true, nopl: !!args.nopl, newline: true });
  },
});
