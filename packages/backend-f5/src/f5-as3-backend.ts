import {
  addressIngress,
  type BackendCapabilities,
  type BackendContext,
  type LoadBalancerBackend,
  type LoadBalancerRef,
  type LoadBalancerSpec,
  type LoadBalancerStatus,
  type Logger,
  silentLogger,
  TerminalError,
} from '@klb/core';
import {
  type As3Application,
  as3Application,
  as3ApplicationName,
  as3ApplicationRef,
  as3Remark,
  as3SchemaVersion,
} from './as3-declaration.js';
import { unappliedHttpSettings } from './desired-state.js';
import { F5Error, isF5Error } from './f5-error.js';
import { isValidPartition } from './f5-path.js';
import type { IControlClient } from './icontrol-client.js';

/** Options of {@link F5As3Backend}. */
export interface F5As3BackendOptions {
  /** The iControl client (closed by `close()`). */
  readonly client: IControlClient;
  /** The AS3 tenant (a partition AS3 creates and owns), default `klb`. */
  readonly tenant?: string;
  /** Controller id in each application's `remark` (`klb:<controllerId>`), default `klb`. */
  readonly controllerId?: string;
  /** SNAT of the services: `auto` (default) or `none`. */
  readonly snat?: 'auto' | 'none';
  /** Interval between reads of an async AS3 task, ms (default 250). */
  readonly taskPollMs?: number;
  /** Longest wait for an AS3 task, ms (default 300000). */
  readonly taskTimeoutMs?: number;
  /** Logger (default silent). */
  readonly logger?: Logger;
}

type Json = Record<string, unknown>;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    // The listener goes with the timer: a long-lived signal must not collect one per poll.
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The F5 backend in AS3 mode: one tenant per partition, one AS3 Application per load balancer,
 * written with AS3's per-application API (`POST /declare/<tenant>/applications?async=true`,
 * the task polled until done) so a change never re-posts the whole tenant. An `ensure` reads
 * its own application once and posts nothing when it already matches.
 */
export class F5As3Backend implements LoadBalancerBackend {
  /** `f5-as3`. */
  readonly name = 'f5-as3';
  /** As the LTM mode: TCP/UDP/HTTP to node targets, addresses from KLB's IPAM. */
  readonly capabilities: BackendCapabilities = {
    protocols: ['TCP', 'UDP', 'HTTP'],
    l7: false,
    tls: false,
    allocatesAddresses: false,
    targetKinds: ['node'],
    ipFamilies: ['IPv4', 'IPv6'],
    sourceRanges: false,
    proxyProtocol: false,
  };

  readonly #client: IControlClient;
  readonly #tenant: string;
  readonly #controllerId: string;
  readonly #snat: 'auto' | 'none';
  readonly #pollMs: number;
  readonly #timeoutMs: number;
  readonly #log: Logger;

  constructor(options: F5As3BackendOptions) {
    this.#client = options.client;
    this.#tenant = options.tenant ?? 'klb';
    this.#controllerId = options.controllerId ?? 'klb';
    if (!isValidPartition(this.#tenant)) throw new TerminalError(`invalid AS3 tenant ${JSON.stringify(this.#tenant)}`);
    if (!/^[A-Za-z0-9_.-]{1,40}$/.test(this.#controllerId))
      throw new TerminalError(`invalid controller id ${JSON.stringify(this.#controllerId)}`);
    this.#snat = options.snat ?? 'auto';
    this.#pollMs = options.taskPollMs ?? 250;
    this.#timeoutMs = options.taskTimeoutMs ?? 300_000;
    this.#log = options.logger ?? silentLogger;
  }

  /** The application this backend would declare for `spec` (for inspection and schema tests). */
  application(spec: LoadBalancerSpec): As3Application {
    return as3Application(spec, { tenant: this.#tenant, controllerId: this.#controllerId, snat: this.#snat });
  }

  /** Declares the load balancer's application, unless it is already declared as wanted. */
  async ensure(spec: LoadBalancerSpec, ctx: BackendContext): Promise<LoadBalancerStatus> {
    const app = this.application(spec);
    const name = as3ApplicationName(spec.ref);
    const current = await this.#read(name, ctx);
    if (current !== undefined && current.remark !== as3Remark(this.#controllerId)) {
      throw new TerminalError(`AS3 application ${this.#tenant}/${name} exists and is not managed by this controller`, {
        reason: 'F5ObjectNotOwned',
      });
    }
    if (current === undefined || JSON.stringify(current) !== JSON.stringify(app)) {
      ctx.log.info({ tenant: this.#tenant, application: name }, 'declaring AS3 application');
      await this.#post(
        `/mgmt/shared/appsvcs/declare/${encodeURIComponent(this.#tenant)}/applications?async=true`,
        'POST',
        { schemaVersion: as3SchemaVersion, [name]: app },
        ctx,
      );
    }
    return {
      // The virtual server proxies, away from the nodes: in-cluster clients must go through it too.
      ingress: addressIngress(spec.addresses, spec.listeners, 'Proxy'),
      message: `AS3 application /${this.#tenant}/${name}${unappliedHttpSettings(spec)}`,
    };
  }

  /** Deletes the load balancer's application (already gone is success). */
  async remove(ref: LoadBalancerRef, ctx: BackendContext): Promise<void> {
    const name = as3ApplicationName(ref);
    const current = await this.#read(name, ctx);
    if (current === undefined) return;
    if (current.remark !== as3Remark(this.#controllerId)) return;
    await this.#post(
      `/mgmt/shared/appsvcs/declare/${encodeURIComponent(this.#tenant)}/applications/${encodeURIComponent(name)}?async=true`,
      'DELETE',
      undefined,
      ctx,
    );
  }

  /** The load balancers whose applications carry this controller's remark. Throws on any read failure. */
  async list(ctx: BackendContext): Promise<LoadBalancerRef[]> {
    const apps =
      (await this.#client.get<Json | undefined>(
        `/mgmt/shared/appsvcs/declare/${encodeURIComponent(this.#tenant)}/applications`,
        { signal: ctx.signal },
      )) ?? {};
    const refs: LoadBalancerRef[] = [];
    for (const app of Object.values(apps)) {
      if (app === null || typeof app !== 'object') continue;
      const a = app as Json;
      if (a.class !== 'Application' || a.remark !== as3Remark(this.#controllerId)) continue;
      const ref = as3ApplicationRef(a);
      if (ref) refs.push(ref);
    }
    return refs.sort((x, y) => (x.id < y.id ? -1 : 1));
  }

  /** Logs out and closes connections. */
  async close(): Promise<void> {
    await this.#client.close();
  }

  async #read(name: string, ctx: BackendContext): Promise<Json | undefined> {
    try {
      const answer = await this.#client.get<Json | undefined>(
        `/mgmt/shared/appsvcs/declare/${encodeURIComponent(this.#tenant)}/applications/${encodeURIComponent(name)}`,
        { signal: ctx.signal },
      );
      const app = answer?.[name];
      return app !== null && typeof app === 'object' ? (app as Json) : undefined;
    } catch (err) {
      if (isF5Error(err, 'F5_NOT_FOUND') && !/Public URI path not registered/.test(err.message)) return undefined;
      throw err;
    }
  }

  /** Sends an async AS3 request and waits for its task; throws unless every tenant result is 2xx. */
  async #post(path: string, method: 'POST' | 'DELETE', body: unknown, ctx: BackendContext): Promise<void> {
    const accepted = (await this.#client.request(method, path, { body, signal: ctx.signal })) as Json | undefined;
    let results = accepted?.results;
    const id = accepted?.id;
    if (typeof id === 'string') {
      const deadline = Date.now() + this.#timeoutMs;
      for (;;) {
        const task = await this.#client.get<Json>(`/mgmt/shared/appsvcs/task/${encodeURIComponent(id)}`, {
          signal: ctx.signal,
        });
        results = task.results;
        const first = Array.isArray(results) ? (results[0] as Json | undefined) : undefined;
        if (first?.message !== 'in progress') break;
        if (Date.now() > deadline) throw new F5Error('F5_UNAVAILABLE', `AS3 task ${id} still in progress`, true);
        await sleep(this.#pollMs, ctx.signal);
      }
    }
    const list = Array.isArray(results) ? (results as Json[]) : [];
    const failed = list.filter((r) => typeof r.code === 'number' && (r.code < 200 || r.code >= 300));
    if (failed.length > 0) {
      const text = failed.map((r) => `${String(r.tenant)}: ${String(r.code)} ${String(r.message)}`).join('; ');
      throw new F5Error(
        failed.some((r) => r.code === 503) ? 'F5_UNAVAILABLE' : 'F5_HTTP',
        `AS3 declaration failed: ${text}`,
        true,
      );
    }
    this.#log.debug({ path, results: list.map((r) => r.message) }, 'AS3 declaration done');
  }
}
