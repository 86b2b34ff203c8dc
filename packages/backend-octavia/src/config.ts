import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { OpenStackConfigError } from './errors.js';

/** Keystone v3 password credentials: user and project by name (with domain) or by id. */
export interface PasswordCredentials {
  /** Discriminator. */
  readonly type: 'password';
  /** User name (needs a user domain); or give `userId`. */
  readonly username?: string;
  /** User id. */
  readonly userId?: string;
  /** The password. Never logged. */
  readonly password: string;
  /** Domain of the user, by name (default `Default` when neither name nor id is given). */
  readonly userDomainName?: string;
  /** Domain of the user, by id. */
  readonly userDomainId?: string;
  /** Project to scope the token to, by name (needs a project domain); or give `projectId`. */
  readonly projectName?: string;
  /** Project id. */
  readonly projectId?: string;
  /** Domain of the project, by name (default `Default` when neither name nor id is given). */
  readonly projectDomainName?: string;
  /** Domain of the project, by id. */
  readonly projectDomainId?: string;
}

/** Keystone v3 application credentials (already scoped to their project). */
export interface ApplicationCredentials {
  /** Discriminator. */
  readonly type: 'applicationCredential';
  /** Application credential id; or give `name` with the owning user. */
  readonly id?: string;
  /** Application credential name (needs `username` + `userDomainName`, or `userId`). */
  readonly name?: string;
  /** The secret. Never logged. */
  readonly secret: string;
  /** Owning user name, with `name`. */
  readonly username?: string;
  /** Owning user id, with `name`. */
  readonly userId?: string;
  /** Owning user's domain name, with `username`. */
  readonly userDomainName?: string;
  /** Owning user's domain id, with `username`. */
  readonly userDomainId?: string;
}

/** Credentials Keystone accepts. */
export type OpenStackCredentials = PasswordCredentials | ApplicationCredentials;

/** Catalog interfaces. */
export type EndpointInterface = 'public' | 'internal' | 'admin';

/** Where and how to reach Keystone and Octavia. */
export interface OpenStackConfig {
  /** Keystone v3 URL (`OS_AUTH_URL`), e.g. `https://keystone.example:5000/v3`. */
  readonly authUrl: string;
  /** Credentials. */
  readonly credentials: OpenStackCredentials;
  /** Region of the `load-balancer` catalog endpoint (`OS_REGION_NAME`); default: the first one found. */
  readonly region?: string;
  /** Catalog interface to use; default `public`. */
  readonly interface?: EndpointInterface;
  /** Use this Octavia URL instead of the catalog's. */
  readonly endpointOverride?: string;
  /** Use this Neutron URL instead of the catalog's `network` entry (floating IPs). */
  readonly networkEndpointOverride?: string;
  /** PEM CA bundle to verify Keystone's, Octavia's and Neutron's TLS certificates with (`OS_CACERT`'s contents). */
  readonly caBundle?: string;
  /** Skip TLS verification (`OS_INSECURE=true`). Logged as a warning; never the default. */
  readonly insecure?: boolean;
  /** Subnet the VIP is allocated on (`OS_SUBNET_ID`). */
  readonly subnetId?: string;
}

/** Environment variables (e.g. `process.env`), or a Secret's decoded data. */
export type OpenStackEnv = Readonly<Record<string, string | undefined>>;

function pick(env: OpenStackEnv, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== '') return value;
  }
  return undefined;
}

function interfaceOf(value: string | undefined): EndpointInterface | undefined {
  if (value === undefined) return undefined;
  const normalized = value.replace(/URL$/, '');
  if (normalized === 'public' || normalized === 'internal' || normalized === 'admin') return normalized;
  throw new OpenStackConfigError(`unknown endpoint interface ${JSON.stringify(value)} (public, internal or admin)`);
}

function bool(value: string | boolean | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'boolean') return value;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new OpenStackConfigError(`not a boolean: ${JSON.stringify(value)}`);
}

function readCa(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new OpenStackConfigError(`cannot read the CA bundle ${path}`, { cause: err });
  }
}

function withDefined<T extends object>(value: { [K in keyof T]: T[K] | undefined }): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** Checks a config for completeness and returns it; throws {@link OpenStackConfigError}. */
export function validateOpenStackConfig(config: OpenStackConfig): OpenStackConfig {
  let url: URL;
  try {
    url = new URL(config.authUrl);
  } catch {
    throw new OpenStackConfigError(`auth URL is not a URL: ${JSON.stringify(config.authUrl)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new OpenStackConfigError(`auth URL must be http(s): ${url.protocol}`);
  }
  const c = config.credentials;
  if (c.type === 'password') {
    if (!c.username && !c.userId) throw new OpenStackConfigError('password auth needs a user name or user id');
    if (!c.password) throw new OpenStackConfigError('password auth needs a password');
    if (!c.projectName && !c.projectId) throw new OpenStackConfigError('password auth needs a project name or id');
  } else {
    if (!c.secret) throw new OpenStackConfigError('application credential auth needs a secret');
    if (!c.id && !(c.name && (c.userId || c.username))) {
      throw new OpenStackConfigError('application credential auth needs an id, or a name with its user');
    }
  }
  for (const [what, value] of [
    ['endpoint override', config.endpointOverride],
    ['network endpoint override', config.networkEndpointOverride],
  ] as const) {
    if (value === undefined) continue;
    try {
      new URL(value);
    } catch {
      throw new OpenStackConfigError(`${what} is not a URL: ${JSON.stringify(value)}`);
    }
  }
  return config;
}

/**
 * Reads the original system's environment names: `OS_AUTH_URL`, `OS_USERNAME`/`OS_USER_ID`,
 * `OS_PASSWORD`, `OS_TENANT_NAME`/`OS_PROJECT_NAME` (or `OS_TENANT_ID`/`OS_PROJECT_ID`),
 * `OS_USER_DOMAIN_NAME`/`_ID`, `OS_PROJECT_DOMAIN_NAME`/`_ID` (`OS_DOMAIN_NAME` for both),
 * `OS_REGION_NAME`, `OS_SUBNET_ID`, `OS_INTERFACE`/`OS_ENDPOINT_TYPE`, `OS_CACERT` (a path),
 * `OS_INSECURE`, `OS_LOAD_BALANCER_ENDPOINT_OVERRIDE`, `OS_NETWORK_ENDPOINT_OVERRIDE`, and application credentials
 * (`OS_AUTH_TYPE=v3applicationcredential`, `OS_APPLICATION_CREDENTIAL_ID`/`_NAME`/`_SECRET`).
 */
export function openStackConfigFromEnv(env: OpenStackEnv = process.env): OpenStackConfig {
  const authUrl = pick(env, 'OS_AUTH_URL');
  if (!authUrl) throw new OpenStackConfigError('OS_AUTH_URL is not set');
  const appSecret = pick(env, 'OS_APPLICATION_CREDENTIAL_SECRET');
  const domain = pick(env, 'OS_DOMAIN_NAME');
  const credentials: OpenStackCredentials =
    pick(env, 'OS_AUTH_TYPE') === 'v3applicationcredential' || appSecret
      ? withDefined<ApplicationCredentials>({
          type: 'applicationCredential',
          id: pick(env, 'OS_APPLICATION_CREDENTIAL_ID'),
          name: pick(env, 'OS_APPLICATION_CREDENTIAL_NAME'),
          secret: appSecret ?? '',
          username: pick(env, 'OS_USERNAME'),
          userId: pick(env, 'OS_USER_ID'),
          userDomainName: pick(env, 'OS_USER_DOMAIN_NAME') ?? domain,
          userDomainId: pick(env, 'OS_USER_DOMAIN_ID'),
        })
      : withDefined<PasswordCredentials>({
          type: 'password',
          username: pick(env, 'OS_USERNAME'),
          userId: pick(env, 'OS_USER_ID'),
          password: pick(env, 'OS_PASSWORD') ?? '',
          userDomainName: pick(env, 'OS_USER_DOMAIN_NAME') ?? domain,
          userDomainId: pick(env, 'OS_USER_DOMAIN_ID'),
          projectName: pick(env, 'OS_PROJECT_NAME', 'OS_TENANT_NAME'),
          projectId: pick(env, 'OS_PROJECT_ID', 'OS_TENANT_ID'),
          projectDomainName: pick(env, 'OS_PROJECT_DOMAIN_NAME') ?? domain,
          projectDomainId: pick(env, 'OS_PROJECT_DOMAIN_ID'),
        });
  return validateOpenStackConfig(
    withDefined<OpenStackConfig>({
      authUrl,
      credentials,
      region: pick(env, 'OS_REGION_NAME'),
      interface: interfaceOf(pick(env, 'OS_INTERFACE', 'OS_ENDPOINT_TYPE')),
      endpointOverride: pick(env, 'OS_LOAD_BALANCER_ENDPOINT_OVERRIDE'),
      networkEndpointOverride: pick(env, 'OS_NETWORK_ENDPOINT_OVERRIDE'),
      caBundle: readCa(pick(env, 'OS_CACERT')),
      insecure: bool(pick(env, 'OS_INSECURE')),
      subnetId: pick(env, 'OS_SUBNET_ID'),
    }),
  );
}

interface CloudEntry {
  auth?: Record<string, unknown>;
  auth_type?: string;
  region_name?: string;
  interface?: string;
  endpoint_type?: string;
  cacert?: string;
  verify?: boolean | string;
  load_balancer_endpoint_override?: string;
  network_endpoint_override?: string;
  subnet_id?: string;
}

/**
 * Reads one cloud of a `clouds.yaml` (openstacksdk format): `auth` (`auth_url`, `username`,
 * `user_id`, `password`, `project_name`, `project_id`, `user_domain_name`, `user_domain_id`,
 * `project_domain_name`, `project_domain_id`, `domain_name`, `application_credential_id`,
 * `application_credential_name`, `application_credential_secret`), `auth_type`, `region_name`,
 * `interface`, `cacert` (a path), `verify`, `load_balancer_endpoint_override`,
 * `network_endpoint_override`, and KLB's `subnet_id`.
 */
export function openStackConfigFromCloudsYaml(text: string, cloud: string): OpenStackConfig {
  let doc: { clouds?: Record<string, CloudEntry> };
  try {
    doc = parseYaml(text) as typeof doc;
  } catch (err) {
    throw new OpenStackConfigError('clouds.yaml is not valid YAML', { cause: err });
  }
  const entry = doc?.clouds?.[cloud];
  if (!entry || typeof entry !== 'object') throw new OpenStackConfigError(`clouds.yaml has no cloud ${cloud}`);
  const auth = entry.auth ?? {};
  const s = (key: string): string | undefined => {
    const value = auth[key];
    return typeof value === 'string' && value !== '' ? value : undefined;
  };
  const authUrl = s('auth_url');
  if (!authUrl) throw new OpenStackConfigError(`clouds.yaml cloud ${cloud} has no auth.auth_url`);
  const domain = s('domain_name');
  const credentials: OpenStackCredentials =
    entry.auth_type === 'v3applicationcredential' || s('application_credential_secret')
      ? withDefined<ApplicationCredentials>({
          type: 'applicationCredential',
          id: s('application_credential_id'),
          name: s('application_credential_name'),
          secret: s('application_credential_secret') ?? '',
          username: s('username'),
          userId: s('user_id'),
          userDomainName: s('user_domain_name') ?? domain,
          userDomainId: s('user_domain_id'),
        })
      : withDefined<PasswordCredentials>({
          type: 'password',
          username: s('username'),
          userId: s('user_id'),
          password: s('password') ?? '',
          userDomainName: s('user_domain_name') ?? domain,
          userDomainId: s('user_domain_id'),
          projectName: s('project_name') ?? s('tenant_name'),
          projectId: s('project_id') ?? s('tenant_id'),
          projectDomainName: s('project_domain_name') ?? domain,
          projectDomainId: s('project_domain_id'),
        });
  const verify = bool(entry.verify);
  return validateOpenStackConfig(
    withDefined<OpenStackConfig>({
      authUrl,
      credentials,
      region: entry.region_name,
      interface: interfaceOf(entry.interface ?? entry.endpoint_type),
      endpointOverride: entry.load_balancer_endpoint_override,
      networkEndpointOverride: entry.network_endpoint_override,
      caBundle: readCa(entry.cacert),
      insecure: verify === undefined ? undefined : !verify,
      subnetId: entry.subnet_id,
    }),
  );
}

/**
 * Reads a Kubernetes Secret's `data` (base64 values, as the API returns them): either a
 * `clouds.yaml` key (with the cloud named by the `cloud` key, default `openstack`) or the
 * `OS_*` names of {@link openStackConfigFromEnv} as keys. A `ca.crt` key is the CA bundle.
 */
export function openStackConfigFromSecret(data: Readonly<Record<string, string>>): OpenStackConfig {
  const decoded: Record<string, string> = {};
  for (const [key, value] of Object.entries(data)) decoded[key] = Buffer.from(value, 'base64').toString('utf8');
  const ca = decoded['ca.crt'];
  const base = decoded['clouds.yaml']
    ? openStackConfigFromCloudsYaml(decoded['clouds.yaml'], decoded.cloud ?? 'openstack')
    : openStackConfigFromEnv({ ...decoded, OS_CACERT: undefined });
  return ca ? { ...base, caBundle: ca } : base;
}
