import type { KubeObject } from './kube-client.js';
import type { ConditionJson } from './kube-types.js';

/** A label selector (`metav1.LabelSelector`). */
export interface LabelSelectorJson {
  /** Labels that must be equal. */
  matchLabels?: Record<string, string>;
  /** Set-based requirements. */
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** A GatewayClass (gateway.networking.k8s.io/v1): which controller serves Gateways of the class. */
export interface GatewayClassObject extends KubeObject {
  /** The spec fields KLB reads. */
  spec?: {
    /** The controller that serves the class, e.g. `klb.io/gateway-controller`. */
    controllerName?: string;
  };
  /** Status KLB writes. */
  status?: { conditions?: ConditionJson[] };
}

/** A reference to a Secret (a listener's certificate) or another object. */
export interface ObjectReferenceJson {
  /** API group; `''` (core) by default. */
  group?: string;
  /** Kind; `Secret` for certificate references, `Service` for backends by default. */
  kind?: string;
  /** Name. */
  name: string;
  /** Namespace; the referring object's by default. */
  namespace?: string;
}

/** One listener of a Gateway. */
export interface GatewayListenerJson {
  /** Unique name within the Gateway. */
  name: string;
  /** Host name (may start with `*.`); absent: any. */
  hostname?: string;
  /** Port. */
  port: number;
  /** `HTTP`, `HTTPS`, `TLS`, `TCP` or `UDP`. */
  protocol: string;
  /** TLS settings for HTTPS and TLS listeners. */
  tls?: { mode?: string; certificateRefs?: ObjectReferenceJson[] };
  /** Which Routes may attach. */
  allowedRoutes?: {
    /** Namespaces whose Routes may attach: `Same` (default), `All`, or `Selector`. */
    namespaces?: { from?: string; selector?: LabelSelectorJson };
    /** Route kinds that may attach; by default those of the protocol. */
    kinds?: { group?: string; kind: string }[];
  };
}

/** A listener's status. */
export interface ListenerStatusJson {
  /** The listener's name. */
  name: string;
  /** Route kinds that may attach. */
  supportedKinds: { group?: string; kind: string }[];
  /** How many Routes are attached. */
  attachedRoutes: number;
  /** Accepted, Programmed, ResolvedRefs, Conflicted. */
  conditions: ConditionJson[];
}

/** A Gateway (gateway.networking.k8s.io/v1): a load balancer with listeners that Routes attach to. */
export interface GatewayObject extends KubeObject {
  /** The spec fields KLB reads. */
  spec?: {
    /** The GatewayClass. */
    gatewayClassName?: string;
    /** Listeners. */
    listeners?: GatewayListenerJson[];
    /** Requested addresses. */
    addresses?: { type?: string; value: string }[];
  };
  /** Status KLB writes. */
  status?: {
    /** Addresses the Gateway is served at. */
    addresses?: { type?: string; value: string }[];
    /** Accepted, Programmed. */
    conditions?: ConditionJson[];
    /** Per listener. */
    listeners?: ListenerStatusJson[];
  };
}

/** A Route's reference to its parent Gateway (or a listener of it). */
export interface ParentReferenceJson {
  /** `gateway.networking.k8s.io` by default. */
  group?: string;
  /** `Gateway` by default. */
  kind?: string;
  /** The Gateway's namespace; the Route's by default. */
  namespace?: string;
  /** The Gateway's name. */
  name: string;
  /** A listener name. */
  sectionName?: string;
  /** A listener port. */
  port?: number;
}

/** A Route's reference to a backend (a Service port). */
export interface BackendRefJson extends ObjectReferenceJson {
  /** The Service port. */
  port?: number;
  /** Relative weight; 1 by default, 0 sends nothing. */
  weight?: number;
}

/** An HTTPRoute match. */
export interface HttpRouteMatchJson {
  /** Path match; `PathPrefix /` by default. */
  path?: { type?: string; value?: string };
  /** Header matches. */
  headers?: unknown[];
  /** Query parameter matches. */
  queryParams?: unknown[];
  /** Method match. */
  method?: string;
}

/** A rule of an HTTPRoute, TLSRoute, TCPRoute or UDPRoute. */
export interface RouteRuleJson {
  /** HTTPRoute: what requests the rule matches. */
  matches?: HttpRouteMatchJson[];
  /** HTTPRoute: filters applied. */
  filters?: { type: string }[];
  /** Where traffic goes. */
  backendRefs?: BackendRefJson[];
  /** HTTPRoute: request timeouts. */
  timeouts?: unknown;
}

/** A Route's status for one parent. */
export interface RouteParentStatusJson {
  /** The parent, as the Route names it. */
  parentRef: ParentReferenceJson;
  /** The controller that wrote the entry. */
  controllerName: string;
  /** Accepted, ResolvedRefs. */
  conditions: ConditionJson[];
}

/** An HTTPRoute, TLSRoute, TCPRoute or UDPRoute (gateway.networking.k8s.io/v1). */
export interface RouteObject extends KubeObject {
  /** The spec fields KLB reads. */
  spec?: {
    /** Gateways (or listeners) it attaches to. */
    parentRefs?: ParentReferenceJson[];
    /** HTTPRoute and TLSRoute: host names. */
    hostnames?: string[];
    /** Rules. */
    rules?: RouteRuleJson[];
  };
  /** Status, one entry per parent and controller. */
  status?: { parents?: RouteParentStatusJson[] };
}

/** A ReferenceGrant (gateway.networking.k8s.io/v1): lets objects of other namespaces refer to this one's. */
export interface ReferenceGrantObject extends KubeObject {
  /** Who may refer to what. */
  spec?: {
    /** Referring kinds and their namespaces. */
    from?: { group: string; kind: string; namespace: string }[];
    /** Kinds (and optionally a name) that may be referred to. */
    to?: { group: string; kind: string; name?: string }[];
  };
}
