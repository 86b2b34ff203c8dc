/** The kinds of Kubernetes object a load balancer is declared by. */
export type SourceKind = 'Service' | 'ConfigMap' | 'Ingress' | 'Gateway';

/**
 * Listener protocols. `HTTP`/`HTTPS` are L7 (routes, TLS termination); `TCP`/`UDP` are L4;
 * `TLS` is TLS passthrough: the connection goes to an upstream chosen by the client's SNI host
 * name, still encrypted.
 */
export type Protocol = 'TCP' | 'UDP' | 'HTTP' | 'HTTPS' | 'TLS';

/** IP families, as Kubernetes names them. */
export type IpFamily = 'IPv4' | 'IPv6';

/**
 * How traffic reaches the application: a node's address and the Service's nodePort, a pod's
 * address and target port (from EndpointSlices), or the Service's ClusterIP and port.
 */
export type TargetKind = 'node' | 'pod' | 'clusterIP';

/** Identifies a load balancer: the Kubernetes object that declares it. */
export interface LoadBalancerRef {
  /**
   * Stable id, `<kind>/<namespace>/<name>` with the kind in lower case
   * (`service/default/coffee`). Backends record it on what they create so `list()` can return it.
   */
  readonly id: string;
  /** Kind of the declaring object. */
  readonly kind: SourceKind;
  /** Namespace of the declaring object. */
  readonly namespace: string;
  /** Name of the declaring object. */
  readonly name: string;
  /** UID of the declaring object, when known (a re-created object has a new one). */
  readonly uid?: string;
}

/** One place traffic can be sent to. */
export interface Target {
  /** What kind of target this is. */
  readonly kind: TargetKind;
  /** IPv4 or IPv6 address (no zone, no brackets). */
  readonly address: string;
  /** TCP/UDP port on that address. */
  readonly port: number;
  /** False for a target that exists but should get no new traffic (not ready, terminating). */
  readonly ready: boolean;
  /** The node this target is on, when known. */
  readonly nodeName?: string;
}

/** An active health check of an upstream's targets. */
export interface HealthCheck {
  /** `tcp` connects; `http` sends a GET to `path` and expects a 2xx/3xx answer. */
  readonly type: 'tcp' | 'http';
  /** Port to check instead of the target's port (e.g. the Service's `healthCheckNodePort`). */
  readonly port?: number;
  /** HTTP path, for `type: 'http'`. */
  readonly path?: string;
  /** Seconds between checks. */
  readonly intervalSeconds: number;
  /** Seconds before a check counts as failed. */
  readonly timeoutSeconds: number;
  /** Consecutive failures before a target is taken out. */
  readonly unhealthyThreshold: number;
  /** Consecutive successes before a target is put back. */
  readonly healthyThreshold: number;
}

/** A named set of targets that listeners and routes send traffic to. */
export interface Upstream {
  /** Name, unique within the spec (`[a-z0-9-]+`), e.g. `tcp-80` or `coffee-svc-80`. */
  readonly name: string;
  /** Where traffic goes, in a stable order. */
  readonly targets: readonly Target[];
  /** Active health check, if any. */
  readonly healthCheck?: HealthCheck;
}

/** An L7 routing rule of an HTTP/HTTPS listener (from an Ingress rule or the original ConfigMap keys). */
export interface HttpRoute {
  /** Exact host name, or `*.example.com`; absent matches any host. */
  readonly host?: string;
  /** Path to match; absent matches every path. */
  readonly path?: string;
  /** How `path` matches (Ingress `pathType`; `ImplementationSpecific` is treated as `Prefix`). */
  readonly pathType: 'Prefix' | 'Exact';
  /** Name of the {@link Upstream} that serves the route. */
  readonly upstream: string;
}

/** A TLS passthrough rule: connections whose SNI host name matches go to an upstream. */
export interface SniRoute {
  /** Exact host name, or `*.example.com`; absent matches any host name (and none). */
  readonly host?: string;
  /** Name of the {@link Upstream} that serves the connections. */
  readonly upstream: string;
}

/** A TLS certificate for an HTTPS listener, resolved from a `kubernetes.io/tls` Secret. */
export interface TlsCertificate {
  /** The Secret it came from. */
  readonly secret: {
    /** The Secret's namespace. */
    readonly namespace: string;
    /** The Secret's name. */
    readonly name: string;
  };
  /** Host names the certificate is used for (empty: the listener's default certificate). */
  readonly hosts: readonly string[];
  /** PEM certificate chain (`tls.crt`). */
  readonly certificate: string;
  /** PEM private key (`tls.key`). Never log it. */
  readonly privateKey: string;
}

/** One port the load balancer accepts traffic on. */
export interface Listener {
  /** Name, unique within the spec (`[a-z0-9-]+`), e.g. `tcp-80`. */
  readonly name: string;
  /** The port on the load balancer's addresses. */
  readonly port: number;
  /** The protocol. */
  readonly protocol: Protocol;
  /** The upstream for L4 listeners, and the default upstream of L7 ones (may be absent for L7). */
  readonly upstream?: string;
  /** L7 routes, most specific first, for HTTP/HTTPS listeners. */
  readonly routes?: readonly HttpRoute[];
  /** Certificates for an HTTPS listener. */
  readonly tls?: readonly TlsCertificate[];
  /** For an HTTP listener: redirect to the HTTPS listener on this port instead of serving. */
  readonly redirectToHttpsPort?: number;
  /** SNI rules of a `TLS` (passthrough) listener, exact hosts before wildcards before the catch-all. */
  readonly sniRoutes?: readonly SniRoute[];
}

/**
 * HTTP proxy settings of a load balancer's HTTP and HTTPS listeners (from the `klb.io/proxy-*`
 * and `klb.io/client-max-header-size` annotations). A field that is absent keeps the backend's
 * default; a backend that cannot apply a field that is set says so in its status message.
 */
export interface HttpSettings {
  /** Largest request body a client may send, in bytes; `0` means no limit. Larger bodies get 413. */
  readonly maxBodyBytes?: number;
  /**
   * Longest request line or single request header field a client may send, in bytes; longer
   * ones get 400 (414 for the request line).
   */
  readonly maxHeaderBytes?: number;
  /** Seconds allowed to connect to a target; on HTTP listeners it takes the place of `timeouts.connectSeconds`. */
  readonly connectTimeoutSeconds?: number;
  /**
   * Seconds a target may stay silent while its response is read (between two reads, not the
   * whole response); on HTTP listeners it takes the place of `timeouts.idleSeconds`.
   */
  readonly readTimeoutSeconds?: number;
  /**
   * Seconds a target may take to accept more of the request (between two writes); on HTTP
   * listeners it takes the place of `timeouts.idleSeconds`.
   */
  readonly sendTimeoutSeconds?: number;
  /**
   * Seconds an upgraded connection (WebSocket, after `101 Switching Protocols`) may stay idle in
   * either direction; without it, upgraded connections have the read and send timeouts.
   */
  readonly upgradeTimeoutSeconds?: number;
  /**
   * `true` buffers request and response bodies (the usual proxy behaviour); `false` streams both
   * as they arrive (server-sent events, long polling, large uploads).
   */
  readonly buffering?: boolean;
}

/** Backend-neutral options that apply to the whole load balancer. */
export interface LoadBalancerOptions {
  /** Balancing algorithm; default `round-robin`. */
  readonly algorithm: 'round-robin' | 'least-connections' | 'source-ip-hash';
  /** Client IP affinity (Service `sessionAffinity: ClientIP`), with its timeout. */
  readonly sessionAffinity?: {
    /** How long a client sticks to its target after its last connection. */
    readonly timeoutSeconds: number;
  };
  /** Send the PROXY protocol header to targets. */
  readonly proxyProtocol: boolean;
  /** Client source CIDRs allowed to connect (`loadBalancerSourceRanges`); empty allows all. */
  readonly sourceRanges: readonly string[];
  /** Connection timeouts, in seconds. */
  readonly timeouts: {
    /** Time allowed to connect to a target. */
    readonly connectSeconds?: number;
    /** Idle time after which a client or target connection is closed. */
    readonly idleSeconds?: number;
  };
  /** HTTP proxy settings of the HTTP/HTTPS listeners; absent when none is set. */
  readonly http?: HttpSettings;
}

/** What each {@link HttpSettings} field is, in words, in the order of the interface. */
const HTTP_SETTING_WORDS: Readonly<Record<keyof HttpSettings, string>> = {
  maxBodyBytes: 'request body size',
  maxHeaderBytes: 'request header size',
  connectTimeoutSeconds: 'HTTP connect timeout',
  readTimeoutSeconds: 'read timeout',
  sendTimeoutSeconds: 'send timeout',
  upgradeTimeoutSeconds: 'upgraded connection timeout',
  buffering: 'buffering',
};

/**
 * The {@link HttpSettings} that are set, in words (`request body size, read timeout`), for a
 * backend's status message when it cannot apply them; undefined when none is set.
 */
export function describeHttpSettings(http: HttpSettings | undefined): string | undefined {
  const set = (Object.keys(HTTP_SETTING_WORDS) as (keyof HttpSettings)[]).filter((k) => http?.[k] !== undefined);
  return set.length ? set.map((k) => HTTP_SETTING_WORDS[k]).join(', ') : undefined;
}

/**
 * The desired state of one load balancer, free of Kubernetes types. Sources build it;
 * backends realise it. Two specs that are deep-equal describe the same state.
 */
export interface LoadBalancerSpec {
  /** The declaring object. */
  readonly ref: LoadBalancerRef;
  /**
   * The virtual IPs, allocated by KLB's IPAM; empty when the backend allocates its own
   * addresses ({@link BackendCapabilities.allocatesAddresses}).
   */
  readonly addresses: readonly string[];
  /** Addresses the user asked for (`spec.loadBalancerIP` or annotation), for backends that allocate their own. */
  readonly requestedAddresses: readonly string[];
  /** IP families the load balancer should serve, in order of preference. */
  readonly ipFamilies: readonly IpFamily[];
  /** The listeners, ordered by port then protocol. */
  readonly listeners: readonly Listener[];
  /** The upstreams the listeners refer to, ordered by name. */
  readonly upstreams: readonly Upstream[];
  /** Whole-load-balancer options. */
  readonly options: LoadBalancerOptions;
  /**
   * The declaring object's annotations under the `klb.io/` prefix, for backend-specific options
   * (documented by each backend). Backends validate what they read.
   */
  readonly annotations: Readonly<Record<string, string>>;
}

/** Per-port state a backend reports (Service `status.loadBalancer.ingress[].ports`). */
export interface PortStatus {
  /** The listener port. */
  readonly port: number;
  /** The listener protocol (L7 listeners report `TCP`). */
  readonly protocol: 'TCP' | 'UDP';
  /** Why this port is not working, if it is not. */
  readonly error?: string;
}

/**
 * How traffic reaches a load balancer's address (Service `status.loadBalancer.ingress[].ipMode`,
 * KEP-1860). `VIP`: the address is the Service's own, and kube-proxy may send in-cluster clients
 * straight to the endpoints. `Proxy`: clients must go through the load balancer (it proxies,
 * terminates TLS or adds the PROXY protocol), so kube-proxy does not short-circuit it.
 */
export type IpMode = 'VIP' | 'Proxy';

/** Where a load balancer can be reached, as the backend realised it. */
export interface LoadBalancerIngress {
  /** An IP address (the VIP, or the floating IP in front of it). */
  readonly ip?: string;
  /** How clients reach `ip`; default `VIP`. */
  readonly ipMode?: IpMode;
  /** A host name, for backends that publish DNS names. */
  readonly hostname?: string;
  /** Per-port state. */
  readonly ports?: readonly PortStatus[];
}

/** The port state of `listeners` as a status reports it: each port, L7 listeners as `TCP`. */
export function listenerPorts(
  listeners: readonly { readonly port: number; readonly protocol: Protocol }[],
): PortStatus[] {
  return listeners.map((l) => ({ port: l.port, protocol: l.protocol === 'UDP' ? 'UDP' : 'TCP' }));
}

/** One ingress entry per address, each with the {@link listenerPorts} of `listeners` (and `ipMode`, when given). */
export function addressIngress(
  addresses: readonly string[],
  listeners: readonly { readonly port: number; readonly protocol: Protocol }[],
  ipMode?: IpMode,
): LoadBalancerIngress[] {
  const ports = listenerPorts(listeners);
  return addresses.map((ip) => ({ ip, ...(ipMode ? { ipMode } : {}), ports }));
}

/**
 * Why a load balancer the backend took does not serve: its data plane refused or failed what
 * was published (e.g. every node's nginx rejected the config).
 */
export interface LoadBalancerProblem {
  /** A CamelCase reason, used as the condition and event reason, e.g. `RejectedByNodes`. */
  readonly reason: string;
  /** Why, for people (which nodes, the data plane's own words). */
  readonly message: string;
}

/** What `ensure` returns: the realised addresses, written back to the declaring object. */
export interface LoadBalancerStatus {
  /** Reachable addresses, first the primary. */
  readonly ingress: readonly LoadBalancerIngress[];
  /** A human-readable note for the object's status/events (e.g. `2/3 members healthy`). */
  readonly message?: string;
  /**
   * Set when the spec was taken but the data plane does not serve it. The engine reports it on
   * the object as a failure (a `False` condition with this reason, a Warning event,
   * `data.status: ERROR : …`) and keeps the load balancer; a backend with
   * {@link LoadBalancerBackend.watch} notifies when it changes, so the object follows.
   */
  readonly problem?: LoadBalancerProblem;
}

/** Builds the {@link LoadBalancerRef.id} of an object. */
export function loadBalancerId(kind: SourceKind, namespace: string, name: string): string {
  return `${kind.toLowerCase()}/${namespace}/${name}`;
}

/** Parses a {@link LoadBalancerRef.id} back into a ref (without uid); undefined if it is not one. */
export function parseLoadBalancerId(id: string): LoadBalancerRef | undefined {
  const match = /^(service|configmap|ingress|gateway)\/([a-z0-9][a-z0-9.-]{0,252})\/([a-z0-9][a-z0-9.-]{0,252})$/.exec(
    id,
  );
  if (!match) return undefined;
  const kinds = { service: 'Service', configmap: 'ConfigMap', ingress: 'Ingress', gateway: 'Gateway' } as const;
  const [, kind, namespace, name] = match as unknown as [string, keyof typeof kinds, string, string];
  return { id, kind: kinds[kind], namespace, name };
}
