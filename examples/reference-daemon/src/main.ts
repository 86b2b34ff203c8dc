// The KLB reference node daemon: runDaemon() from @klb/backend-keepalived-nginx, configured by
// flags and environment (see --help). Exit status: 0 after SIGTERM/SIGINT, 2 on bad configuration,
// 1 when the daemon cannot start.
import { InvalidRenderOptionsError, runDaemon } from '@klb/backend-keepalived-nginx';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { ConfigError, helpText, parseConfig } from './options.js';

async function main(): Promise<number> {
  const config = parseConfig(process.argv.slice(2), process.env);
  if (config.help) {
    process.stdout.write(helpText());
    return 0;
  }
  const log = pino({ level: config.logLevel, redact: ['*.privateKey', '*.token'] });
  const kubeConfig = new KubeConfig();
  try {
    if (config.kubeconfig) kubeConfig.loadFromFile(config.kubeconfig);
    else kubeConfig.loadFromCluster();
    if (!kubeConfig.getCurrentCluster()) throw new Error('no current cluster (not in a pod? set --kubeconfig)');
  } catch (err) {
    throw new ConfigError(`kubeconfig: ${(err as Error).message}`);
  }
  // Until the apiserver answers, the daemon waits (healthy, not ready); a stop meanwhile ends it.
  const stopRequested = new Promise<void>((resolve) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => resolve());
  });
  const starting = runDaemon({
    kubeConfig,
    namespace: config.namespace,
    nodeName: config.nodeName,
    stateDir: config.stateDir,
    keepalived: config.keepalived
      ? {
          interface: config.interface,
          priority: config.priority,
          advertIntSeconds: config.advertInt,
          ...(config.unicastPeers.length > 0 ? { unicastPeers: config.unicastPeers } : {}),
          ...(config.nopreempt ? { nopreempt: true } : {}),
          extraArgs: config.keepalivedArgs,
        }
      : false,
    ...(config.virtualRouterId === undefined ? {} : { virtualRouterIds: { default: config.virtualRouterId } }),
    compatConfigMap: config.compatConfigMap,
    minReloadIntervalMs: config.minReloadIntervalMs,
    health: config.healthPort === 0 ? false : { port: config.healthPort },
    logger: log,
  });
  const daemon = await Promise.race([starting, stopRequested.then(() => undefined)]);
  if (!daemon) {
    log.info('stopped while waiting for the apiserver');
    return 0;
  }
  await stopRequested;
  log.info('shutting down');
  await daemon.stop();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const bad = err instanceof ConfigError || err instanceof InvalidRenderOptionsError;
    process.stderr.write(`klb-daemon: ${(err as Error).message}\n${bad ? 'Run with --help for the options.\n' : ''}`);
    process.exit(bad ? 2 : 1);
  },
);
