import { KlbError } from '@klb/core';

/** Stable codes of {@link F5Error}. */
export type F5ErrorCode =
  /** 404 from the configuration database: the object does not exist. */
  | 'F5_NOT_FOUND'
  /** 409: the object already exists. */
  | 'F5_CONFLICT'
  /** 400: the request was refused (invalid value, object in use, ...). */
  | 'F5_BAD_REQUEST'
  /** 401: credentials refused (or a token that re-login could not replace). */
  | 'F5_UNAUTHORIZED'
  /** 400 `user <id> has reached maximum active login tokens`. */
  | 'F5_TOKEN_LIMIT'
  /** 503, `Public URI path not registered`, or `The connection to mcpd has been lost`: try again. */
  | 'F5_UNAVAILABLE'
  /** A transaction commit ended FAILED (nothing was applied). */
  | 'F5_TRANSACTION_FAILED'
  /** No answer: connection refused/reset, TLS failure, timeout. */
  | 'F5_NETWORK'
  /** Any other HTTP error status. */
  | 'F5_HTTP';

/** Options of an {@link F5Error}. */
export interface F5ErrorOptions {
  /** HTTP status, when there was an answer. */
  readonly status?: number;
  /** F5's message id, e.g. `01020036` from `01020036:3: The requested Pool (...) was not found.` */
  readonly messageId?: string;
  /** The underlying error. */
  readonly cause?: unknown;
}

/** An error answer of a BIG-IP (or a failure to reach it), parsed from F5's error body. */
export class F5Error extends KlbError {
  /** HTTP status, when there was an answer. */
  readonly status: number | undefined;
  /** F5's message id (`01020036`), when the body carried one. */
  readonly messageId: string | undefined;

  constructor(code: F5ErrorCode, message: string, retryable: boolean, options: F5ErrorOptions = {}) {
    super(code, message, retryable, options.cause === undefined ? {} : { cause: options.cause });
    this.status = options.status;
    this.messageId = options.messageId;
  }
}

/** True for an {@link F5Error} with `code` (also one from another copy of this package). */
export function isF5Error(err: unknown, code?: F5ErrorCode): err is F5Error {
  return err instanceof Error && err.name === 'F5Error' && (code === undefined || (err as F5Error).code === code);
}

/** The `message` of an F5 error body, or the raw text when it is not JSON. */
export function f5Message(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON: use the text
  }
  return body.slice(0, 500);
}

/** Builds the typed error for an HTTP error answer. */
export function f5ErrorFromResponse(status: number, body: string, what: string): F5Error {
  const message = f5Message(body);
  const messageId = /^([0-9a-f]{8}):\d+:/i.exec(message)?.[1];
  const options: F5ErrorOptions = messageId === undefined ? { status } : { status, messageId };
  const text = `${what}: ${status} ${message}`;
  if (
    status === 503 ||
    /Public URI path not registered/i.test(message) ||
    /connection to mcpd has been lost/i.test(message)
  ) {
    return new F5Error('F5_UNAVAILABLE', text, true, options);
  }
  if (status === 401) return new F5Error('F5_UNAUTHORIZED', text, false, options);
  if (/has reached maximum active login tokens/.test(message))
    return new F5Error('F5_TOKEN_LIMIT', text, true, options);
  if (status === 404) return new F5Error('F5_NOT_FOUND', text, false, options);
  if (status === 409) return new F5Error('F5_CONFLICT', text, true, options);
  if (status === 400) return new F5Error('F5_BAD_REQUEST', text, false, options);
  return new F5Error('F5_HTTP', text, status >= 500, options);
}
