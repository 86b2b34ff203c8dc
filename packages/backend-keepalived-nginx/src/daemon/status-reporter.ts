import { isNotFound, type KubeClient, type KubeObject, type Logger, silentLogger } from '@klb/core';
import { type DaemonNodeReport, daemonReportObject, daemonReportObjectName } from '../node-report.js';

/** Options of {@link NodeStatusReporter}. */
export interface NodeStatusReporterOptions {
  /** Client for the Kubernetes API. */
  readonly client: KubeClient;
  /** Namespace of the report ConfigMap (the daemons' own). */
  readonly namespace: string;
  /** Logger. */
  readonly logger?: Logger;
}

/**
 * Publishes a node's {@link DaemonNodeReport} as its ConfigMap (created, or replaced with
 * optimistic concurrency). A report whose content (everything but `updatedAt`) equals the last
 * one written is skipped unless `force` is set (the periodic refresh).
 */
export class NodeStatusReporter {
  readonly #client: KubeClient;
  readonly #namespace: string;
  readonly #log: Logger;
  #lastContent = '';

  constructor(options: NodeStatusReporterOptions) {
    this.#client = options.client;
    this.#namespace = options.namespace;
    this.#log = (options.logger ?? silentLogger).child({ component: 'status-reporter' });
  }

  /** Writes `report`; returns false when it was skipped as unchanged. Throws when the API refuses it. */
  async publish(report: DaemonNodeReport, force = false): Promise<boolean> {
    const { updatedAt: _time, ...content } = report;
    const key = JSON.stringify(content);
    if (!force && key === this.#lastContent) return false;
    const body = daemonReportObject(this.#namespace, report) as KubeObject;
    const path = `/api/v1/namespaces/${encodeURIComponent(this.#namespace)}/configmaps`;
    const name = daemonReportObjectName(report.node);
    for (let attempt = 0; ; attempt++) {
      try {
        const current = await this.#client.get<KubeObject>(`${path}/${encodeURIComponent(name)}`).catch((err) => {
          if (isNotFound(err)) return undefined;
          throw err;
        });
        if (current === undefined) await this.#client.create(path, body);
        else {
          const metadata = { ...body.metadata, resourceVersion: current.metadata?.resourceVersion };
          await this.#client.replace(`${path}/${encodeURIComponent(name)}`, { ...body, metadata } as KubeObject);
        }
        break;
      } catch (err) {
        // Another writer (a previous pod of this daemon) raced us: read again and retry.
        const status = (err as { status?: number }).status;
        if (attempt < 3 && (status === 409 || status === 404)) continue;
        throw err;
      }
    }
    this.#lastContent = key;
    this.#log.debug({ name }, 'node report written');
    return true;
  }
}
