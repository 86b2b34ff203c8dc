import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The engine's Prometheus metrics, registered on one registry. */
export class ControllerMetrics {
  /** The registry they are registered on (serve it at /metrics). */
  readonly registry: Registry;
  /** `klb_reconcile_total{backend,kind,result}`: reconciles by result (`success`, `error`, `terminal`, `requeue`). */
  readonly reconciles: Counter<'backend' | 'kind' | 'result'>;
  /** `klb_reconcile_duration_seconds{backend,kind}`. */
  readonly reconcileDuration: Histogram<'backend' | 'kind'>;
  /** `klb_reconcile_errors_total{backend,kind,reason}`. */
  readonly reconcileErrors: Counter<'backend' | 'kind' | 'reason'>;
  /** `klb_workqueue_depth`. */
  readonly queueDepth: Gauge;
  /** `klb_workqueue_adds_total`. */
  readonly queueAdds: Counter;
  /** `klb_workqueue_queue_duration_seconds`: time from add to a worker. */
  readonly queueLatency: Histogram;
  /** `klb_informer_restarts_total{resource,reason}`. */
  readonly informerRestarts: Counter<'resource' | 'reason'>;
  /** `klb_backend_watch_restarts_total{backend}`: failed starts of the backend's watch. */
  readonly backendWatchRestarts: Counter<'backend'>;
  /** `klb_leader`: 1 while this replica leads. */
  readonly leader: Gauge;
  /** `klb_managed_load_balancers{backend}`: load balancers currently ensured. */
  readonly managed: Gauge<'backend'>;

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    this.reconciles = new Counter({
      name: 'klb_reconcile_total',
      help: 'Reconciles by backend, source kind and result.',
      labelNames: ['backend', 'kind', 'result'],
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: 'klb_reconcile_duration_seconds',
      help: 'Time spent in one reconcile.',
      labelNames: ['backend', 'kind'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: 'klb_reconcile_errors_total',
      help: 'Failed reconciles by backend, source kind and reason.',
      labelNames: ['backend', 'kind', 'reason'],
      registers,
    });
    this.queueDepth = new Gauge({ name: 'klb_workqueue_depth', help: 'Keys waiting in the work queue.', registers });
    this.queueAdds = new Counter({
      name: 'klb_workqueue_adds_total',
      help: 'Keys added to the work queue.',
      registers,
    });
    this.queueLatency = new Histogram({
      name: 'klb_workqueue_queue_duration_seconds',
      help: 'Time a key waits in the queue before a worker takes it.',
      buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60],
      registers,
    });
    this.informerRestarts = new Counter({
      name: 'klb_informer_restarts_total',
      help: 'List/watch restarts by resource and reason (error, gone, watchdog, closed).',
      labelNames: ['resource', 'reason'],
      registers,
    });
    this.backendWatchRestarts = new Counter({
      name: 'klb_backend_watch_restarts_total',
      help: "Failed starts of the backend's watch (node reports, appliance state), each retried with backoff.",
      labelNames: ['backend'],
      registers,
    });
    this.leader = new Gauge({ name: 'klb_leader', help: '1 while this replica is the leader.', registers });
    this.managed = new Gauge({
      name: 'klb_managed_load_balancers',
      help: 'Load balancers ensured by this controller.',
      labelNames: ['backend'],
      registers,
    });
  }
}
