import { existsSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';

/** The in-namespace half: listens on 127.0.0.1:PORT and pipes every connection to a Unix socket. */
export const FORWARD_AGENT = `
const net = require('node:net');
const [port, socketPath] = process.argv.slice(1);
net.createServer((c) => {
  const u = net.connect(socketPath);
  c.pipe(u).pipe(c);
  c.on('error', () => u.destroy());
  u.on('error', () => c.destroy());
}).listen(Number(port), '127.0.0.1', () => console.log('ready'));
`;

/**
 * The host half of a port forward into a namespace: a Unix socket server (Unix sockets are not
 * per network namespace) whose connections are piped to `target` on the host. Returns a closer.
 */
export async function startHostForward(
  socketPath: string,
  target: {
    /** Host-side address (127.0.0.0/8). */
    readonly host: string;
    /** Host-side port. */
    readonly port: number;
  },
): Promise<() => Promise<void>> {
  if (existsSync(socketPath)) rmSync(socketPath);
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((u) => {
    const c = connect(target.port, target.host);
    sockets.add(u).add(c);
    u.pipe(c).pipe(u);
    const end = () => {
      u.destroy();
      c.destroy();
      sockets.delete(u);
      sockets.delete(c);
    };
    u.on('error', end).on('close', end);
    c.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}

/** Waits until `logFile` contains `ready` (the agent is listening), or throws after `timeoutMs`. */
export async function waitForReady(logFile: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(logFile) && readFileSync(logFile, 'utf8').includes('ready')) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`port forward agent not ready: ${existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''}`);
}
