import { randomBytes } from 'node:crypto';
import type { KubeClient, KubeObject } from './kube-client.js';
import { type Logger, silentLogger } from './logger.js';

/** `Normal` or `Warning`, as Kubernetes events are typed. */
export type EventType = 'Normal' | 'Warning';

/**
 * Records core/v1 Events on objects (shown by `kubectl describe`). The same reason and message on
 * the same object within ten minutes bumps the existing event's count instead of creating another,
 * so a failing object cannot flood the API. Recording never throws: a failure is logged.
 */
export class EventRecorder {
  readonly #client: KubeClient;
  readonly #component: string;
  readonly #log: Logger;
  readonly #recent = new Map<string, { name: string; namespace: string; count: number; at: number }>();

  constructor(client: KubeClient, component = 'klb-controller', logger: Logger = silentLogger) {
    this.#client = client;
    this.#component = component;
    this.#log = logger;
  }

  /** Records an event on `obj` (in the background). */
  record(obj: KubeObject, type: EventType, reason: string, message: string): void {
    void this.#record(obj, type, reason, message.slice(0, 1024));
  }

  async #record(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const meta = obj.metadata ?? {};
    const namespace = meta.namespace ?? 'default';
    const dedupeKey = `${meta.uid}\u0000${type}\u0000${reason}\u0000${message}`;
    const now = new Date();
    const seen = this.#recent.get(dedupeKey);
    try {
      if (seen && now.getTime() - seen.at < 600_000) {
        seen.count++;
        seen.at = now.getTime();
        await this.#client.patch(`/api/v1/namespaces/${seen.namespace}/events/${seen.name}`, {
          count: seen.count,
          lastTimestamp: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        });
        return;
      }
      const name = `${meta.name}.${randomBytes(8).toString('hex')}`;
      const stamp = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
      await this.#client.create(`/api/v1/namespaces/${namespace}/events`, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject: {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          namespace: meta.namespace,
          name: meta.name,
          uid: meta.uid,
          resourceVersion: meta.resourceVersion,
        },
        reason,
        message,
        type,
        source: { component: this.#component },
        reportingComponent: this.#component,
        firstTimestamp: stamp,
        lastTimestamp: stamp,
        count: 1,
      } as KubeObject);
      if (this.#recent.size > 10_000) this.#recent.clear();
      this.#recent.set(dedupeKey, { name, namespace, count: 1, at: now.getTime() });
    } catch (err) {
      this.#recent.delete(dedupeKey);
      this.#log.warn({ err: String(err), reason }, 'could not record event');
    }
  }
}
