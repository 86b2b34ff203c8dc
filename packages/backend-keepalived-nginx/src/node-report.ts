import { Ajv } from 'ajv';
import { DAEMON_CONFIG_API_VERSION } from './daemon-config.js';
import { InvalidDaemonConfigError } from './errors.js';

/** The `kind` of a {@link DaemonNodeReport}. */
export const DAEMON_NODE_REPORT_KIND = 'DaemonNodeReport';

/** Label on every node report ConfigMap (value `true`); the controller watches this selector. */
export const DAEMON_REPORT_LABEL = 'klb.io/daemon-report';

/** The ConfigMap data key that holds a node report's JSON. */
export const DAEMON_REPORT_KEY = 'report.json';

/** VRRP states keepalived reports (`notify` script states, plus `INIT` before the first one). */
export type VrrpState = 'INIT' | 'BACKUP' | 'MASTER' | 'FAULT' | 'STOP';

/** One VRRP instance as a daemon sees it. */
export interface DaemonVrrpInstanceReport {
  /** The keepalived instance name (`KeepalivedInstance.name`, e.g. `klb_default_4`). */
  readonly instance: string;
  /** Its VRRP group. */
  readonly group: string;
  /** Its virtual router id. */
  readonly vrid: number;
  /** This node's state for the instance. */
  readonly state: VrrpState;
  /** The VIPs of the instance (held by this node when `state` is `MASTER`). */
  readonly addresses: readonly string[];
}

/** Why a node left a load balancer out. */
export interface DaemonReportRejection {
  /** The config version the node saw. */
  readonly version: string;
  /** The error (e.g. an invalid value or a VIP:port collision). */
  readonly message: string;
}

/** The ConfigMap that carries a node report (see {@link daemonReportObject}). */
export interface DaemonReportObject {
  /** `v1`. */
  apiVersion: 'v1';
  /** `ConfigMap`. */
  kind: 'ConfigMap';
  /** Name, namespace and the report label. */
  metadata: {
    /** {@link daemonReportObjectName} of the node. */
    name: string;
    /** The daemons' namespace. */
    namespace: string;
    /** {@link DAEMON_REPORT_LABEL}`: 'true'` and `app.kubernetes.io/managed-by: klb`. */
    labels: Record<string, string>;
  };
  /** The report JSON under {@link DAEMON_REPORT_KEY}. */
  data: Record<string, string>;
}

/**
 * What a node daemon publishes about itself, in a ConfigMap named
 * {@link daemonReportObjectName}`(node)` in the daemons' namespace, labelled
 * {@link DAEMON_REPORT_LABEL}`=true`, under the key {@link DAEMON_REPORT_KEY}. The controller
 * reads it to say on each load balancer where its config is applied and which node holds its VIPs.
 */
export interface DaemonNodeReport {
  /** Always `klb.io/v1alpha1`. */
  readonly apiVersion: typeof DAEMON_CONFIG_API_VERSION;
  /** Always {@link DAEMON_NODE_REPORT_KIND}. */
  readonly kind: typeof DAEMON_NODE_REPORT_KIND;
  /** The node name. */
  readonly node: string;
  /** When the daemon wrote this report (RFC 3339). Daemons refresh it at least every minute. */
  readonly updatedAt: string;
  /** Load balancer id → the config version serving on this node (rendered, validated, reloaded). */
  readonly applied: Readonly<Record<string, string>>;
  /** Load balancer id → why this node left it out (invalid, colliding), with the version it saw. */
  readonly rejected: Readonly<Record<string, DaemonReportRejection>>;
  /** VRRP state per keepalived instance. */
  readonly vrrp: readonly DaemonVrrpInstanceReport[];
  /** Node-level problems: a config that failed `nginx -t`/`keepalived -t` (last good one kept), a failed reload, a crashed process. */
  readonly errors: readonly string[];
}

const reportSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'node', 'updatedAt', 'applied', 'rejected', 'vrrp', 'errors'],
  properties: {
    apiVersion: { const: DAEMON_CONFIG_API_VERSION },
    kind: { const: DAEMON_NODE_REPORT_KIND },
    node: { type: 'string', minLength: 1, maxLength: 253 },
    updatedAt: { type: 'string', maxLength: 64 },
    applied: { type: 'object', additionalProperties: { type: 'string', maxLength: 64 } },
    rejected: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['version', 'message'],
        properties: { version: { type: 'string', maxLength: 64 }, message: { type: 'string', maxLength: 2048 } },
      },
    },
    vrrp: {
      type: 'array',
      maxItems: 512,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['instance', 'group', 'vrid', 'state', 'addresses'],
        properties: {
          instance: { type: 'string', maxLength: 128 },
          group: { type: 'string', maxLength: 63 },
          vrid: { type: 'integer', minimum: 1, maximum: 255 },
          state: { enum: ['INIT', 'BACKUP', 'MASTER', 'FAULT', 'STOP'] },
          addresses: { type: 'array', items: { type: 'string', maxLength: 45 } },
        },
      },
    },
    errors: { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 4096 } },
  },
} as const;

const check = new Ajv({ strict: true }).compile(reportSchema);

/** Name of a node's report ConfigMap: `klb-daemon-<node>` (node names are DNS subdomains). */
export function daemonReportObjectName(node: string): string {
  return `klb-daemon-${node}`;
}

/**
 * Parses and validates a node report (the JSON text from the ConfigMap).
 *
 * @throws InvalidDaemonConfigError when it is not valid JSON or not a {@link DaemonNodeReport}.
 */
export function parseDaemonNodeReport(json: string): DaemonNodeReport {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new InvalidDaemonConfigError('report', 'is not JSON', { cause: err });
  }
  if (!check(value)) {
    const e = check.errors?.[0];
    throw new InvalidDaemonConfigError(`report${e?.instancePath ?? ''}`, e?.message ?? 'is not a DaemonNodeReport');
  }
  return value as unknown as DaemonNodeReport;
}

/**
 * The ConfigMap a daemon writes (create or replace) for its report, in `namespace`.
 */
export function daemonReportObject(namespace: string, report: DaemonNodeReport): DaemonReportObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: daemonReportObjectName(report.node),
      namespace,
      labels: { [DAEMON_REPORT_LABEL]: 'true', 'app.kubernetes.io/managed-by': 'klb' },
    },
    data: { [DAEMON_REPORT_KEY]: JSON.stringify(report) },
  };
}
