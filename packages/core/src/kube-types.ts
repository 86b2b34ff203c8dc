import type { KubeObject } from './kube-client.js';

/** The Service fields KLB reads (plain JSON, as the API serves it). */
export interface ServiceObject extends KubeObject {
  /** Service spec. */
  spec?: {
    /** `LoadBalancer`, `NodePort`, `ClusterIP`, `ExternalName`. */
    type?: string;
    /** Owning load balancer implementation. */
    loadBalancerClass?: string;
    /** Deprecated single requested address. */
    loadBalancerIP?: string;
    /** Allowed client CIDRs. */
    loadBalancerSourceRanges?: string[];
    /** `Cluster` or `Local`. */
    externalTrafficPolicy?: string;
    /** Node port answering node-local health checks, for `Local`. */
    healthCheckNodePort?: number;
    /** `None` or `ClientIP`. */
    sessionAffinity?: string;
    /** Affinity settings. */
    sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
    /** Ports. */
    ports?: Array<{ name?: string; protocol?: string; port: number; nodePort?: number; targetPort?: number | string }>;
    /** Cluster IPs. */
    clusterIP?: string;
    /** Cluster IPs, one per family. */
    clusterIPs?: string[];
    /** Families in order. */
    ipFamilies?: string[];
    /** `SingleStack`, `PreferDualStack`, `RequireDualStack`. */
    ipFamilyPolicy?: string;
  };
  /** Service status. */
  status?: {
    /** Load balancer status. */
    loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string; ipMode?: string; ports?: unknown[] }> };
    /** Conditions. */
    conditions?: Array<{
      type: string;
      status: string;
      reason?: string;
      message?: string;
      lastTransitionTime?: string;
      observedGeneration?: number;
    }>;
  };
}

/** The Node fields KLB reads. */
export interface NodeObject extends KubeObject {
  /** Node spec. */
  spec?: { unschedulable?: boolean };
  /** Node status. */
  status?: {
    /** Conditions, of which `Ready` matters. */
    conditions?: Array<{ type: string; status: string }>;
    /** Addresses by type (`InternalIP`, `ExternalIP`, `Hostname`). */
    addresses?: Array<{ type: string; address: string }>;
  };
}

/** The EndpointSlice fields KLB reads. */
export interface EndpointSliceObject extends KubeObject {
  /** `IPv4`, `IPv6` or `FQDN`. */
  addressType?: string;
  /** Endpoints. */
  endpoints?: Array<{
    addresses: string[];
    conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
    nodeName?: string;
  }>;
  /** Ports. */
  ports?: Array<{ name?: string; port?: number; protocol?: string }>;
}

/** The ConfigMap fields KLB reads. */
export interface ConfigMapObject extends KubeObject {
  /** Data. */
  data?: Record<string, string>;
}

/** The Secret fields KLB reads. */
export interface SecretObject extends KubeObject {
  /** Type, e.g. `kubernetes.io/tls`. */
  type?: string;
  /** Base64 data. */
  data?: Record<string, string>;
}

/** The Ingress fields KLB reads. */
export interface IngressObject extends KubeObject {
  /** Ingress spec. */
  spec?: {
    /** Class. */
    ingressClassName?: string;
    /** Default backend. */
    defaultBackend?: IngressBackend;
    /** TLS. */
    tls?: Array<{ hosts?: string[]; secretName?: string }>;
    /** Rules. */
    rules?: Array<{
      host?: string;
      http?: { paths: Array<{ path?: string; pathType?: string; backend: IngressBackend }> };
    }>;
  };
  /** Ingress status. */
  status?: { loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string; ports?: unknown[] }> } };
}

/** An Ingress backend reference. */
export interface IngressBackend {
  /** The Service and port. */
  service?: { name: string; port?: { number?: number; name?: string } };
}
