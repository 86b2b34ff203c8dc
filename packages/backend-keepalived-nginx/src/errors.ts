import { KlbError, type KlbErrorOptions, TerminalError } from '@klb/core';

/**
 * A value in a daemon configuration is not acceptable (bad address, port, name, host name, path,
 * duration, or a structural schema error). Thrown before anything is rendered, so no user input
 * ever reaches nginx.conf or keepalived.conf unchecked. A {@link TerminalError}: retrying the same
 * input cannot help.
 */
export class InvalidDaemonConfigError extends TerminalError {
  /** Where the bad value is, e.g. `listeners[0].port` (empty for the whole object). */
  readonly field: string;

  /**
   * @param field - where the bad value is.
   * @param message - what is wrong with it (never contains secret material).
   * @param options - the cause, if any.
   */
  constructor(field: string, message: string, options: KlbErrorOptions = {}) {
    super(field ? `${field}: ${message}` : message, {
      ...options,
      code: 'INVALID_DAEMON_CONFIG',
      reason: 'InvalidDaemonConfig',
    });
    this.field = field;
  }
}

/**
 * Two load balancers claim the same thing on the nodes (the same VIP, port and transport, or the
 * same VRRP router id for different groups). The one whose id sorts later is rejected.
 */
export class DaemonConfigConflictError extends TerminalError {
  /**
   * @param message - what collides and with which load balancer.
   * @param options - the cause, if any.
   */
  constructor(message: string, options: KlbErrorOptions = {}) {
    super(message, { ...options, code: 'DAEMON_CONFIG_CONFLICT', reason: 'DaemonConfigConflict' });
  }
}

/**
 * The node-level render options (not a load balancer's config) are invalid, e.g. an interface
 * name with a space or authentication with VRRPv3. Nothing can be rendered until they are fixed.
 */
export class InvalidRenderOptionsError extends KlbError {
  /**
   * @param message - what is wrong.
   * @param options - the cause, if any.
   */
  constructor(message: string, options: KlbErrorOptions = {}) {
    super('INVALID_RENDER_OPTIONS', message, false, options);
  }
}
