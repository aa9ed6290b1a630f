/**
 * `criu dump --lazy-pages [--address A] --port P`: once every image is written (the lazy pages
 * left out, flagged PE_LAZY in the pagemaps) and the tree is gone, a page server on A:P answers
 * the lazy-pages daemon of the restoring side (`criu lazy-pages --page-server`) from the pages
 * the dump kept in its memory, as CRIU's cr_lazy_mem_dump serves them from its page pipes. The
 * dump ends when the daemon has taken what it needs: PS_IOV_CLOSE, or the connection closed.
 */
import { CriuLog, CrtoolsError, ExitCode } from '@crtools/common';
import { listenPageServer, servePageServer, type LazyPageStore } from '@crtools/pagemap';

export async function serveLazyPages(store: LazyPageStore, at: { address?: string; port: number } | undefined, log: CriuLog, signal?: AbortSignal): Promise<void> {
  if (!at) throw new CrtoolsError('USAGE', '--lazy-pages needs --port for its page server', { exitCode: ExitCode.USAGE });
  const l = await listenPageServer({ ...(at.address ? { address: at.address } : {}), port: at.port });
  const stop = () => l.close();
  signal?.addEventListener('abort', stop, { once: true });
  try {
    log.info(`Starting lazy pages server on ${at.address ?? '0.0.0.0'}:${l.port} (${store.pages} lazy page(s) kept)`);
    const sock = await l.accept();
    const gone = () => sock.destroy();
    signal?.addEventListener('abort', gone, { once: true });
    try {
      await servePageServer(sock, { dir: '.', mode: 'lazy', lazySource: store, logger: log.logger('page-server') });
    } finally {
      signal?.removeEventListener('abort', gone);
      sock.destroy();
    }
    if (signal?.aborted) throw new CrtoolsError('DUMP_ABORTED', `dump interrupted while serving lazy pages (${String(signal.reason ?? 'aborted')})`, { exitCode: ExitCode.FAILED });
    log.info('Lazy pages transfer finished successfully');
  } catch (e) {
    log.error('dump', 'Lazy pages transfer FAILED');
    throw e;
  } finally {
    signal?.removeEventListener('abort', stop);
    l.close();
  }
}
