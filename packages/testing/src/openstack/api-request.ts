/**
 * One JSON request to a test OpenStack server (Keystone, Neutron) with a token, for the
 * harness's own setup. The servers run on sqlite and answer 500 "database is locked" now and
 * then (the request had no effect): those are retried. Throws on any other failure; answers the
 * parsed body (`{}` for 204).
 *
 * @param url - full URL.
 * @param token - `X-Auth-Token`.
 * @param method - HTTP method.
 * @param body - JSON body, if any.
 */
export async function apiRequest<T>(url: string, token: string, method: string, body?: unknown): Promise<T> {
  let res: Response | undefined;
  for (let attempt = 0; attempt < 20; attempt++) {
    res = await fetch(url, {
      method,
      headers: { 'content-type': 'application/json', 'x-auth-token': token },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (res.status !== 500) break;
    await res.text();
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const path = new URL(url).pathname;
  if (!res) throw new Error(`${method} ${path}: no answer`);
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
  return (res.status === 204 ? {} : await res.json()) as T;
}
