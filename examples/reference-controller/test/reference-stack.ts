// What the end-to-end suites run as users do: a real control plane with KLB's CRDs, one node
// (127.0.0.1), a node daemon with real nginx, and the reference controller as its own process
// (keepalived-nginx backend, pools from a file, resync an hour away so that only watches carry
// changes), all stopped by stop().
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Daemon, runDaemon } from '@klb/backend-keepalived-nginx';
import { KubeClient, type KubeObject } from '@klb/core';
import {
  type ControlPlane,
  createNode,
  eventually,
  freePort,
  installGatewayApiCrds,
  startControlPlane,
} from '@klb/testing';
import { renderKustomization } from './kustomize.js';

const root = join(import.meta.dirname, '../../..');

/** A running stack; see {@link startReferenceStack}. */
export interface ReferenceStack {
  readonly plane: ControlPlane;
  readonly client: KubeClient;
  /** A temporary directory, removed by stop(). */
  readonly dir: string;
  /** The controller's output so far (for failure messages). */
  output(): string;
  /** The controller process now running, if any. */
  controller(): ChildProcess | undefined;
  /** Starts the controller process (again, after killController()). */
  startController(): void;
  /** Kills the controller at once (SIGKILL: no clean-up) and waits until it is gone. */
  killController(): Promise<void>;
  /** Stops the controller (SIGTERM), the daemon and the control plane; removes the directory. */
  stop(): Promise<void>;
}

/**
 * Starts the stack with the pool `<block>.10-<block>.60` and the namespaces given (besides
 * `klb-system`); with `gatewayApi`, the Gateway API CRDs are installed before the controller starts.
 */
export async function startReferenceStack(options: {
  readonly name: string;
  readonly block: string;
  readonly namespaces: readonly string[];
  readonly gatewayApi?: boolean;
}): Promise<ReferenceStack> {
  const plane = await startControlPlane();
  const client = new KubeClient(plane.kubeConfig);
  const dir = await mkdtemp(join(tmpdir(), `klb-${options.name}-`));
  for (const crd of renderKustomization(join(root, 'deploy/base')).filter(
    (o) => o.kind === 'CustomResourceDefinition',
  )) {
    await client.create('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd as KubeObject);
  }
  if (options.gatewayApi) await installGatewayApiCrds(plane.kubeConfig);
  for (const name of ['klb-system', ...options.namespaces]) {
    await client.create('/api/v1/namespaces', { metadata: { name } });
  }
  await createNode(client, 'node-1', '127.0.0.1');
  const pools = join(dir, 'pools.yaml');
  await writeFile(pools, `pools:\n  - name: default\n    addresses: [${options.block}.10-${options.block}.60]\n`);
  await eventually('the AddressClaim CRD served', async () => {
    await client.list('/apis/ipam.klb.io/v1alpha1/namespaces/klb-system/addressclaims');
    return true;
  });
  const daemon: Daemon = await runDaemon({
    kubeConfig: plane.kubeConfig,
    namespace: 'klb-system',
    nodeName: 'node-1',
    stateDir: join(dir, 'daemon'),
    keepalived: false,
    nonlocalBind: false,
    nginx: { workerProcesses: 1 },
    health: { host: '127.0.0.1', port: 0 },
    minReloadIntervalMs: 100,
    reportIntervalMs: 60_000,
  });
  const args = [
    '--conditions=klb-source',
    '--import',
    'tsx',
    join(root, 'examples/reference-controller/src/main.ts'),
    '--backend=keepalived-nginx',
    `--kubeconfig=${plane.writeKubeConfig()}`,
    `--pools-file=${pools}`,
    '--disable-leader-election',
    '--resync-seconds=3600',
    `--port=${await freePort()}`,
    '--host=127.0.0.1',
  ];
  let output = '';
  let child: ChildProcess | undefined;
  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  const end = async (signal: NodeJS.Signals) => {
    if (!running()) return;
    const exited = new Promise((resolve) => child?.once('exit', resolve));
    child?.kill(signal);
    await exited;
  };
  const startController = () => {
    child = spawn(process.execPath, args, {
      env: { ...process.env, POD_NAMESPACE: 'klb-system' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d) => (output += d));
    child.stderr?.on('data', (d) => (output += d));
  };
  startController();
  return {
    plane,
    client,
    dir,
    output: () => output,
    controller: () => child,
    startController,
    killController: () => end('SIGKILL'),
    stop: async () => {
      await end('SIGTERM');
      await daemon.stop();
      client.close();
      await plane.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
