import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** Options of {@link startHealthServer}. */
export interface HealthServerOptions {
  /** Address to bind; default `0.0.0.0`. */
  readonly host?: string;
  /** Port; 0 picks a free one. */
  readonly port: number;
  /** Liveness: false answers 500 on /healthz. */
  readonly healthy: () => boolean;
  /** Readiness: false answers 503 on /readyz. */
  readonly ready: () => boolean;
  /** Metrics served on /metrics. */
  readonly registry: Registry;
}

/** A running health/metrics server. */
export interface HealthServer {
  /** The bound port. */
  readonly port: number;
  /** Stops listening. */
  close(): Promise<void>;
}

/** Serves /healthz, /readyz and /metrics on one port. */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/readyz') {
      const ok = path === '/healthz' ? options.healthy() : options.ready();
      res.writeHead(ok ? 200 : path === '/healthz' ? 500 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'ok\n' : 'not ok\n');
      return;
    }
    if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': options.registry.contentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500);
          res.end(err.message);
        },
      );
      return;
    }
    res.writeHead(404);
    res.end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
