// as-user.mjs ADDRESS JSON-REQUEST: one raw criu_req to a `criu service`, as whoever runs this
// (the service test runs it as nobody); the answer as one JSON line. `imagesDir` in opts is opened
// here and sent as images_dir_fd.
import { openSync, constants } from 'node:fs';
import { CriuClient } from '@crtools/rpc';

const [address, json] = process.argv.slice(2);
const req = JSON.parse(json);
if (req.opts?.imagesDir) {
  req.opts.images_dir_fd = openSync(req.opts.imagesDir, constants.O_RDONLY | constants.O_DIRECTORY);
  delete req.opts.imagesDir;
}
const r = await new CriuClient({ address }).request(req);
process.stdout.write(JSON.stringify(r) + '\n');
