import { readFileSync } from 'node:fs';
import { KlbError } from '@klb/core';

/** Connection settings of an {@link IControlClient}. Never log it: it holds the password. */
export interface F5ConnectionConfig {
  /** Management address: `host`, `host:port` or `https://host:port`. */
  readonly host: string;
  /** User name. */
  readonly username: string;
  /** Password. */
  readonly password: string;
  /** PEM CA bundle that signs the management certificate (BIG-IP's default one is self-signed). */
  readonly ca?: string;
  /** Skip TLS verification (explicit opt-in; logged as a warning). Default false. */
  readonly insecureSkipVerify?: boolean;
}

/** A configuration value is missing or invalid. */
export class F5ConfigError extends KlbError {
  constructor(message: string) {
    super('F5_CONFIG', message, false);
  }
}

function truthy(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes'].includes(value.trim().toLowerCase());
}

function build(
  host: string | undefined,
  username: string | undefined,
  password: string | undefined,
  ca: string | undefined,
  insecure: boolean,
  from: string,
): F5ConnectionConfig {
  const missing = [
    ['host', host],
    ['user', username],
    ['password', password],
  ]
    .filter(([, v]) => v === undefined || v.trim() === '')
    .map(([k]) => k);
  if (missing.length > 0) throw new F5ConfigError(`F5 ${missing.join(', ')} missing from ${from}`);
  const config: F5ConnectionConfig = {
    host: (host as string).trim(),
    username: (username as string).trim(),
    password: password as string,
    ...(ca !== undefined && ca.trim() !== '' ? { ca } : {}),
    ...(insecure ? { insecureSkipVerify: true } : {}),
  };
  return config;
}

/**
 * Reads the connection from the original environment names: `F5_HOST`, `F5_USER`,
 * `F5_PASSWORD`, plus `F5_CA_FILE` (path of a PEM CA bundle) and `F5_INSECURE_SKIP_VERIFY`
 * (`true` to skip TLS verification).
 */
export function f5ConfigFromEnv(env: NodeJS.ProcessEnv = process.env): F5ConnectionConfig {
  let ca: string | undefined;
  if (env.F5_CA_FILE) {
    try {
      ca = readFileSync(env.F5_CA_FILE, 'utf8');
    } catch (err) {
      throw new F5ConfigError(`cannot read F5_CA_FILE ${env.F5_CA_FILE}: ${(err as Error).message}`);
    }
  }
  return build(env.F5_HOST, env.F5_USER, env.F5_PASSWORD, ca, truthy(env.F5_INSECURE_SKIP_VERIFY), 'the environment');
}

/**
 * Reads the connection from a Kubernetes Secret's `data` (base64 values, as the API returns
 * them). Keys: `host` (or `F5_HOST`), `username` (or `F5_USER`), `password` (or
 * `F5_PASSWORD`), optional `ca.crt` and `insecureSkipVerify`.
 */
export function f5ConfigFromSecret(data: Readonly<Record<string, string>> | undefined): F5ConnectionConfig {
  const get = (...keys: string[]): string | undefined => {
    for (const key of keys) {
      const value = data?.[key];
      if (value !== undefined) return Buffer.from(value, 'base64').toString('utf8');
    }
    return undefined;
  };
  return build(
    get('host', 'F5_HOST'),
    get('username', 'F5_USER'),
    get('password', 'F5_PASSWORD'),
    get('ca.crt'),
    truthy(get('insecureSkipVerify', 'F5_INSECURE_SKIP_VERIFY')),
    'the Secret',
  );
}
