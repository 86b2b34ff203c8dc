import type { EmulatorClock } from './emulator-clock.js';
import { F5RestError, mcpError, restError } from './f5-error.js';

/** One queued command of a transaction. */
export interface F5TransactionCommand {
  /** HTTP method of the queued call. */
  readonly method: string;
  /** Path (with query) of the queued call. */
  readonly path: string;
  /** Its JSON body, if any. */
  readonly body: Record<string, unknown> | undefined;
  /** Position in the queue, from 1. */
  readonly evalOrder: number;
}

/** A transaction's state. */
export type F5TransactionState = 'STARTED' | 'VALIDATING' | 'COMPLETED' | 'FAILED';

/** An emulated iControl transaction. */
export interface F5Transaction {
  /** Its id (header `X-F5-REST-Coordination-Id`). */
  readonly transId: number;
  /** Current state. */
  state: F5TransactionState;
  /** Seconds it may stay uncommitted before it is dropped. */
  readonly timeoutSeconds: number;
  /** When it was created (emulator clock, ms). */
  readonly startMs: number;
  /** The queued commands. */
  readonly commands: F5TransactionCommand[];
  /** Why the commit failed. */
  failureReason?: string;
}

/**
 * Transactions: queueing writes sent with `X-F5-REST-Coordination-Id`, listing them, committing
 * all or nothing, and dropping transactions not committed within `timeoutSeconds`.
 */
export class TransactionManager {
  readonly #clock: EmulatorClock;
  readonly #timeoutSeconds: number;
  readonly #transactions = new Map<number, F5Transaction>();
  #nextId = Math.floor(1_600_000_000_000 + Math.random() * 1e9);

  constructor(clock: EmulatorClock, timeoutSeconds: number) {
    this.#clock = clock;
    this.#timeoutSeconds = timeoutSeconds;
  }

  #expire(): void {
    const now = this.#clock.now();
    for (const [id, tx] of this.#transactions) {
      if (tx.state === 'STARTED' && now > tx.startMs + tx.timeoutSeconds * 1000) this.#transactions.delete(id);
    }
  }

  /** `POST /mgmt/tm/transaction`. */
  create(): F5Transaction {
    this.#expire();
    this.#nextId += 1;
    const tx: F5Transaction = {
      transId: this.#nextId,
      state: 'STARTED',
      timeoutSeconds: this.#timeoutSeconds,
      startMs: this.#clock.now(),
      commands: [],
    };
    this.#transactions.set(tx.transId, tx);
    return tx;
  }

  /** Every live transaction. */
  list(): F5Transaction[] {
    this.#expire();
    return [...this.#transactions.values()];
  }

  /** One transaction; 404 when unknown or dropped. */
  get(id: string | number): F5Transaction {
    this.#expire();
    const tx = this.#transactions.get(Number(id));
    if (!tx) throw restError(404, `Transaction ${String(id)} does not exist.`);
    return tx;
  }

  /** Queues a write into a started transaction. */
  queue(id: string, method: string, path: string, body: Record<string, unknown> | undefined): F5TransactionCommand {
    const tx = this.get(id);
    if (tx.state !== 'STARTED')
      throw mcpError(400, `Transaction ${id} is in state ${tx.state}; no commands can be added.`, 1);
    const command = { method, path, body, evalOrder: tx.commands.length + 1 };
    tx.commands.push(command);
    return command;
  }

  /** `DELETE /mgmt/tm/transaction/<id>`. */
  remove(id: string): F5Transaction {
    const tx = this.get(id);
    this.#transactions.delete(tx.transId);
    return tx;
  }

  /**
   * Commits: runs `apply` (which applies every command to a scratch copy and adopts it only if
   * all succeed), then records COMPLETED or FAILED with the failure reason.
   */
  commit(
    id: string,
    body: Record<string, unknown> | undefined,
    apply: (commands: readonly F5TransactionCommand[]) => void,
  ): F5Transaction {
    const tx = this.get(id);
    if (body?.state !== 'VALIDATING') throw mcpError(400, 'A transaction is committed with {"state":"VALIDATING"}.', 1);
    if (tx.state !== 'STARTED')
      throw mcpError(400, `Transaction ${id} is in state ${tx.state} and cannot be committed.`, 1);
    if (tx.commands.length === 0) throw mcpError(400, `Transaction ${id} has no commands.`, 1);
    tx.state = 'VALIDATING';
    try {
      apply(tx.commands);
      tx.state = 'COMPLETED';
    } catch (err) {
      tx.state = 'FAILED';
      tx.failureReason = err instanceof F5RestError ? err.message : String(err);
    }
    return tx;
  }

  /** The transaction's JSON representation. */
  present(tx: F5Transaction): Record<string, unknown> {
    const out: Record<string, unknown> = {
      transId: tx.transId,
      state: tx.state,
      timeoutSeconds: tx.timeoutSeconds,
      asyncExecution: false,
      validateOnly: false,
      executionTimeout: 300,
      executionTime: 0,
      kind: 'tm:transactionstate',
      selfLink: `https://localhost/mgmt/tm/transaction/${tx.transId}?ver=17.1.0`,
    };
    if (tx.failureReason !== undefined) out.failureReason = tx.failureReason;
    return out;
  }

  /** A queued command's JSON representation. */
  presentCommand(tx: F5Transaction, command: F5TransactionCommand): Record<string, unknown> {
    const out: Record<string, unknown> = {
      method: command.method,
      uri: `https://localhost${command.path}`,
      commandId: command.evalOrder,
      evalOrder: command.evalOrder,
      kind: 'tm:transaction:commandsstate',
      selfLink: `https://localhost/mgmt/tm/transaction/${tx.transId}/commands/${command.evalOrder}?ver=17.1.0`,
    };
    if (command.body !== undefined) out.body = command.body;
    return out;
  }
}
