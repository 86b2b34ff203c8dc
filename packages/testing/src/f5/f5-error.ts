/**
 * An error answer of the emulated iControl REST service, in F5's shapes: config-database errors
 * `{"code","message","errorStack":[],"apiError"}` and REST-framework errors with
 * `"kind":":resterrorresponse"`.
 */
export class F5RestError extends Error {
  /** HTTP status of the answer. */
  readonly status: number;
  /** JSON body of the answer. */
  readonly body: Record<string, unknown>;

  constructor(status: number, body: Record<string, unknown>) {
    super(String(body.message ?? `HTTP ${status}`));
    this.name = 'F5RestError';
    this.status = status;
    this.body = body;
  }
}

/** A config-database (mcpd) error: `{"code","message","errorStack":[],"apiError":3}`. */
export function mcpError(status: number, message: string, apiError = 3): F5RestError {
  return new F5RestError(status, { code: status, message, errorStack: [], apiError });
}

/** `01020036:3: The requested <label> (<fullPath>) was not found.` (404). */
export function notFound(label: string, fullPath: string): F5RestError {
  return mcpError(404, `01020036:3: The requested ${label} (${fullPath}) was not found.`);
}

/** `01020066:3: The requested <label> (<fullPath>) already exists in partition <p>.` (409). */
export function alreadyExists(label: string, fullPath: string, partition: string): F5RestError {
  return mcpError(409, `01020066:3: The requested ${label} (${fullPath}) already exists in partition ${partition}.`);
}

/** A REST-framework error (`"kind":":resterrorresponse"`), e.g. 503 while restjavad restarts. */
export function restError(status: number, message: string): F5RestError {
  return new F5RestError(status, {
    code: status,
    message,
    referer: '127.0.0.1',
    restOperationId: Math.floor(Math.random() * 1e7),
    errorStack: [],
    kind: ':resterrorresponse',
  });
}
