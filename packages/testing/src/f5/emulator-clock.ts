/**
 * The emulator's clock: real time plus an offset that tests move forward, so token and
 * transaction expiry can be tested without waiting.
 */
export class EmulatorClock {
  #offsetMs = 0;

  /** Milliseconds since the epoch, as the emulator sees them. */
  now(): number {
    return Date.now() + this.#offsetMs;
  }

  /** Moves the clock forward by `seconds`. */
  advance(seconds: number): void {
    this.#offsetMs += seconds * 1000;
  }
}
