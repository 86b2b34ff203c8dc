import type { KubeObject } from './kube-client.js';
import type { ConditionJson } from './kube-types.js';

/** A label selector (`metav1.LabelSelector`). */
export interface LabelSelectorJson {
  /** Labels that must be equal. */
  matchLabels?: Record<string, string>;
  /** Set-based requirements. */
  matchExpressions?: {
    /** The label key. */
    key: string;
    /** `In`, `NotIn`, `Exists` or `DoesNotExist`. */
    operator: string;
    /** The values of `In` and `NotIn`. */
    values?: string[];
  }[];
}

/** A GatewayClass (gateway.networking.k8s.io/v1): which controller serves Gateways of the class. */
export interface GatewayClassObject extends KubeObject {
  /** The spec fields KLB reads. */
  spec?: {
    /** The controller that serves the class, e.g. `klb.io/gateway-controller`. */
    controllerName?: string;
  };
  /** Status KLB writes. */
  status?: {
    /** `Accepted`. */
    conditions?: ConditionJson[];
  };
}

/** A Route kind, with its API group. */
export interface RouteGroupKindJson {
  /** `gateway.networking.k8s.io` by default. */
  group?: string;
  /** E.g. `HTTPRoute`. */
  kind: string;
}

/** A Gateway address. */
export interface GatewayAddressJson {
  /** `IPAddress` by default. */
  type?: string;
  /** The address. */
  value: string;
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
  tls?: {
    /** `Terminate` (default) or `Passthrough`. */
    mode?: string;
    /** The `kubernetes.io/tls` Secrets of an HTTPS listener. */
    certificateRefs?: ObjectReferenceJson[];
  };
  /** Which Routes may attach. */
  allowedRoutes?: {
    /** Namespaces whose Routes may attach: `Same` (default), `All`, or `Selector`. */
    namespaces?: {
      /** `Same` (default), `All` or `Selector`. */
      from?: string;
      /** With `Selector`: the labels of the namespaces whose Routes may attach. */
      selector?: LabelSelectorJson;
    };
    /** Route kinds that may attach; by default those of the protocol. */
    kinds?: RouteGroupKindJson[];
  };
}

/** A listener's status. */
export interface ListenerStatusJson {
  /** The listener's name. */
  name: string;
  /** Route kinds that may attach. */
  supportedKinds: RouteGroupKindJson[];
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
    addresses?: GatewayAddressJson[];
  };
  /** Status KLB writes. */
  status?: {
    /** Addresses the Gateway is served at. */
    addresses?: GatewayAddressJson[];
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
  path?: {
    /** `PathPrefix` (default), `Exact` or `RegularExpression`. */
    type?: string;
    /** The path; `/` by default. */
    value?: string;
  };
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
  filters?: {
    /** The filter type, e.g. `RequestRedirect`. */
    type: string;
  }[];
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
  status?: {
    /** One entry per parent and controller. */
    parents?: RouteParentStatusJson[];
  };
}

/** A ReferenceGrant (gateway.networking.k8s.io/v1): lets objects of other namespaces refer to this one's. */
export interface ReferenceGrantObject extends KubeObject {
  /** Who may refer to what. */
  spec?: {
    /** Referring kinds and their namespaces. */
    from?: {
      /** The referring kind's API group. */
      group: string;
      /** The referring kind, e.g. `HTTPRoute`. */
      kind: string;
      /** The referring objects' namespace. */
      namespace: string;
    }[];
    /** Kinds (and optionally a name) that may be referred to. */
    to?: {
      /** The API group (`''` for Secrets and Services). */
      group: string;
      /** The kind, e.g. `Service`. */
      kind: string;
      /** Only this object; all of the kind when absent. */
      name?: string;
    }[];
  };
}
