import { readFileSync } from 'node:fs';
import {
  ApiException,
  ApiextensionsV1Api,
  type KubeConfig,
  loadYaml,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { parseAddress } from './ip.js';
import type { AddressHolder, AllocationOwner, PortSpec } from './types.js';

/** API group of the {@link AddressClaim} records. */
export const ADDRESS_CLAIM_GROUP = 'ipam.klb.io';
/** API version of the {@link AddressClaim} records. */
export const ADDRESS_CLAIM_VERSION = 'v1alpha1';
/** Resource (plural) name of the {@link AddressClaim} records. */
export const ADDRESS_CLAIM_PLURAL = 'addressclaims';
/** Label on every claim: the pool the address came from. */
export const POOL_LABEL = 'ipam.klb.io/pool';

/**
 * Prefix of the per-holder label on claims: `holder.ipam.klb.io/<uid>`, so the claims of one
 * owner can be listed with a label selector.
 */
export const HOLDER_LABEL_PREFIX = 'holder.ipam.klb.io/';

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** The holder label key of an owner uid, or undefined when the uid cannot be a label name. */
export function holderLabel(uid: string): string | undefined {
  return LABEL_NAME.test(uid) ? `${HOLDER_LABEL_PREFIX}${uid}` : undefined;
}

/** The persisted record of one allocated address (custom resource `AddressClaim`). */
export interface AddressClaim {
  /** `ipam.klb.io/v1alpha1`. */
  readonly apiVersion: string;
  /** `AddressClaim`. */
  readonly kind: string;
  /** Standard object metadata; the name is {@link addressClaimName} of the address. */
  readonly metadata: {
    /** Derived from the address. */
    readonly name: string;
    /** Where claims live (the IPAM's namespace). */
    readonly namespace?: string;
    /** For optimistic concurrency. */
    readonly resourceVersion?: string;
    /** Labels (the pool). */
    readonly labels?: Record<string, string>;
    /** When the address was first claimed. */
    readonly creationTimestamp?: string;
  };
  /** The claim. */
  readonly spec: {
    /** Canonical address text. */
    readonly address: string;
    /** Its family. */
    readonly family: 'IPv4' | 'IPv6';
    /** Pool it was allocated from. */
    readonly pool?: string;
    /** Owners holding it (several only when sharing). */
    readonly holders: ReadonlyArray<{
      /** Owner kind. */
      readonly kind: AllocationOwner['kind'];
      /** Owner namespace. */
      readonly namespace: string;
      /** Owner name. */
      readonly name: string;
      /** Owner uid. */
      readonly uid: string;
      /** Sharing key, if the owner allows sharing. */
      readonly sharingKey?: string;
      /** Ports the owner serves on the address. */
      readonly ports?: readonly PortSpec[];
    }>;
  };
}

/**
 * The claim object name of an address: `ipv4-10-0-0-5`, or `ipv6-` and the 32 hex digits of
 * the address in groups of four (`ipv6-fd00-0000-...-0001`), so every spelling of one
 * address maps to one name. Throws on an invalid address.
 */
export function addressClaimName(address: string): string {
  const parsed = parseAddress(address);
  if (!parsed) throw new Error(`not an IP address: ${address}`);
  if (parsed.family === 'IPv4') {
    const n = Number(parsed.value);
    return `ipv4-${n >>> 24}-${(n >>> 16) & 255}-${(n >>> 8) & 255}-${n & 255}`;
  }
  const hex = parsed.value.toString(16).padStart(32, '0');
  return `ipv6-${hex.match(/.{4}/g)?.join('-')}`;
}

/** Builds a claim body. */
export function buildAddressClaim(
  address: string,
  family: 'IPv4' | 'IPv6',
  pool: string,
  holders: readonly AddressHolder[],
  resourceVersion?: string,
): AddressClaim {
  return {
    apiVersion: `${ADDRESS_CLAIM_GROUP}/${ADDRESS_CLAIM_VERSION}`,
    kind: 'AddressClaim',
    metadata: {
      name: addressClaimName(address),
      labels: {
        'app.kubernetes.io/managed-by': 'klb-ipam',
        ...(pool ? { [POOL_LABEL]: pool } : {}),
        ...Object.fromEntries(
          holders.flatMap((h) => {
            const key = holderLabel(h.owner.uid);
            return key ? [[key, 'true']] : [];
          }),
        ),
      },
      ...(resourceVersion === undefined ? {} : { resourceVersion }),
    },
    spec: {
      address,
      family,
      ...(pool ? { pool } : {}),
      holders: holders.map((h) => ({
        kind: h.owner.kind,
        namespace: h.owner.namespace,
        name: h.owner.name,
        uid: h.owner.uid,
        ...(h.sharingKey === undefined ? {} : { sharingKey: h.sharingKey }),
        ...(h.ports && h.ports.length > 0
          ? { ports: h.ports.map((p) => ({ protocol: p.protocol, port: p.port })) }
          : {}),
      })),
    },
  };
}

/** The holders recorded in a claim. */
export function claimHolders(claim: AddressClaim): AddressHolder[] {
  return claim.spec.holders.map((h) => ({
    owner: { kind: h.kind, namespace: h.namespace, name: h.name, uid: h.uid },
    ...(h.sharingKey === undefined ? {} : { sharingKey: h.sharingKey }),
    ports: h.ports ?? [],
  }));
}

/** The AddressClaim CustomResourceDefinition shipped in this package's `crds/` directory. */
export function addressClaimCrd(): V1CustomResourceDefinition {
  const file = new URL('../crds/addressclaims.ipam.klb.io.yaml', import.meta.url);
  // loadYaml maps the YAML's field names (x-kubernetes-validations, enum) to the client's model.
  return loadYaml<V1CustomResourceDefinition>(readFileSync(file, 'utf8'));
}

/**
 * Creates (or updates) the AddressClaim CRD and waits until the apiserver reports it
 * Established. Needs rights on `customresourcedefinitions`; usually done at install time.
 */
export async function installAddressClaimCrd(kubeConfig: KubeConfig, timeoutMs = 30_000): Promise<void> {
  const api = kubeConfig.makeApiClient(ApiextensionsV1Api);
  const crd = addressClaimCrd();
  const name = crd.metadata?.name as string;
  try {
    await api.createCustomResourceDefinition({ body: crd });
  } catch (err) {
    if (!(err instanceof ApiException) || err.code !== 409) throw err;
    const current = await api.readCustomResourceDefinition({ name });
    await api.replaceCustomResourceDefinition({
      name,
      body: { ...crd, metadata: { ...crd.metadata, resourceVersion: current.metadata?.resourceVersion ?? '' } },
    });
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await api.readCustomResourceDefinition({ name });
    if (got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return;
    if (Date.now() > deadline) throw new Error(`CRD ${name} not Established after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
