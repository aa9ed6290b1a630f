import type { Writable } from 'node:stream';

/**
 * Buffered text/byte output to a Writable with backpressure: collects small pieces into
 * chunks of about `chunkSize` bytes, writes them, and waits for 'drain' when the stream asks.
 * A closed reader (EPIPE, e.g. `crit decode | head`) ends output quietly: `closed` turns true
 * and later writes are dropped.
 */
export class Sink {
  private parts: (string | Buffer)[] = [];
  private size = 0;
  private error: Error | undefined;
  closed = false;

  constructor(
    readonly out: Writable,
    private readonly chunkSize = 1 << 16,
  ) {
    out.on('error', this.onError);
  }

  private onError = (e: Error): void => {
    if ((e as NodeJS.ErrnoException).code === 'EPIPE') this.closed = true;
    else this.error = e;
  };

  /** Queue text or bytes; flushes when a chunk is full. */
  async write(s: string | Buffer): Promise<void> {
    if (this.closed) return;
    this.parts.push(s);
    this.size += s.length;
    if (this.size >= this.chunkSize) await this.flush();
  }

  /** Write what is queued and wait if the stream is full. */
  async flush(): Promise<void> {
    if (this.error) throw this.error;
    if (this.parts.length === 0 || this.closed) return;
    const parts = this.parts;
    this.parts = [];
    this.size = 0;
    const chunk =
      parts.length === 1
        ? parts[0]!
        : parts.every((p) => typeof p === 'string')
          ? parts.join('')
          : Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
    const ok = this.out.write(chunk);
    if (!ok && !this.closed) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.out.off('drain', done);
          this.out.off('close', done);
          this.out.off('error', done);
          resolve();
        };
        this.out.on('drain', done);
        this.out.on('close', done);
        this.out.on('error', done);
      });
    }
    if (this.error) throw this.error;
  }

  /** Flush and, for streams we own (files), end them and wait until the data is on disk. */
  async close(end: boolean): Promise<void> {
    await this.flush();
    if (!end) return;
    await new Promise<void>((resolve, reject) => {
      this.out.once('error', reject);
      this.out.end(() => resolve());
    });
  }
}
