/** Which endpoint a proxied request went to. */
export type ProxiedService = 'octavia' | 'neutron';

/** One request a proxy of the provider-status process (Octavia's, or Neutron's) saw. */
export interface ProxiedRequest {
  /** The endpoint it went to. */
  readonly service: ProxiedService;
  /** HTTP method. */
  readonly method: string;
  /** URL path, without the query. */
  readonly path: string;
  /** Status code answered (503 for an injected failure). */
  readonly status: number;
}

/** One provisioning outcome the provider-status process reported to Octavia. */
export interface ProvisioningTransition {
  /** Load balancer id. */
  readonly id: string;
  /** Load balancer name. */
  readonly name: string;
  /** The PENDING_* status it was in. */
  readonly from: string;
  /** What it became: `ACTIVE`, `DELETED` or `ERROR`. */
  readonly to: string;
}

/** Which requests {@link ProviderControl.fail503} answers with 503. */
export interface Fail503Rule {
  /** How many matching requests get a 503. */
  readonly count: number;
  /** Only requests with this method (e.g. `POST`) or one of these methods; default any. */
  readonly method?: string | readonly string[];
  /** Only requests whose path contains this string; default any. */
  readonly pathContains?: string;
  /** Only requests to this endpoint; default any. */
  readonly service?: ProxiedService;
  /** Answer 200 with an HTML page instead of the 503 (a malformed answer); default false. */
  readonly malformed?: boolean;
}

/** Which answers {@link ProviderControl.holdAnswers} delays. */
export interface HoldRule {
  /** How many matching answers are held. */
  readonly count: number;
  /** How long each is held, in milliseconds. */
  readonly ms: number;
  /** Only requests with this method; default any. */
  readonly method?: string;
  /** Only requests whose path contains this string; default any. */
  readonly pathContains?: string;
  /** Only requests to this endpoint; default any. */
  readonly service?: ProxiedService;
}

/**
 * Controls the provider-status process of a test Octavia at run time: provisioning delays,
 * injected ERROR outcomes and 503s, and what the Octavia (and Neutron) endpoints were asked.
 */
export class ProviderControl {
  readonly #url: string;

  /** @param url - `http://127.0.0.1:<control port>` of the provider-status process. */
  constructor(url: string) {
    this.#url = url;
  }

  async #call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.#url}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!res.ok) throw new Error(`provider-status ${method} ${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }

  /** Sets the delay, in seconds, before a PENDING_* load balancer is reported ACTIVE or DELETED. */
  async setDelay(seconds: number): Promise<void> {
    await this.#call('POST', '/config', { delay: seconds });
  }

  /**
   * Slows down (or speeds up) one load balancer, by id or name: its provisioning takes `seconds`
   * instead of the global delay. `null` returns it to the global delay.
   */
  async setLoadBalancerDelay(idOrName: string, seconds: number | null): Promise<void> {
    await this.#call('POST', '/config', { lbDelays: { [idOrName]: seconds } });
  }

  /**
   * Makes the next `count` provisioning outcomes of a load balancer (by id or name, or `*` for
   * any) ERROR instead of ACTIVE/DELETED, as a failing provider reports.
   */
  async failNextProvisioning(idOrName: string, count = 1): Promise<void> {
    await this.#call('POST', '/config', { errors: { [idOrName]: count } });
  }

  /**
   * Answers the next matching requests to the Octavia endpoint (or Neutron's, see
   * {@link Fail503Rule.service}) with 503 and the service's own fault body; `null` clears the rule.
   */
  async fail503(rule: Fail503Rule | null): Promise<void> {
    await this.#call('POST', '/config', { fail503: rule });
  }

  /**
   * Holds Octavia's answers to the next matching requests for `rule.ms` before delivering them
   * (the client then acts on a stale read); `null` clears the rule.
   */
  async holdAnswers(rule: HoldRule | null): Promise<void> {
    await this.#call('POST', '/config', { hold: rule });
  }

  /** How many answers are being held right now. */
  async holding(): Promise<number> {
    return (await this.#call<{ holding: number }>('GET', '/state')).holding;
  }

  /** Stops (true) or resumes (false) reporting outcomes: everything stays PENDING_* meanwhile. */
  async pause(paused: boolean): Promise<void> {
    await this.#call('POST', '/config', { paused });
  }

  /** Every request the Octavia and Neutron endpoints (the proxies) saw since the last {@link ProviderControl.reset}. */
  requests(): Promise<ProxiedRequest[]> {
    return this.#call('GET', '/requests');
  }

  /** Every outcome reported since the last {@link ProviderControl.reset}. */
  transitions(): Promise<ProvisioningTransition[]> {
    return this.#call('GET', '/transitions');
  }

  /** Forgets the recorded requests and transitions. */
  async reset(): Promise<void> {
    await this.#call('POST', '/requests/reset', {});
  }
}
