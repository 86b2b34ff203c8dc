import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** The answer to one request made by a {@link NetnsClient}. */
export interface NetnsReply {
  /** True when an answer arrived (for HTTP: any status). */
  readonly ok: boolean;
  /** HTTP status, for HTTP requests that got an answer. */
  readonly status?: number;
  /** Response body (HTTP) or bytes received (TCP/UDP), as UTF-8. */
  readonly body?: string;
  /** Why there was no answer (`ECONNREFUSED`, `timeout`, ...). */
  readonly error?: string;
}

/** Options of an HTTP request made from inside a namespace. */
export interface NetnsHttpOptions {
  /** `Host` header to send (default: from the URL). */
  readonly host?: string;
  /** Give up after this long, in milliseconds (default 2000). */
  readonly timeoutMs?: number;
}

/** Options of a TCP or UDP exchange made from inside a namespace. */
export interface NetnsSocketOptions {
  /** Give up after this long, in milliseconds (default 2000). */
  readonly timeoutMs?: number;
}

/**
 * A client process living inside a network namespace: the test sends it requests over stdin and
 * gets the answers back, so traffic really originates from that namespace.
 */
export interface NetnsClient {
  /** GET `url` (http:// or https://, certificates not verified) from inside the namespace. */
  http(url: string, options?: NetnsHttpOptions): Promise<NetnsReply>;
  /** Connects to `host:port` over TCP, sends `data`, and returns what came back before the peer closed or went quiet. */
  tcp(host: string, port: number, data: string, options?: NetnsSocketOptions): Promise<NetnsReply>;
  /** Sends one UDP datagram with `data` to `host:port` and returns the first datagram that answers. */
  udp(host: string, port: number, data: string, options?: NetnsSocketOptions): Promise<NetnsReply>;
  /** Ends the client process. */
  close(): Promise<void>;
}

/** The agent: runs inside the namespace, one JSON request per stdin line, one JSON answer per stdout line. */
const AGENT = String.raw`
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const dgram = require('node:dgram');
const readline = require('node:readline');
const send = (msg) => process.stdout.write(JSON.stringify(msg) + '\n');
const agents = { 'http:': new http.Agent({ keepAlive: false }), 'https:': new https.Agent({ keepAlive: false, rejectUnauthorized: false }) };
function doHttp(req, done) {
  const url = new URL(req.url);
  const lib = url.protocol === 'https:' ? https : http;
  const headers = req.host ? { host: req.host } : {};
  const opts = { agent: agents[url.protocol], headers, timeout: req.timeoutMs, servername: req.host ? req.host.split(':')[0] : undefined };
  const r = lib.get(url, opts, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c) => { body += c; });
    res.on('end', () => done({ ok: true, status: res.statusCode, body }));
    res.on('error', (e) => done({ ok: false, error: e.code || e.message }));
  });
  r.on('timeout', () => r.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
  r.on('error', (e) => done({ ok: false, error: e.code || e.message }));
}
function doTcp(req, done) {
  let body = '';
  const s = net.connect({ host: req.host, port: req.port });
  const timer = setTimeout(() => { s.destroy(); done(body ? { ok: true, body } : { ok: false, error: 'timeout' }); }, req.timeoutMs);
  s.setEncoding('utf8');
  s.on('connect', () => s.end(req.data));
  s.on('data', (c) => { body += c; });
  s.on('close', () => { clearTimeout(timer); done(body ? { ok: true, body } : { ok: false, error: 'closed without data' }); });
  s.on('error', (e) => { clearTimeout(timer); done({ ok: false, error: e.code || e.message }); });
}
function doUdp(req, done) {
  const s = dgram.createSocket(req.host.includes(':') ? 'udp6' : 'udp4');
  const timer = setTimeout(() => { s.close(); done({ ok: false, error: 'timeout' }); }, req.timeoutMs);
  s.on('message', (m) => { clearTimeout(timer); s.close(); done({ ok: true, body: m.toString('utf8') }); });
  s.on('error', (e) => { clearTimeout(timer); s.close(); done({ ok: false, error: e.code || e.message }); });
  s.send(req.data, req.port, req.host);
}
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const req = JSON.parse(line);
  let answered = false;
  const done = (res) => { if (!answered) { answered = true; send({ id: req.id, ...res }); } };
  try {
    if (req.op === 'http') doHttp(req, done);
    else if (req.op === 'tcp') doTcp(req, done);
    else doUdp(req, done);
  } catch (e) { done({ ok: false, error: String(e && e.message) }); }
});
process.stdin.on('end', () => process.exit(0));
`;

/** Starts a {@link NetnsClient} whose process is `wrapper` followed by Node (e.g. `ip netns exec NS`). */
export function startNetnsClient(wrapper: readonly string[]): NetnsClient {
  const [bin, ...prefix] = wrapper;
  if (bin === undefined) throw new Error('startNetnsClient needs a command to run Node with');
  const child: ChildProcessWithoutNullStreams = spawn(bin, [...prefix, process.execPath, '-e', AGENT], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const pending = new Map<number, (reply: NetnsReply) => void>();
  let nextId = 0;
  let exited = false;
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-2000);
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    const msg = JSON.parse(line) as NetnsReply & { id: number };
    const resolve = pending.get(msg.id);
    pending.delete(msg.id);
    const { id: _id, ...reply } = msg;
    resolve?.(reply);
  });
  const closed = new Promise<void>((resolve) => {
    child.on('exit', () => {
      exited = true;
      for (const resolvePending of pending.values()) {
        resolvePending({ ok: false, error: `client process exited: ${stderr.trim()}` });
      }
      pending.clear();
      resolve();
    });
  });
  child.on('error', () => {
    exited = true;
  });
  const request = (req: Record<string, unknown>): Promise<NetnsReply> => {
    if (exited) return Promise.resolve({ ok: false, error: `client process exited: ${stderr.trim()}` });
    const id = ++nextId;
    return new Promise((resolve) => {
      pending.set(id, resolve);
      child.stdin.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  };
  return {
    http: (url, options = {}) => request({ op: 'http', url, host: options.host, timeoutMs: options.timeoutMs ?? 2000 }),
    tcp: (host, port, data, options = {}) =>
      request({ op: 'tcp', host, port, data, timeoutMs: options.timeoutMs ?? 2000 }),
    udp: (host, port, data, options = {}) =>
      request({ op: 'udp', host, port, data, timeoutMs: options.timeoutMs ?? 2000 }),
    async close() {
      if (!exited) {
        child.stdin.end();
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await closed;
        clearTimeout(timer);
      }
    },
  };
}
