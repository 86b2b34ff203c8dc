/**
 * A readers-writer lock: many `shared` sections at once, or one `exclusive` section alone.
 * Writers are not starved: once one waits, new readers queue behind it.
 */
export class SharedLock {
  #readers = 0;
  #writer = false;
  #waiting: { exclusive: boolean; resolve: () => void }[] = [];

  #pump(): void {
    while (this.#waiting.length > 0 && !this.#writer) {
      const next = this.#waiting[0] as { exclusive: boolean; resolve: () => void };
      if (next.exclusive) {
        if (this.#readers > 0) return;
        this.#waiting.shift();
        this.#writer = true;
        next.resolve();
        return;
      }
      this.#waiting.shift();
      this.#readers += 1;
      next.resolve();
    }
  }

  async #acquire(exclusive: boolean): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#waiting.push({ exclusive, resolve });
      this.#pump();
    });
  }

  /** Runs `fn` while holding the lock shared. */
  async shared<T>(fn: () => Promise<T>): Promise<T> {
    await this.#acquire(false);
    try {
      return await fn();
    } finally {
      this.#readers -= 1;
      this.#pump();
    }
  }

  /** Runs `fn` while holding the lock exclusively. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.#acquire(true);
    try {
      return await fn();
    } finally {
      this.#writer = false;
      this.#pump();
    }
  }
}
