import type { KubeObject } from './kube-client.js';

/** A Service port. */
export interface ServicePortJson {
  /** Port name (unique within the Service). */
  name?: string;
  /** `TCP`, `UDP` or `SCTP`. */
  protocol?: string;
  /** The Service port. */
  port: number;
  /** The node port, for NodePort and LoadBalancer Services. */
  nodePort?: number;
  /** The pods' port, by number or name. */
  targetPort?: number | string;
}

/** One entry of `status.loadBalancer.ingress`. */
export interface LoadBalancerIngressJson {
  /** IP address. */
  ip?: string;
  /** Host name. */
  hostname?: string;
  /** `VIP` or `Proxy`. */
  ipMode?: string;
  /** Per-port status. */
  ports?: unknown[];
}

/** A status condition (`metav1.Condition`). */
export interface ConditionJson {
  /** Condition type. */
  type: string;
  /** `True`, `False` or `Unknown`. */
  status: string;
  /** CamelCase reason. */
  reason?: string;
  /** Human-readable message. */
  message?: string;
  /** When `status` last changed (RFC 3339). */
  lastTransitionTime?: string;
  /** The generation the condition was set for. */
  observedGeneration?: number;
}

/** The Service spec fields KLB reads. */
export interface ServiceSpecJson {
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
  /** Affinity settings: `clientIP.timeoutSeconds`. */
  sessionAffinityConfig?: {
    /** Client IP affinity. */
    clientIP?: {
      /** How long a client sticks. */
      timeoutSeconds?: number;
    };
  };
  /** Ports. */
  ports?: ServicePortJson[];
  /** Cluster IP. */
  clusterIP?: string;
  /** Cluster IPs, one per family. */
  clusterIPs?: string[];
  /** Families in order. */
  ipFamilies?: string[];
  /** `SingleStack`, `PreferDualStack`, `RequireDualStack`. */
  ipFamilyPolicy?: string;
}

/** A Service (plain JSON, as the API serves it). */
export interface ServiceObject extends KubeObject {
  /** Spec. */
  spec?: ServiceSpecJson;
  /** Status. */
  status?: {
    /** Load balancer status: `ingress` entries. */
    loadBalancer?: {
      /** Where it is reachable. */
      ingress?: LoadBalancerIngressJson[];
    };
    /** Conditions. */
    conditions?: ConditionJson[];
  };
}

/** A node condition or address: `type` and a value. */
export interface NodeConditionJson {
  /** Condition type, e.g. `Ready`. */
  type: string;
  /** `True`, `False` or `Unknown`. */
  status: string;
}

/** A node address. */
export interface NodeAddressJson {
  /** `InternalIP`, `ExternalIP`, `Hostname`. */
  type: string;
  /** The address. */
  address: string;
}

/** A Node (the fields KLB reads). */
export interface NodeObject extends KubeObject {
  /** Spec: `unschedulable`. */
  spec?: {
    /** Cordoned. */
    unschedulable?: boolean;
  };
  /** Status. */
  status?: {
    /** Conditions, of which `Ready` matters. */
    conditions?: NodeConditionJson[];
    /** Addresses by type. */
    addresses?: NodeAddressJson[];
  };
}

/** One endpoint of an EndpointSlice. */
export interface EndpointJson {
  /** Pod addresses. */
  addresses: string[];
  /** Readiness: `ready`, `serving`, `terminating`. */
  conditions?: {
    /** Ready to receive traffic. */
    ready?: boolean;
    /** Serving (also while terminating). */
    serving?: boolean;
    /** Being shut down. */
    terminating?: boolean;
  };
  /** The node the pod runs on. */
  nodeName?: string;
}

/** A port of an EndpointSlice. */
export interface EndpointPortJson {
  /** Name, matching the Service port's name. */
  name?: string;
  /** Port number on the endpoints. */
  port?: number;
  /** Protocol. */
  protocol?: string;
}

/** An EndpointSlice (the fields KLB reads). */
export interface EndpointSliceObject extends KubeObject {
  /** `IPv4`, `IPv6` or `FQDN`. */
  addressType?: string;
  /** Endpoints. */
  endpoints?: EndpointJson[];
  /** Ports. */
  ports?: EndpointPortJson[];
}

/** A ConfigMap. */
export interface ConfigMapObject extends KubeObject {
  /** Data. */
  data?: Record<string, string>;
}

/** A Secret. */
export interface SecretObject extends KubeObject {
  /** Type, e.g. `kubernetes.io/tls`. */
  type?: string;
  /** Base64 data. */
  data?: Record<string, string>;
}

/** An Ingress backend reference: a Service and its port (by number or name). */
export interface IngressBackend {
  /** The Service: `name` and `port.number` or `port.name`. */
  service?: {
    /** Service name (same namespace). */
    name: string;
    /** The Service port. */
    port?: {
      /** By number. */
      number?: number;
      /** By name. */
      name?: string;
    };
  };
}

/** An Ingress path rule. */
export interface IngressPathJson {
  /** The path. */
  path?: string;
  /** `Prefix`, `Exact` or `ImplementationSpecific`. */
  pathType?: string;
  /** Where it goes. */
  backend: IngressBackend;
}

/** An Ingress rule. */
export interface IngressRuleJson {
  /** Host name (or `*.domain`). */
  host?: string;
  /** HTTP paths: `paths`. */
  http?: {
    /** Path rules. */
    paths: IngressPathJson[];
  };
}

/** An Ingress TLS entry. */
export interface IngressTlsJson {
  /** Host names the certificate is for. */
  hosts?: string[];
  /** The `kubernetes.io/tls` Secret. */
  secretName?: string;
}

/** An Ingress (networking.k8s.io/v1; the fields KLB reads). */
export interface IngressObject extends KubeObject {
  /** Spec. */
  spec?: {
    /** Class. */
    ingressClassName?: string;
    /** Default backend. */
    defaultBackend?: IngressBackend;
    /** TLS. */
    tls?: IngressTlsJson[];
    /** Rules. */
    rules?: IngressRuleJson[];
  };
  /** Status: `loadBalancer.ingress`. */
  status?: {
    /** Load balancer status. */
    loadBalancer?: {
      /** Where it is reachable. */
      ingress?: LoadBalancerIngressJson[];
    };
  };
}
