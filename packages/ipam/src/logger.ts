/**
 * A structured logger, compatible with pino and with `@klb/core`'s `Logger` (this package
 * does not depend on core): `logger.warn({ address }, 'message')`.
 */
export interface IpamLogger {
  /** Fine-grained detail. */
  debug(obj: object | string, msg?: string): void;
  /** Normal operation. */
  info(obj: object | string, msg?: string): void;
  /** Something unexpected that the IPAM handles. */
  warn(obj: object | string, msg?: string): void;
  /** Something that failed. */
  error(obj: object | string, msg?: string): void;
  /** A logger that adds `bindings` to every line. */
  child(bindings: Record<string, unknown>): IpamLogger;
}

/** Drops everything; the default logger. */
export const silentIpamLogger: IpamLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentIpamLogger;
  },
};
