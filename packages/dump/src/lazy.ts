/**
 * `criu dump --lazy-pages [--address A] --port P`: once every image is written (the lazy pages
 * left out, flagged PE_LAZY in the pagemaps) and the post-dump hook has run, a page server on A:P
 * answers the lazy-pages daemon of the restoring side (`criu lazy-pages --page-server`) from the
 * memory of the tree, still frozen, as CRIU's cr_lazy_mem_dump serves them from the page pipes
 * of the frozen tasks. The transfer has succeeded when the daemon ends with PS_IOV_CLOSE (it sends
 * it once it has completed every task); a daemon that goes away without it, an error, or an
 * abort fails it, and the caller resumes the tree as it was.
 */
import { CriuLog, CrtoolsError, ExitCode, isCrtoolsError } from '@crtools/common';
import { listenPageServer, servePageServer, type FrozenLazyPages } from '@crtools/pagemap';

export async function serveLazyPages(source: FrozenLazyPages, at: { address?: string; port: number } | undefined, log: CriuLog, signal?: AbortSignal): Promise<void> {
  if (!at) throw new CrtoolsError('USAGE', '--lazy-pages needs --port for its page server', { exitCode: ExitCode.USAGE });
  const aborted = () => new CrtoolsError('DUMP_ABORTED', `dump interrupted while serving lazy pages (${String(signal?.reason ?? 'aborted')})`, { exitCode: ExitCode.FAILED });
  if (signal?.aborted) throw aborted();
  const l = await listenPageServer({ ...(at.address ? { address: at.address } : {}), port: at.port });
  const stop = () => l.close();
  signal?.addEventListener('abort', stop, { once: true });
  try {
    log.info(`Starting lazy pages server on ${at.address ?? '0.0.0.0'}:${l.port} (${source.pages} lazy page(s), served from the frozen tree)`);
    const sock = await l.accept();
    const gone = () => sock.destroy();
    signal?.addEventListener('abort', gone, { once: true });
    let closed = false;
    try {
      closed = (await servePageServer(sock, { dir: '.', mode: 'lazy', lazySource: source, logger: log.logger('page-server') })).closed;
    } catch (e) {
      if (signal?.aborted) throw aborted();
      // (the daemon reset the connection, asked for what is not lazy, a page could not be read...)
      throw new CrtoolsError('LAZY_TRANSFER_FAILED', `the lazy pages transfer failed: ${e instanceof Error ? e.message : String(e)} (${source.served} of ${source.pages} lazy page(s) sent)`, { exitCode: ExitCode.FAILED, cause: e });
    } finally {
      signal?.removeEventListener('abort', gone);
      sock.destroy();
      source.close();
    }
    if (signal?.aborted) throw aborted();
    if (!closed) {
      throw new CrtoolsError('LAZY_TRANSFER_FAILED', `the lazy-pages daemon went away before it had every page (${source.served} of ${source.pages} lazy page(s) sent)`, { exitCode: ExitCode.FAILED });
    }
    log.info(`Lazy pages transfer finished successfully (${source.served} of ${source.pages} lazy page(s) sent)`);
  } catch (e) {
    log.error('dump', 'Lazy pages transfer FAILED');
    if (signal?.aborted && !(isCrtoolsError(e) && e.code === 'DUMP_ABORTED')) throw aborted();
    throw e;
  } finally {
    signal?.removeEventListener('abort', stop);
    l.close();
  }
}
