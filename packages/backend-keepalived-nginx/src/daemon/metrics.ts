import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The daemon's Prometheus metrics, served on /metrics. */
export class DaemonMetrics {
  /** The registry holding them. */
  readonly registry: Registry;
  /** Config applications by result: `reloaded`, `unchanged`, `invalid` (last good kept), `reload_failed`. */
  readonly applies: Counter<'result'>;
  /** Time from a config change being seen to the result being served (or refused). */
  readonly applySeconds: Histogram;
  /** Load balancers serving on this node. */
  readonly servicesApplied: Gauge;
  /** Load balancers left out on this node (invalid, colliding, failing validation). */
  readonly servicesRejected: Gauge;
  /** Unrequested exits of supervised processes (each is restarted), by process. */
  readonly processRestarts: Counter<'process'>;
  /** 1 when this node is MASTER of the VRRP instance, else 0. */
  readonly vrrpMaster: Gauge<'instance'>;
  /** Unix time of the last successful reload. */
  readonly lastReload: Gauge;
  /** Failed writes of the node report. */
  readonly reportFailures: Counter;

  /** @param registry - where to register (default: a new one). */
  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    this.applies = new Counter({
      name: 'klb_daemon_config_applies_total',
      help: 'Config applications by result (reloaded, unchanged, invalid, reload_failed).',
      labelNames: ['result'],
      registers,
    });
    this.applySeconds = new Histogram({
      name: 'klb_daemon_config_apply_seconds',
      help: 'Seconds from render to the config serving (validate, swap, reload).',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers,
    });
    this.servicesApplied = new Gauge({
      name: 'klb_daemon_services_applied',
      help: 'Load balancers serving on this node.',
      registers,
    });
    this.servicesRejected = new Gauge({
      name: 'klb_daemon_services_rejected',
      help: 'Load balancers left out on this node.',
      registers,
    });
    this.processRestarts = new Counter({
      name: 'klb_daemon_process_restarts_total',
      help: 'Unrequested exits of nginx/keepalived (each followed by a restart).',
      labelNames: ['process'],
      registers,
    });
    this.vrrpMaster = new Gauge({
      name: 'klb_daemon_vrrp_master',
      help: '1 when this node is MASTER of the VRRP instance.',
      labelNames: ['instance'],
      registers,
    });
    this.lastReload = new Gauge({
      name: 'klb_daemon_last_reload_timestamp_seconds',
      help: 'Unix time of the last successful reload.',
      registers,
    });
    this.reportFailures = new Counter({
      name: 'klb_daemon_report_failures_total',
      help: 'Failed writes of the node report.',
      registers,
    });
  }
}
