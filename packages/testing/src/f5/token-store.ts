import { randomBytes } from 'node:crypto';
import type { EmulatorClock } from './emulator-clock.js';
import { F5RestError, mcpError, restError } from './f5-error.js';

/** An emulated authentication token, as `/mgmt/shared/authz/tokens/<token>` shows it. */
export interface F5Token {
  /** The token string (header `X-F5-Auth-Token`). */
  readonly token: string;
  /** The user it belongs to. */
  readonly userName: string;
  /** Lifetime in seconds, counted from `startTimeMs`. */
  timeout: number;
  /** When it was issued (emulator clock, ms). */
  readonly startTimeMs: number;
}

/** A user the emulator accepts. */
export interface F5User {
  /** User name. */
  readonly username: string;
  /** Password. */
  readonly password: string;
}

/** Default token lifetime, seconds. */
export const defaultTokenTimeout = 1200;
/** Longest lifetime a token can be extended to, seconds from its start. */
export const maxTokenTimeout = 36000;

/**
 * Users and tokens: login, the per-user cap on active tokens (K44237337), expiry, extension
 * and logout, with F5's error bodies.
 */
export class TokenStore {
  readonly #clock: EmulatorClock;
  readonly #users: readonly F5User[];
  readonly #maxTokensPerUser: number;
  readonly #maxLoginFailures: number;
  readonly #tokens = new Map<string, F5Token>();
  readonly #failures = new Map<string, number>();
  /** Tokens made invalid as after a failover (unknown to this unit). */
  readonly #forgotten = new Set<string>();

  constructor(clock: EmulatorClock, users: readonly F5User[], maxTokensPerUser: number, maxLoginFailures: number) {
    this.#clock = clock;
    this.#users = users;
    this.#maxTokensPerUser = maxTokensPerUser;
    this.#maxLoginFailures = maxLoginFailures;
  }

  #expiresAt(token: F5Token): number {
    return token.startTimeMs + token.timeout * 1000;
  }

  #active(token: F5Token): boolean {
    return this.#expiresAt(token) > this.#clock.now();
  }

  /** Number of active (unexpired) tokens, per user. */
  activeCount(userName?: string): number {
    return [...this.#tokens.values()].filter(
      (t) => this.#active(t) && (userName === undefined || t.userName === userName),
    ).length;
  }

  /** Checks a user name and password (basic auth or login). */
  checkPassword(username: unknown, password: unknown): F5User {
    const key = String(username);
    if ((this.#failures.get(key) ?? 0) >= this.#maxLoginFailures) {
      throw restError(401, 'Maximum number of login attempts exceeded.');
    }
    const user = this.#users.find((u) => u.username === username && u.password === password);
    if (!user) {
      this.#failures.set(key, (this.#failures.get(key) ?? 0) + 1);
      throw restError(401, 'Authentication failed.');
    }
    this.#failures.delete(key);
    return user;
  }

  /** `POST /mgmt/shared/authn/login`. */
  login(body: Record<string, unknown>): Record<string, unknown> {
    const user = this.checkPassword(body.username, body.password);
    const provider = body.loginProviderName ?? 'tmos';
    if (provider !== 'tmos') throw restError(400, `Login provider ${String(provider)} is not configured.`);
    if (this.activeCount(user.username) >= this.#maxTokensPerUser) {
      throw mcpError(400, `user ${user.username} has reached maximum active login tokens`, 1);
    }
    const token: F5Token = {
      token: randomBytes(18).toString('base64url').toUpperCase().slice(0, 26),
      userName: user.username,
      timeout: defaultTokenTimeout,
      startTimeMs: this.#clock.now(),
    };
    this.#tokens.set(token.token, token);
    return { username: user.username, loginProviderName: provider, token: this.present(token) };
  }

  /** The token's JSON representation. */
  present(token: F5Token): Record<string, unknown> {
    return {
      token: token.token,
      name: token.token,
      userName: token.userName,
      authProviderName: 'tmos',
      timeout: token.timeout,
      startTime: new Date(token.startTimeMs).toISOString(),
      expirationMicros: this.#expiresAt(token) * 1000,
      lastUpdateMicros: token.startTimeMs * 1000,
      kind: 'shared:authz:tokens:authtokenitemstate',
      selfLink: `https://localhost/mgmt/shared/authz/tokens/${token.token}`,
    };
  }

  /** Validates an `X-F5-Auth-Token` header; 401 with F5's messages when expired or unknown. */
  authenticate(tokenString: string): F5Token {
    const token = this.#tokens.get(tokenString);
    if (!token || this.#forgotten.has(tokenString)) throw restError(401, 'X-F5-Auth-Token does not exist.');
    if (!this.#active(token)) throw restError(401, 'X-F5-Auth-Token has expired.');
    return token;
  }

  /** Reads a token (`GET /mgmt/shared/authz/tokens/<token>`). */
  get(tokenString: string): F5Token {
    const token = this.#tokens.get(tokenString);
    if (!token || this.#forgotten.has(tokenString) || !this.#active(token)) {
      throw new F5RestError(404, { code: 404, message: `Token ${tokenString} not found`, errorStack: [], apiError: 1 });
    }
    return token;
  }

  /** `PATCH /mgmt/shared/authz/tokens/<token>` with `{"timeout":N}`. */
  extend(tokenString: string, body: Record<string, unknown>): F5Token {
    const token = this.get(tokenString);
    const timeout = body.timeout;
    if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0 || timeout > maxTokenTimeout) {
      throw restError(400, `Invalid timeout value: must be an integer between 0 and ${maxTokenTimeout} seconds.`);
    }
    token.timeout = timeout;
    return token;
  }

  /** `DELETE /mgmt/shared/authz/tokens/<token>` (logout). */
  remove(tokenString: string): F5Token {
    const token = this.get(tokenString);
    this.#tokens.delete(tokenString);
    return token;
  }

  /** Fault injection: makes every current token expired. */
  expireAll(): void {
    const now = this.#clock.now();
    for (const token of this.#tokens.values())
      token.timeout = Math.min(token.timeout, Math.floor((now - token.startTimeMs) / 1000) - 1);
  }

  /** Fault injection: forgets every current token, as a failover to a peer unit does. */
  forgetAll(): void {
    for (const token of this.#tokens.keys()) this.#forgotten.add(token);
  }
}
