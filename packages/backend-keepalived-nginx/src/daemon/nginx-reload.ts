import { open, stat } from 'node:fs/promises';
import { KlbError } from '@klb/core';

/** nginx did not take a new config (it keeps serving the previous one). */
export class NginxReloadError extends KlbError {
  /**
   * @param message - what nginx said, or that it did not answer.
   * @param retryable - whether trying again may help (a timeout may; an `[emerg]` will not).
   */
  constructor(message: string, retryable: boolean) {
    super('NGINX_RELOAD_FAILED', message, retryable);
  }
}

/** The current size of nginx's error log (0 when it does not exist yet): where to look for a reload's outcome. */
export async function logOffset(errorLog: string): Promise<number> {
  try {
    return (await stat(errorLog)).size;
  } catch {
    return 0;
  }
}

async function readFrom(path: string, offset: number): Promise<string> {
  const handle = await open(path, 'r').catch(() => undefined);
  if (!handle) return '';
  try {
    const { size } = await handle.stat();
    if (size <= offset) return '';
    const buffer = Buffer.alloc(Math.min(size - offset, 1024 * 1024));
    await handle.read(buffer, 0, buffer.length, offset);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * Waits for nginx's verdict on a reload (SIGHUP) by reading its error log (at `notice` level)
 * from `offset`: new worker processes started means the new config is serving; an `[emerg]`
 * line means nginx rejected it and keeps the old one.
 *
 * @throws NginxReloadError on rejection or when nginx says nothing within `timeoutMs`.
 */
export async function confirmNginxReload(errorLog: string, offset: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFrom(errorLog, offset);
    const emerg = text.split('\n').find((line) => line.includes('[emerg]'));
    // A failed bind() is retried by nginx (5 times, 500 ms apart) before it gives up and keeps the
    // old config: wait for that verdict, so that the next reload does not read this one's messages.
    const retrying = emerg?.includes('bind()') === true && !text.includes('still could not bind()');
    if (emerg && !retrying) {
      throw new NginxReloadError(`nginx rejected the new config: ${emerg.replace(/^.*\[emerg\] /, '')}`, false);
    }
    if (/start worker process/.test(text)) return;
    if (Date.now() > deadline)
      throw new NginxReloadError(`nginx did not confirm the reload within ${timeoutMs} ms`, true);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
