// A consumer that uses KLB as a backend author and an embedder do. release-dry-run.sh compiles
// it strictly without skipLibCheck under module nodenext (as CommonJS, then runs it), node16
// (as consumer.mts) and bundler.

import { F5Backend } from '@klb/backend-f5';
import { KeepalivedNginxBackend } from '@klb/backend-keepalived-nginx';
import { OctaviaBackend } from '@klb/backend-octavia';
import {
  addressIngress,
  type BackendCapabilities,
  type LoadBalancerBackend,
  LoadBalancerController,
  type LoadBalancerRef,
  type LoadBalancerSpec,
  type LoadBalancerStatus,
  TerminalError,
} from '@klb/core';
import { KubeIpam } from '@klb/ipam';
import { type ConformanceSubject, RecordingBackend, startControlPlane } from '@klb/testing';
import { KubeConfig } from '@kubernetes/client-node';

class ConsumerBackend implements LoadBalancerBackend {
  readonly name = 'consumer';
  readonly capabilities: BackendCapabilities = {
    protocols: ['TCP'],
    l7: false,
    tls: false,
    allocatesAddresses: false,
    targetKinds: ['node'],
    ipFamilies: ['IPv4'],
    sourceRanges: false,
    proxyProtocol: false,
  };
  async ensure(spec: LoadBalancerSpec): Promise<LoadBalancerStatus> {
    if (spec.listeners.some((l) => l.protocol !== 'TCP')) throw new TerminalError('TCP only');
    return { ingress: addressIngress(spec.addresses, spec.listeners) };
  }
  async remove(_ref: LoadBalancerRef): Promise<void> {}
  async list(): Promise<LoadBalancerRef[]> {
    return [];
  }
}

/** What an embedder writes: the user's own client-node KubeConfig goes straight into KLB. */
export function compose(kubeConfig: KubeConfig): LoadBalancerController {
  const allocator = new KubeIpam({ kubeConfig, namespace: 'klb-system', pools: [] });
  return new LoadBalancerController({ kubeConfig, backend: new ConsumerBackend(), allocator });
}

export const subject: ConformanceSubject = { backend: new RecordingBackend() };
const used = [F5Backend, KeepalivedNginxBackend, OctaviaBackend, startControlPlane, KubeConfig, compose];
console.log(`consumer: ${used.length} values`);
