import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type BackoffOptions, backoffDelay, type Logger, silentLogger } from '@klb/core';

const live = new Set<ChildProcess>();
let exitHook = false;

/** Ends supervised processes when the daemon itself exits without stopping them (a crash). */
function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const child of live) {
      try {
        if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** util-linux `setpriv`, which sets the parent-death signal and then execs the process. */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));

/** Whether `bin` names an existing file, directly or through PATH. */
function found(bin: string): boolean {
  if (bin.includes('/')) return existsSync(bin);
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, bin)));
}

/** How a supervised process ended. */
export interface ProcessExit {
  /** Exit code, or null when a signal ended it. */
  readonly code: number | null;
  /** The signal that ended it, or null. */
  readonly signal: NodeJS.Signals | null;
  /** When it ended (ms since the epoch). */
  readonly at: number;
  /** True when the supervisor asked it to stop. */
  readonly requested: boolean;
}

/** Options of {@link ProcessSupervisor}. */
export interface ProcessSupervisorOptions {
  /** Name for logs and metrics, e.g. `nginx`. */
  readonly name: string;
  /** The executable. */
  readonly bin: string;
  /** Its arguments. It must stay in the foreground (e.g. nginx `daemon off;`, keepalived `-n`). */
  readonly args: readonly string[];
  /** Working directory of the process; default: the daemon's. */
  readonly cwd?: string;
  /** Extra environment (merged over the daemon's). */
  readonly env?: NodeJS.ProcessEnv;
  /** Runs before every start (e.g. to clear stale pid files); a throw counts as a failed start. */
  readonly beforeStart?: () => Promise<void>;
  /** Delay before restart number n after unrequested exits; default 200 ms doubling to 30 s. */
  readonly backoff?: BackoffOptions;
  /** A process that ran at least this long resets the backoff; default 10000 ms. */
  readonly stableAfterMs?: number;
  /**
   * The signal the process gets when the daemon dies without stopping it (SIGKILL, OOM), so that
   * nginx and keepalived never outlive the daemon that supervises them (keepalived then gives up
   * its VIPs to a node whose daemon runs); `false` lets them run on. Set by util-linux
   * `setpriv --pdeathsig`, which execs the process (same pid); without `setpriv` it is not set and
   * the first start logs a warning. Default `SIGTERM`.
   */
  readonly parentDeathSignal?: NodeJS.Signals | false;
  /** Grace period between SIGTERM and SIGKILL on stop; default 10000 ms. */
  readonly stopGraceMs?: number;
  /** Receives each line the process writes to stdout/stderr (default: logged at info). */
  readonly onOutput?: (line: string) => void;
  /** Called on every exit that the supervisor did not ask for, before the restart is scheduled. */
  readonly onExit?: (exit: ProcessExit) => void;
  /** Called with the pid of every successful start. */
  readonly onStart?: (pid: number) => void;
  /** Logger. */
  readonly logger?: Logger;
}

/**
 * Keeps one child process running: starts it, restarts it with exponential backoff when it exits
 * on its own (reporting the exit code or signal), delivers signals to it by pid (e.g. SIGHUP to
 * reload), and stops it (SIGTERM, then SIGKILL after a grace period).
 */
export class ProcessSupervisor {
  readonly #options: ProcessSupervisorOptions;
  readonly #log: Logger;
  #child: ChildProcess | undefined;
  #startedAt = 0;
  #failures = 0;
  #restarts = 0;
  #lastExit: ProcessExit | undefined;
  #stopping = false;
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #exitWaiters: Array<() => void> = [];
  readonly #ended = new WeakSet<ChildProcess>();
  #warnedNoSetpriv = false;

  constructor(options: ProcessSupervisorOptions) {
    this.#options = options;
    this.#log = (options.logger ?? silentLogger).child({ process: options.name });
  }

  /** The process name. */
  get name(): string {
    return this.#options.name;
  }

  /** The pid of the running process, if one is running. */
  get pid(): number | undefined {
    return this.#child?.exitCode === null && this.#child.signalCode === null ? this.#child.pid : undefined;
  }

  /** Restarts after unrequested exits so far. */
  get restarts(): number {
    return this.#restarts;
  }

  /** How the process last ended, if it has. */
  get lastExit(): ProcessExit | undefined {
    return this.#lastExit;
  }

  /** True between {@link ProcessSupervisor.start} and {@link ProcessSupervisor.stop}. */
  get supervising(): boolean {
    return this.#running;
  }

  /** Starts the process and keeps it running until {@link ProcessSupervisor.stop}. Resolves once the first start was attempted. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#stopping = false;
    await this.#spawn();
  }

  /** Sends `signal` to the running process; false when none is running. */
  signal(signal: NodeJS.Signals): boolean {
    const pid = this.pid;
    if (pid === undefined) return false;
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** Stops supervising: SIGTERM (or `signal`), SIGKILL after the grace period; resolves when it has exited. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.#running = false;
    this.#stopping = true;
    clearTimeout(this.#timer);
    const child = this.#child;
    if (!child || this.#ended.has(child) || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#exitWaiters.push(resolve));
    child.kill(signal);
    const kill = setTimeout(() => child.kill('SIGKILL'), this.#options.stopGraceMs ?? 10_000);
    await exited;
    clearTimeout(kill);
  }

  async #spawn(): Promise<void> {
    if (!this.#running) return;
    try {
      await this.#options.beforeStart?.();
    } catch (err) {
      this.#log.error({ err: String(err) }, 'could not prepare the start');
      this.#scheduleRestart();
      return;
    }
    if (!this.#running) return;
    const deathSignal = this.#options.parentDeathSignal ?? 'SIGTERM';
    let [bin, args] = [this.#options.bin, [...this.#options.args]];
    // A missing binary is left to spawn, which reports it as such (exit code -1).
    if (deathSignal !== false && SETPRIV !== undefined && found(bin)) {
      [bin, args] = [SETPRIV, ['--pdeathsig', deathSignal, '--', bin, ...args]];
    } else if (deathSignal !== false && !this.#warnedNoSetpriv) {
      this.#warnedNoSetpriv = true;
      this.#log.warn({}, 'setpriv (util-linux) not found: the process would outlive a killed daemon');
    }
    const child = spawn(bin, args, {
      env: { ...process.env, ...this.#options.env },
      ...(this.#options.cwd === undefined ? {} : { cwd: this.#options.cwd }),
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: signals keepalived or nginx send to their group never reach the daemon.
      detached: true,
    });
    installExitHook();
    live.add(child);
    child.once('exit', () => live.delete(child));
    this.#child = child;
    this.#startedAt = Date.now();
    const output = this.#options.onOutput ?? ((line: string) => this.#log.info({ output: line }, 'output'));
    for (const stream of [child.stdout, child.stderr]) {
      let rest = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) output(line);
      });
    }
    child.once('spawn', () => {
      if (child.pid !== undefined) {
        this.#log.info({ pid: child.pid }, 'started');
        this.#options.onStart?.(child.pid);
      }
    });
    child.once('error', (err) => {
      // Spawn failures (missing binary) arrive here and are followed by no 'exit'.
      if (child.pid === undefined) this.#onExit(child, -1, null, err);
    });
    child.once('exit', (code, signal) => this.#onExit(child, code, signal));
  }

  #onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null, err?: Error): void {
    if (this.#child !== child || this.#ended.has(child)) return;
    this.#ended.add(child);
    const exit: ProcessExit = { code, signal, at: Date.now(), requested: this.#stopping };
    this.#lastExit = exit;
    for (const resolve of this.#exitWaiters.splice(0)) resolve();
    if (this.#stopping || !this.#running) {
      this.#log.info({ code, signal }, 'stopped');
      return;
    }
    this.#log.error({ code, signal, err: err?.message }, 'exited unexpectedly; restarting');
    this.#options.onExit?.(exit);
    if (Date.now() - this.#startedAt >= (this.#options.stableAfterMs ?? 10_000)) this.#failures = 0;
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    if (!this.#running) return;
    this.#failures++;
    const delay = backoffDelay(this.#failures, this.#options.backoff ?? { baseMs: 200, maxMs: 30_000 });
    this.#timer = setTimeout(() => {
      this.#restarts++;
      void this.#spawn();
    }, delay);
  }
}
