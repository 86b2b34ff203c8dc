import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { IpamError } from './errors.js';

/**
 * Lists every object at `path` (e.g. `/api/v1/services`) in pages of `pageSize`, following
 * `metadata.continue`, and returns the items as plain JSON. Plain JSON rather than the client's
 * typed models: deserialising 10,000 Services into models costs more than the whole import.
 *
 * With `fromCache`, the first page is asked for at `resourceVersion=0`: the apiserver answers
 * from its watch cache without a consistency round trip (about half the time), possibly a
 * little behind etcd. Use it only where a slightly stale list is safe.
 */
export async function listAll<T>(
  kubeConfig: KubeConfig,
  path: string,
  query: Readonly<Record<string, string>> = {},
  pageSize = 1000,
  fromCache = false,
): Promise<T[]> {
  return (await listAllVersioned<T>(kubeConfig, path, query, pageSize, fromCache)).items;
}

/**
 * {@link listAll} of a resource that may not be served (a CustomResourceDefinition not
 * installed): a collection that answers 404 has no items.
 */
export async function listAllIfServed<T>(
  kubeConfig: KubeConfig,
  path: string,
  query: Readonly<Record<string, string>> = {},
  pageSize = 1000,
): Promise<T[]> {
  return (await listAllVersioned<T>(kubeConfig, path, query, pageSize, false, true)).items;
}

/** {@link listAll}, with the list's resourceVersion (to watch from). */
export async function listAllVersioned<T>(
  kubeConfig: KubeConfig,
  path: string,
  query: Readonly<Record<string, string>> = {},
  pageSize = 1000,
  fromCache = false,
  notServedIsEmpty = false,
): Promise<{ items: T[]; resourceVersion: string }> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new IpamError('API_ERROR', 'the kubeconfig has no current cluster');
  const items: T[] = [];
  let resourceVersion = '';
  let cont: string | undefined;
  do {
    const url = new URL(`${cluster.server.replace(/\/$/, '')}${path}`);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    url.searchParams.set('limit', String(pageSize));
    if (cont) url.searchParams.set('continue', cont);
    else if (fromCache) url.searchParams.set('resourceVersion', '0');
    const options: RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
    await kubeConfig.applyToHTTPSOptions(options);
    const page = (await getJson(url, options, notServedIsEmpty)) as {
      items?: T[];
      metadata?: { continue?: string; resourceVersion?: string };
    };
    items.push(...(page.items ?? []));
    resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    cont = page.metadata?.continue || undefined;
  } while (cont);
  return { items, resourceVersion };
}

/** GETs JSON; with `notFoundIsEmpty`, a 404 answers an empty list. */
function getJson(url: URL, options: RequestOptions, notFoundIsEmpty: boolean): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    const req = send(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode === 404 && notFoundIsEmpty) {
          resolve({ items: [], metadata: {} });
          return;
        }
        if (res.statusCode !== 200) {
          reject(
            new IpamError('API_ERROR', `GET ${url.pathname} answered HTTP ${res.statusCode}: ${text.slice(0, 300)}`),
          );
          return;
        }
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(new IpamError('API_ERROR', `GET ${url.pathname} answered invalid JSON`, { cause: err }));
        }
      });
    });
    req.setTimeout(60_000, () => req.destroy(new Error(`GET ${url.pathname} timed out`)));
    req.on('error', (err) =>
      reject(new IpamError('API_ERROR', `GET ${url.pathname} failed: ${err.message}`, { cause: err })),
    );
    req.end();
  });
}
