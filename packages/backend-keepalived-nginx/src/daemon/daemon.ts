import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type HealthServer, KubeClient, type Logger, silentLogger, startHealthServer } from '@klb/core';
import type { KubeConfig } from '@kubernetes/client-node';
import { DAEMON_CONFIG_API_VERSION } from '../daemon-config.js';
import type { KeepalivedRenderOptions } from '../keepalived-renderer.js';
import type { NginxRenderOptions } from '../nginx-renderer.js';
import { DAEMON_NODE_REPORT_KIND, type DaemonNodeReport } from '../node-report.js';
import { type ApplyOutcome, ConfigApplier } from './config-applier.js';
import { DaemonConfigWatcher } from './config-watcher.js';
import { DaemonMetrics } from './metrics.js';
import { confirmNginxReload, logOffset } from './nginx-reload.js';
import { NodeStatusReporter } from './status-reporter.js';
import { ProcessSupervisor } from './supervisor.js';
import { enableNonlocalBind } from './sysctl.js';
import { interfaceAddresses, removeVips } from './vip-cleanup.js';
import { VrrpStateTracker } from './vrrp-state.js';

/** keepalived settings of the daemon. */
export interface DaemonKeepalivedOptions
  extends Omit<KeepalivedRenderOptions, 'trackNginx' | 'notifyScript' | 'routerId'> {
  /** `router_id` in keepalived.conf; default: the node name, lower-cased, other characters as `-`. */
  readonly routerId?: string;
  /** keepalived binary; default `keepalived`. */
  readonly bin?: string;
  /** Extra command-line arguments (`KEEPALIVED_OPTS`), e.g. `['--log-detail']`. */
  readonly extraArgs?: readonly string[];
}

/** Options of {@link runDaemon}. */
export interface DaemonOptions {
  /** Credentials for the Kubernetes API (in a pod: `KubeConfig.loadFromCluster()`). */
  readonly kubeConfig: KubeConfig;
  /** Namespace of the published configs and of this node's report (`POD_NAMESPACE`). */
  readonly namespace: string;
  /** This node's name: the report is `klb-daemon-<node>`. */
  readonly nodeName: string;
  /** Directory for configs, TLS files, pid files and logs; created if missing. */
  readonly stateDir: string;
  /** nginx: binary and render options (the paths are the daemon's). */
  readonly nginx?: Omit<NginxRenderOptions, 'tlsDir' | 'runDir' | 'errorLog'> & {
    /** nginx binary; default `nginx`. */
    readonly bin?: string;
  };
  /** keepalived settings, or `false` to run nginx only (VIPs are brought to the node by other means). */
  readonly keepalived: DaemonKeepalivedOptions | false;
  /**
   * Router ids this node uses for VRRP groups instead of the published ones, by group: the original
   * system's `VIRTUAL_ROUTER_ID` sets the `default` group's. Set it the same on every node.
   */
  readonly virtualRouterIds?: Readonly<Record<string, number>>;
  /** Also read the original system's `daemon-configmap`; default true. */
  readonly compatConfigMap?: boolean;
  /** Set `net.ipv4.ip_nonlocal_bind` and `net.ipv6.ip_nonlocal_bind` to 1 in the daemon's network namespace; default true. */
  readonly nonlocalBind?: boolean;
  /** Minimum time between two applies (reload rate limit), in ms; default 1000. Changes in between are coalesced. */
  readonly minReloadIntervalMs?: number;
  /** Time to wait after a change for more changes before applying, in ms; default 50. */
  readonly debounceMs?: number;
  /** Period of the report refresh (and of VRRP state polling), in ms; default 30000, at most 60000. */
  readonly reportIntervalMs?: number;
  /** Where to serve /healthz, /readyz and /metrics, or `false`; default port 10254 on 0.0.0.0. */
  readonly health?:
    | {
        /** Address to bind; default `0.0.0.0`. */
        readonly host?: string;
        /** Port; 0 picks a free one. */
        readonly port: number;
      }
    | false;
  /** Backoff of restarts of nginx/keepalived; default 200 ms doubling to 30 s. */
  readonly restartBackoff?: {
    /** First delay, in ms. */
    readonly baseMs: number;
    /** Largest delay, in ms. */
    readonly maxMs: number;
  };
  /** The metrics (default: new, in their own registry). */
  readonly metrics?: DaemonMetrics;
  /** Logger. */
  readonly logger?: Logger;
}

/** What the daemon is doing, for tests and diagnostics. */
export interface DaemonStatus {
  /** The report as last built. */
  readonly report: DaemonNodeReport;
  /** The result of the last apply, if any. */
  readonly lastApply: ApplyOutcome['result'] | undefined;
  /** Applies so far. */
  readonly applies: number;
  /** pid of nginx, when running. */
  readonly nginxPid: number | undefined;
  /** pid of keepalived, when running. */
  readonly keepalivedPid: number | undefined;
}

/** A running daemon, returned by {@link runDaemon}. */
export interface Daemon {
  /** The port /healthz and /metrics are served on, when enabled. */
  readonly healthPort: number | undefined;
  /** The metrics. */
  readonly metrics: DaemonMetrics;
  /** The live nginx.conf path. */
  readonly nginxConfigPath: string;
  /** The live keepalived.conf path. */
  readonly keepalivedConfigPath: string;
  /** The current status. */
  status(): DaemonStatus;
  /** Resolves after the next apply that starts after this call has finished. */
  nextApply(): Promise<ApplyOutcome>;
  /**
   * Shuts down: stops watching, stops keepalived (which gives the VIPs up with a priority-0
   * advert) and nginx, removes any VIP still on the node, writes a last report. Safe to call twice.
   */
  stop(): Promise<void>;
}

function defaultRouterId(node: string): string {
  return (
    node
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '-')
      .slice(0, 63) || 'klb'
  );
}

/** The state letter and the rest of `/proc/<pid>/stat` after the command name, or undefined. */
function procStat(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2);
  } catch {
    return undefined;
  }
}

/** True while `pid` is a process that has not ended (zombies count as ended). */
function alive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat[0] !== 'Z';
}

/**
 * Runs the keepalived-nginx node daemon: watches the published config objects, renders nginx.conf
 * and keepalived.conf, validates (`nginx -t`, `keepalived -t`), swaps atomically and reloads
 * (rate-limited, skipped when the output is unchanged), keeps the last good config serving when a
 * new one fails, supervises nginx and keepalived (restart with backoff), sets the non-local bind
 * sysctls, reports per-node status, serves /healthz and /metrics, and removes its VIPs on stop.
 */
export async function runDaemon(options: DaemonOptions): Promise<Daemon> {
  const log = (options.logger ?? silentLogger).child({ node: options.nodeName });
  const metrics = options.metrics ?? new DaemonMetrics();
  const client = new KubeClient(options.kubeConfig);
  await mkdir(options.stateDir, { recursive: true, mode: 0o700 });

  const k = options.keepalived;
  const vrrp = k === false ? undefined : new VrrpStateTracker(join(options.stateDir, 'vrrp'));
  await vrrp?.install();
  const backoff = options.restartBackoff ?? { baseMs: 200, maxMs: 30_000 };
  const nodeErrors: string[] = [];
  const noteProcessError = (message: string) => {
    nodeErrors.push(`${new Date().toISOString()} ${message}`);
    while (nodeErrors.length > 10) nodeErrors.shift();
    scheduleReport();
  };

  let nginx: ProcessSupervisor | undefined;
  let keepalived: ProcessSupervisor | undefined;
  const applier: ConfigApplier = new ConfigApplier({
    stateDir: options.stateDir,
    ...(options.nginx?.bin === undefined ? {} : { nginxBin: options.nginx.bin }),
    ...(k !== false && k.bin !== undefined ? { keepalivedBin: k.bin } : {}),
    ...(options.nginx === undefined ? {} : { nginx: stripBin(options.nginx) }),
    keepalived:
      k === false ? false : { ...stripKeepalived(k), routerId: k.routerId ?? defaultRouterId(options.nodeName) },
    ...(vrrp ? { notifyScript: vrrp.script } : {}),
    logger: log,
    dataPlane: {
      async ensureStarted() {
        await nginx?.start();
        await keepalived?.start();
      },
      async reloadNginx() {
        if (!nginx?.pid) return; // a restart is pending: it reads the new file
        const offset = await logOffset(applier.nginxErrorLog);
        nginx.signal('SIGHUP');
        await confirmNginxReload(applier.nginxErrorLog, offset);
      },
      async reloadKeepalived() {
        keepalived?.signal('SIGHUP');
      },
    },
  });
  await applier.prepare();
  if (options.nonlocalBind ?? true) await enableNonlocalBind('/proc/sys', log);

  nginx = new ProcessSupervisor({
    name: 'nginx',
    bin: options.nginx?.bin ?? 'nginx',
    args: ['-p', applier.nginxPrefix, '-c', applier.nginxConfigPath, '-g', 'daemon off;'],
    cwd: applier.nginxPrefix,
    backoff,
    logger: log,
    beforeStart: async () => {
      // A master killed with SIGKILL leaves its workers holding the listening sockets.
      await endOrphans(applier.nginxPidFile, applier.nginxPrefix);
    },
    onExit: (exit) => {
      metrics.processRestarts.inc({ process: 'nginx' });
      noteProcessError(`nginx exited (code ${exit.code}, signal ${exit.signal}); restarting`);
    },
  });
  if (k !== false) {
    const pids = applier.keepalivedPidFiles;
    keepalived = new ProcessSupervisor({
      name: 'keepalived',
      bin: k.bin ?? 'keepalived',
      args: [
        '-f',
        applier.keepalivedConfigPath,
        '-p',
        pids.main,
        '-r',
        pids.vrrp,
        '-n',
        '-l',
        '-D',
        ...(k.extraArgs ?? []),
      ],
      backoff,
      logger: log,
      beforeStart: async () => {
        // keepalived refuses to start while its pid files name a live process: the VRRP child of
        // a killed instance ends with its parent; wait for that, then clear them.
        for (const file of [pids.main, pids.vrrp]) {
          const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
          for (let i = 0; i < 100 && pid > 0 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
          await rm(file, { force: true });
        }
        await vrrp?.reset();
      },
      onExit: (exit) => {
        metrics.processRestarts.inc({ process: 'keepalived' });
        noteProcessError(`keepalived exited (code ${exit.code}, signal ${exit.signal}); restarting`);
      },
    });
  }

  // --- apply loop: coalesced, rate-limited ---
  let applies = 0;
  let lastApply: ApplyOutcome | undefined;
  let lastApplyStart = 0;
  let dirty = false;
  let loop: Promise<void> | undefined;
  let stopped = false;
  let applyWaiters: Array<(o: ApplyOutcome) => void> = [];
  const minInterval = options.minReloadIntervalMs ?? 1000;
  const debounce = options.debounceMs ?? 50;
  let watcher: DaemonConfigWatcher | undefined;
  let synced = false;

  const applyLoop = async (): Promise<void> => {
    while (dirty && !stopped) {
      const wait = Math.max(debounce, lastApplyStart + minInterval - Date.now());
      await new Promise((r) => setTimeout(r, wait));
      if (stopped) return;
      dirty = false;
      const waiters = applyWaiters;
      applyWaiters = [];
      lastApplyStart = Date.now();
      const snapshot = (watcher as DaemonConfigWatcher).snapshot();
      const overrides = options.virtualRouterIds ?? {};
      const configs = snapshot.configs.map((c) => {
        const vrid = Object.hasOwn(overrides, c.options.vrrp.group) ? overrides[c.options.vrrp.group] : undefined;
        return vrid === undefined ? c : { ...c, options: { ...c.options, vrrp: { ...c.options.vrrp, vrid } } };
      });
      const end = metrics.applySeconds.startTimer();
      let outcome: ApplyOutcome;
      try {
        outcome = await applier.apply(configs, snapshot.errors);
      } catch (err) {
        outcome = {
          result: 'failed',
          applied: lastApply?.applied ?? new Map(),
          rejected: lastApply?.rejected ?? new Map(),
          errors: [`apply failed: ${(err as Error).message}`],
          instances: applier.instances,
        };
        log.error({ err: String(err) }, 'apply failed');
      }
      end();
      applies++;
      lastApply = outcome;
      metrics.applies.inc({
        result:
          outcome.result === 'failed'
            ? outcome.errors.some((e) => e.startsWith('reload'))
              ? 'reload_failed'
              : 'invalid'
            : outcome.result,
      });
      if (outcome.result === 'reloaded') metrics.lastReload.setToCurrentTime();
      metrics.servicesApplied.set(outcome.applied.size);
      metrics.servicesRejected.set(outcome.rejected.size);
      log.info(
        {
          result: outcome.result,
          applied: outcome.applied.size,
          rejected: outcome.rejected.size,
          errors: outcome.errors,
        },
        'config applied',
      );
      for (const resolve of waiters) resolve(outcome);
      if (outcome.retry) dirty = true;
      scheduleReport();
    }
  };
  const scheduleApply = (): void => {
    if (!synced || stopped) return;
    dirty = true;
    loop ??= applyLoop().finally(() => {
      loop = undefined;
      // Changes, or nextApply() callers, that arrived after the last iteration took its snapshot.
      if ((dirty || applyWaiters.length > 0) && !stopped) scheduleApply();
    });
  };

  // --- reports ---
  const reporter = new NodeStatusReporter({ client, namespace: options.namespace, logger: log });
  let report: DaemonNodeReport = {
    apiVersion: DAEMON_CONFIG_API_VERSION,
    kind: DAEMON_NODE_REPORT_KIND,
    node: options.nodeName,
    updatedAt: new Date().toISOString(),
    applied: {},
    rejected: {},
    vrrp: [],
    errors: [],
  };
  const buildReport = async (): Promise<DaemonNodeReport> => {
    const states = vrrp
      ? await vrrp.read(applier.instances, keepalived?.pid !== undefined, async () =>
          (await interfaceAddresses()).map((a) => a.address),
        )
      : [];
    for (const s of states) metrics.vrrpMaster.set({ instance: s.instance }, s.state === 'MASTER' ? 1 : 0);
    report = {
      apiVersion: DAEMON_CONFIG_API_VERSION,
      kind: DAEMON_NODE_REPORT_KIND,
      node: options.nodeName,
      updatedAt: new Date().toISOString(),
      applied: Object.fromEntries(lastApply?.applied ?? []),
      rejected: Object.fromEntries(lastApply?.rejected ?? []),
      vrrp: states,
      errors: [...(lastApply?.errors ?? []), ...nodeErrors].slice(-64).map((e) => e.slice(0, 4096)),
    };
    return report;
  };
  let reporting: Promise<void> | undefined;
  let reportAgain = false;
  const publishReport = async (force: boolean): Promise<void> => {
    try {
      await reporter.publish(await buildReport(), force);
    } catch (err) {
      metrics.reportFailures.inc();
      log.warn({ err: String(err) }, 'could not write the node report');
    }
  };
  function scheduleReport(): void {
    if (reporting) {
      reportAgain = true;
      return;
    }
    reporting = publishReport(false).finally(() => {
      reporting = undefined;
      if (reportAgain) {
        reportAgain = false;
        scheduleReport();
      }
    });
  }
  const reportInterval = Math.min(options.reportIntervalMs ?? 30_000, 60_000);
  let lastForced = Date.now();
  const timer = setInterval(
    () => {
      // VRRP state changes arrive through the notify script's files: poll them often, write on change.
      const force = Date.now() - lastForced >= reportInterval;
      if (force) lastForced = Date.now();
      if (!reporting) reporting = publishReport(force).finally(() => (reporting = undefined));
    },
    Math.min(reportInterval, 1000),
  );

  // --- health ---
  let health: HealthServer | undefined;
  const running = (s: ProcessSupervisor | undefined) => s === undefined || !s.supervising || s.pid !== undefined;
  if (options.health !== false) {
    const h = options.health ?? { port: 10254 };
    health = await startHealthServer({
      ...(h.host === undefined ? {} : { host: h.host }),
      port: h.port,
      registry: metrics.registry,
      healthy: () => !stopped && running(nginx) && running(keepalived),
      ready: () => !stopped && lastApply !== undefined && nginx?.pid !== undefined && running(keepalived),
    });
  }

  watcher = new DaemonConfigWatcher({
    client,
    namespace: options.namespace,
    ...(options.compatConfigMap === undefined ? {} : { compatConfigMap: options.compatConfigMap }),
    onChange: scheduleApply,
    logger: log,
  });
  await watcher.start();
  synced = true;
  scheduleApply();
  log.info({ namespace: options.namespace, stateDir: options.stateDir }, 'daemon started');

  let stopping: Promise<void> | undefined;
  return {
    healthPort: health?.port,
    metrics,
    nginxConfigPath: applier.nginxConfigPath,
    keepalivedConfigPath: applier.keepalivedConfigPath,
    status: () => ({
      report,
      lastApply: lastApply?.result,
      applies,
      nginxPid: nginx?.pid,
      keepalivedPid: keepalived?.pid,
    }),
    nextApply() {
      return new Promise((resolve) => {
        applyWaiters.push(resolve);
        if (!loop) scheduleApply();
      });
    },
    stop() {
      stopping ??= (async () => {
        stopped = true;
        clearInterval(timer);
        await watcher?.stop();
        await loop?.catch(() => {});
        await keepalived?.stop();
        await nginx?.stop('SIGQUIT');
        await removeVips(applier.vips, log).catch((err: unknown) => {
          log.warn({ err: String(err) }, 'could not list addresses to remove VIPs');
        });
        await reporting?.catch(() => {});
        await reporter
          .publish({ ...(await buildReport()), vrrp: report.vrrp.map((v) => ({ ...v, state: 'STOP' as const })) }, true)
          .catch((err: unknown) => log.warn({ err: String(err) }, 'could not write the last node report'));
        await health?.close();
        client.close();
        log.info('daemon stopped');
      })();
      return stopping;
    },
  };
}

function stripBin<T extends { readonly bin?: string }>(options: T): Omit<T, 'bin'> {
  const { bin: _bin, ...rest } = options;
  return rest;
}

function stripKeepalived(options: DaemonKeepalivedOptions): Omit<KeepalivedRenderOptions, 'trackNginx' | 'routerId'> {
  const { bin: _bin, extraArgs: _extra, routerId: _router, ...rest } = options;
  return rest;
}

/**
 * SIGKILLs nginx workers left by a master of this daemon that died (re-parented, still holding
 * the listening sockets): nginx processes whose working directory is this daemon's nginx prefix,
 * while the master named in the pid file is gone.
 */
async function endOrphans(pidFile: string, prefix: string): Promise<void> {
  const master = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!(master > 0) || alive(master)) return;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.startsWith('nginx: ')) continue;
    const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => '');
    if (cwd !== prefix) continue;
    try {
      process.kill(Number(entry), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
