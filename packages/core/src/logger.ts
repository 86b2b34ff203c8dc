/**
 * A structured logger, compatible with pino: `logger.info({ key: 'ns/name' }, 'message')`.
 * KLB never logs through `console`; every component takes a `Logger` and derives child loggers
 * (one per reconcile, with the key and a reconcile id).
 */
export interface Logger {
  /** Fine-grained detail, off in production. */
  debug(obj: object | string, msg?: string): void;
  /** Normal operation. */
  info(obj: object | string, msg?: string): void;
  /** Something unexpected that KLB handles. */
  warn(obj: object | string, msg?: string): void;
  /** Something that failed. */
  error(obj: object | string, msg?: string): void;
  /** A logger that adds `bindings` to every line. */
  child(bindings: Record<string, unknown>): Logger;
}

/** A logger that drops everything; the default where none is injected. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
