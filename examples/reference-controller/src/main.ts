// The KLB reference controller: @klb/core's engine + @klb/ipam + one backend, from flags and env.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { F5Backend, f5ConfigFromEnv, IControlClient } from '@klb/backend-f5';
import { KeepalivedNginxBackend } from '@klb/backend-keepalived-nginx';
import { OctaviaBackend, openStackConfigFromEnv } from '@klb/backend-octavia';
import { KubeClient, type LoadBalancerBackend, LoadBalancerController, type Logger } from '@klb/core';
import { KubeIpam, loadPoolConfigFile, type Pool, poolConfigFromConfigMap, poolConfigFromEnv } from '@klb/ipam';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { type Config, ConfigError, helpText, parseConfig } from './options.js';

/** Runs `fn`; any error it throws is a configuration error (exit status 2). */
async function configured<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw err instanceof ConfigError ? err : new ConfigError(`${what}: ${(err as Error).message}`);
  }
}

/**
 * The address pools: from a file or the environment now (a mistake is a configuration error), or
 * from a ConfigMap, read when the IPAM starts: an unreachable apiserver or a ConfigMap not there
 * yet is retried by the controller while /healthz answers; a ConfigMap with bad pools is final.
 */
async function loadPools(
  config: Config,
  kubeConfig: KubeConfig,
): Promise<readonly Pool[] | (() => Promise<readonly Pool[]>) | undefined> {
  if (config.poolsFile) return loadPoolConfigFile(config.poolsFile);
  if (config.poolsConfigMap) {
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const name = config.poolsConfigMap;
    return async () =>
      poolConfigFromConfigMap(await core.readNamespacedConfigMap({ name, namespace: config.namespace }));
  }
  const { start, end } = config.vipRange;
  return poolConfigFromEnv({ VIP_ALLOCATION_START: start, VIP_ALLOCATION_END: end });
}

function makeBackend(config: Config, kubeConfig: KubeConfig, log: Logger): LoadBalancerBackend {
  const logger = log.child({ component: config.backend });
  switch (config.backend) {
    case 'keepalived-nginx':
      return new KeepalivedNginxBackend({
        client: new KubeClient(kubeConfig),
        namespace: config.namespace,
        mode: config.daemonConfigMode,
        vrrpGroup: config.vrrpGroup,
        logger,
      });
    case 'f5':
      return new F5Backend({
        client: new IControlClient({ ...f5ConfigFromEnv(), logger }),
        partition: config.f5Partition,
        controllerId: config.f5ControllerId,
        logger,
      });
    case 'octavia':
      return new OctaviaBackend({
        config: openStackConfigFromEnv(),
        clusterName: config.osClusterName,
        naming: config.osNaming,
        log: logger,
      });
  }
}

async function main(argv: readonly string[]): Promise<void> {
  const config = parseConfig(argv, process.env);
  if (config.help) {
    process.stdout.write(helpText());
    return;
  }
  const log: Logger = pino({ level: config.logLevel, base: { app: 'klb-controller', backend: config.backend } });
  const kubeConfig = await configured('kubeconfig', () => {
    const kc = new KubeConfig();
    if (config.kubeconfig) kc.loadFromFile(config.kubeconfig);
    else kc.loadFromDefault();
    return kc;
  });
  const backend = await configured(`${config.backend} backend`, () => makeBackend(config, kubeConfig, log));
  const pools = await configured('address pools', () => loadPools(config, kubeConfig));
  if (!pools && !backend.capabilities.allocatesAddresses) {
    throw new ConfigError(
      `the ${config.backend} backend needs address pools: --pools-file, --pools-configmap or VIP_ALLOCATION_START/END`,
    );
  }
  const registry = new Registry();
  // Only the leader allocates (one replica without leader election): claims are confirmed from the watch.
  const allocator =
    pools &&
    new KubeIpam({
      kubeConfig,
      namespace: config.namespace,
      pools,
      registry,
      logger: log,
      singleWriter: true,
      ownerKinds: ['Service', 'ConfigMap', 'Ingress', ...(config.gateways ? (['Gateway'] as const) : [])],
    });
  const controller = new LoadBalancerController({
    kubeConfig,
    backend,
    ...(allocator ? { allocator } : {}),
    services: { loadBalancerClass: config.loadBalancerClass, handleUnclassed: config.handleUnclassed },
    configMaps: config.configMaps,
    ingress: config.ingress ? { ingressClassName: config.ingressClass } : false,
    gateways: config.gateways ? { controllerName: config.gatewayControllerName } : false,
    ...(config.leaderElection
      ? {
          leaderElection: {
            namespace: config.namespace,
            name: config.leaseName,
            leaseDurationMs: config.lease.durationMs,
            renewDeadlineMs: config.lease.renewDeadlineMs,
            retryPeriodMs: config.lease.retryPeriodMs,
            identity: config.podName ?? `${hostname()}_${randomBytes(4).toString('hex')}`,
          },
        }
      : {}),
    healthPort: config.port,
    healthHost: config.host,
    workers: config.workers,
    resyncPeriodMs: config.resyncSeconds * 1000,
    registry,
    logger: log,
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    controller.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: String(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  await controller.start();
  log.info(
    { port: controller.healthPort, pools: allocator?.allocator.pools.map((p) => p.name) ?? [] },
    'controller started',
  );
}

main(process.argv.slice(2)).catch((err: unknown) => {
  // A configuration error, or pools the IPAM found invalid once it could read them.
  const config = err instanceof ConfigError || (err as { code?: string }).code === 'INVALID_CONFIG';
  process.stderr.write(`reference-controller: ${config ? '' : 'fatal: '}${(err as Error).message ?? String(err)}\n`);
  process.exit(config ? 2 : 1);
});
