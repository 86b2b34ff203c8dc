/** What an injected fault does to a matching call. */
export type F5FaultEffect =
  /** 503 REST-framework error, as while restjavad restarts. */
  | 'service-unavailable'
  /** 500 `The connection to mcpd has been lost, try again.` */
  | 'mcpd-lost'
  /** 404 `Public URI path not registered: …` (REST worker not yet registered). */
  | 'uri-not-registered'
  /** Applies the call, then answers 404 anyway (F5's pool-member quirk). */
  | 'member-404-despite-success'
  /** Answers 200 with an HTML page instead of JSON, as a proxy or a login portal in the way would. */
  | 'malformed-body';

/** One fault rule. */
export interface F5Fault {
  /** HTTP method to match (any when absent). */
  readonly method?: string;
  /** Path (without query) to match: a substring or a regular expression (any when absent). */
  readonly path?: string | RegExp;
  /** What happens. */
  readonly effect: F5FaultEffect;
  /** Chance per matching call, 0..1 (default 1). */
  readonly probability?: number;
  /** How many calls it hits before it is spent (default: unlimited). */
  readonly times?: number;
  /** Whether it also hits authentication calls (default false). */
  readonly includeAuth?: boolean;
}

interface ActiveFault {
  readonly fault: F5Fault;
  remaining: number;
}

/**
 * The fault rules of an emulator. Randomness comes from a seeded generator so a run with the
 * same seed injects the same faults.
 */
export class FaultInjector {
  readonly #faults: ActiveFault[] = [];
  #seed: number;
  /** Latency added to every call, in milliseconds. */
  latencyMs = 0;
  /** Number of faults injected so far. */
  injected = 0;

  constructor(seed = 1) {
    this.#seed = seed >>> 0 || 1;
  }

  #random(): number {
    // xorshift32
    let x = this.#seed;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.#seed = x;
    return x / 0x100000000;
  }

  /** Adds a rule; returns a function that removes it. */
  add(fault: F5Fault): () => void {
    const active: ActiveFault = { fault, remaining: fault.times ?? Number.POSITIVE_INFINITY };
    this.#faults.push(active);
    return () => {
      const index = this.#faults.indexOf(active);
      if (index >= 0) this.#faults.splice(index, 1);
    };
  }

  /** Removes every rule. */
  clear(): void {
    this.#faults.length = 0;
  }

  /** The effect for this call, if a rule hits it (and counts the hit). */
  pick(method: string, path: string, isAuth: boolean): F5FaultEffect | undefined {
    for (const active of this.#faults) {
      const { fault } = active;
      if (active.remaining <= 0) continue;
      if (isAuth && !fault.includeAuth) continue;
      if (fault.method && fault.method.toUpperCase() !== method) continue;
      if (
        fault.path !== undefined &&
        (typeof fault.path === 'string' ? !path.includes(fault.path) : !fault.path.test(path))
      )
        continue;
      if (fault.probability !== undefined && this.#random() >= fault.probability) continue;
      active.remaining -= 1;
      this.injected += 1;
      return fault.effect;
    }
    return undefined;
  }
}
