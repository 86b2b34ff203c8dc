const HOST = /^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const PATH = /^\/[A-Za-z0-9\-._~!&'()*+,;=:@%/]*$/;

/** Whether `host` is a lower-case DNS name (optionally `*.`-prefixed) of at most 253 characters. */
export function isHostName(host: string): boolean {
  return host.length <= 253 && HOST.test(host);
}

/** Whether `path` is an absolute URL path of at most 1024 characters made of safe characters only. */
export function isHttpPath(path: string): boolean {
  return path.length <= 1024 && PATH.test(path);
}

/**
 * Orders HTTP routes most specific first: exact host before wildcard before any; longer paths
 * first; `Exact` before `Prefix`.
 */
export function bySpecificity(
  a: { readonly host?: string; readonly path?: string; readonly pathType: string },
  b: { readonly host?: string; readonly path?: string; readonly pathType: string },
): number {
  return (
    hostRank(a.host) - hostRank(b.host) ||
    (b.path?.length ?? 0) - (a.path?.length ?? 0) ||
    (a.pathType === b.pathType ? 0 : a.pathType === 'Exact' ? -1 : 1)
  );
}

/**
 * Orders host names most specific first: exact names, then wildcards, then none (any host).
 * @returns 0, 1 or 2.
 */
export function hostRank(host: string | undefined): number {
  return host === undefined ? 2 : host.startsWith('*.') ? 1 : 0;
}
