/**
 * The `crtools-pagemap` command as a function: (argv, stdout, stderr) → exit code.
 * Data (JSON Lines or raw pages) goes to stdout, one error line to stderr.
 */
import type { Writable } from 'node:stream';
import { ExitCode, isCrtoolsError } from '@crtools/common';
import { PAGE_SIZE, PE_LAZY, PE_PARENT, PE_PRESENT } from './constants.js';
import { openPageReader } from './reader.js';
import { dedup } from './dedup.js';
import { createServer, type Socket } from 'node:net';
import { servePageServer } from './page-server.js';

const USAGE = `usage: crtools-pagemap <command> -D DIR [options]
  entries  -D DIR PID [--shmem]          pagemap entries as JSON Lines
  segments -D DIR PID [--shmem]          where each page's data lives (parents resolved), JSON Lines
  read     -D DIR PID VADDR NPAGES [--shmem]  raw page data to stdout
  dedup    -D DIR                         punch pages overridden by DIR out of its parents
  page-server -D DIR [--address A] [--port N] [--lazy-pages]
                                          serve one CRIU page-server session (TCP, default port 27)
`;

export function flagNames(flags: number): string[] {
  const out: string[] = [];
  if (flags & PE_PARENT) out.push('PE_PARENT');
  if (flags & PE_LAZY) out.push('PE_LAZY');
  if (flags & PE_PRESENT) out.push('PE_PRESENT');
  return out;
}

function write(out: Writable, s: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => out.write(s, (e) => (e ? reject(e) : resolve())));
}

const hex = (v: bigint) => '0x' + v.toString(16);

export async function pagemapCommand(argv: readonly string[], stdout: Writable, stderr: Writable): Promise<number> {
  const pos: string[] = [];
  let dir: string | undefined;
  let shmem = false;
  let address = '0.0.0.0';
  let port = 27;
  let lazyPages = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-D' || a === '--images-dir') dir = argv[++i];
    else if (a.startsWith('--images-dir=')) dir = a.slice(13);
    else if (a === '--shmem') shmem = true;
    else if (a === '--address') address = argv[++i] ?? '';
    else if (a === '--port') port = Number(argv[++i]);
    else if (a === '--lazy-pages') lazyPages = true;
    else if (a === '-h' || a === '--help') {
      await write(stdout, USAGE);
      return ExitCode.OK;
    } else pos.push(a);
  }
  const [cmd, ...rest] = pos;
  const usage = async (why: string) => {
    await write(stderr, `crtools-pagemap: ${why}\n${USAGE}`);
    return ExitCode.USAGE;
  };
  if (!cmd) return usage('missing command');
  if (!dir) return usage('missing -D DIR');
  const kind = shmem ? 'shmem' : 'task';
  const id = (s: string | undefined) => (s && /^\d+$/.test(s) ? BigInt(s) : null);
  try {
    switch (cmd) {
      case 'entries':
      case 'segments': {
        const pid = id(rest[0]);
        if (pid === null) return usage('missing or bad PID');
        const r = await openPageReader({ dir, id: pid, kind });
        try {
          if (cmd === 'entries') {
            for (const e of r.entries) await write(stdout, JSON.stringify({ vaddr: hex(e.vaddr), nrPages: e.nrPages, flags: flagNames(e.flags), offset: e.offset }) + '\n');
          } else {
            for (const s of r.segments()) await write(stdout, JSON.stringify({ vaddr: hex(s.vaddr), nrPages: s.nrPages, path: s.path, offset: s.offset }) + '\n');
          }
        } finally {
          r.close();
        }
        return ExitCode.OK;
      }
      case 'read': {
        const pid = id(rest[0]);
        const vaddr = rest[1] && /^(0x)?[0-9a-f]+$/i.test(rest[1]) ? BigInt(rest[1].startsWith('0x') ? rest[1] : '0x' + rest[1]) : null;
        const n = rest[2] && /^\d+$/.test(rest[2]) ? Number(rest[2]) : NaN;
        if (pid === null || vaddr === null || !(n > 0)) return usage('read needs PID VADDR NPAGES');
        const r = await openPageReader({ dir, id: pid, kind });
        try {
          const step = 256;
          for (let done = 0; done < n; done += step) {
            const k = Math.min(step, n - done);
            const buf = Buffer.alloc(k * PAGE_SIZE);
            r.read(vaddr + BigInt(done) * BigInt(PAGE_SIZE), buf);
            await write(stdout, buf);
          }
        } finally {
          r.close();
        }
        return ExitCode.OK;
      }
      case 'page-server': {
        if (!Number.isInteger(port) || port < 0 || port > 65535) return usage('bad --port');
        const server = createServer();
        await new Promise<void>((res, rej) => {
          server.once('error', rej);
          server.listen(port, address, () => res());
        });
        const bound = server.address();
        await write(stderr, `crtools-pagemap: page server listening on ${typeof bound === 'object' && bound ? `${bound.address}:${bound.port}` : String(bound)}\n`);
        const sock = await new Promise<Socket>((res) => server.once('connection', res));
        server.close();
        try {
          const res = await servePageServer(sock, { dir, mode: lazyPages ? 'lazy' : 'receive' });
          await write(stdout, JSON.stringify(res) + '\n');
        } finally {
          sock.destroy();
        }
        return ExitCode.OK;
      }
      case 'dedup': {
        const res = await dedup({ dir });
        await write(stdout, JSON.stringify(res) + '\n');
        return ExitCode.OK;
      }
      default:
        return usage(`unknown command ${cmd}`);
    }
  } catch (e) {
    if (isCrtoolsError(e)) {
      await write(stderr, `crtools-pagemap: ${e.message}\n`);
      return e.exitCode;
    }
    await write(stderr, `crtools-pagemap: ${e instanceof Error ? e.message : String(e)}\n`);
    return ExitCode.FAILED;
  }
}
