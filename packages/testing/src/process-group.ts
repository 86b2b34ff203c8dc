import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Options of {@link ProcessGroup.start}. */
export interface StartProcessOptions {
  /** Extra environment for the child (merged over the parent's). */
  readonly env?: NodeJS.ProcessEnv;
  /** Working directory; default: the group's directory. */
  readonly cwd?: string;
}

const liveGroups = new Set<ProcessGroup>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', () => {
    for (const group of liveGroups) group.killNow();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const group of liveGroups) group.killNow();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}

/**
 * The processes a test started, with their logs in one directory. Every process is ended by
 * pid when the group is stopped, and also (SIGKILL) when the test process exits or is
 * interrupted; the directory is removed with it.
 */
export class ProcessGroup {
  readonly #dir: string;
  readonly #removeDir: boolean;
  readonly #children = new Map<string, ChildProcess>();
  readonly #unexpected: string[] = [];
  readonly #stopping = new Set<string>();

  /**
   * @param dir - directory for the processes' logs (`<name>.log`).
   * @param removeDir - remove `dir` when the group stops (default true).
   */
  constructor(dir: string, removeDir = true) {
    this.#dir = dir;
    this.#removeDir = removeDir;
    liveGroups.add(this);
    installExitHooks();
  }

  /** Path of the log file that receives `name`'s stdout and stderr. */
  logFile(name: string): string {
    return join(this.#dir, `${name}.log`);
  }

  /** Starts `bin args` as `name` (a name is reused only after that process stopped). */
  start(name: string, bin: string, args: readonly string[], options: StartProcessOptions = {}): ChildProcess {
    if (this.#children.has(name)) throw new Error(`process ${name} is already running`);
    const fd = openSync(this.logFile(name), 'a');
    const child = spawn(bin, args, {
      cwd: options.cwd ?? this.#dir,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    this.#children.set(name, child);
    child.on('error', (err) => {
      this.#unexpected.push(`${name} could not start: ${err.message}`);
      this.#children.delete(name);
    });
    child.on('exit', (code, signal) => {
      if (this.#children.get(name) === child) this.#children.delete(name);
      if (!this.#stopping.has(name)) {
        this.#unexpected.push(`${name} exited (code ${code}, signal ${signal})\n${this.logTail(name)}`);
      }
    });
    return child;
  }

  /** The pid of a running process, if any. */
  pid(name: string): number | undefined {
    return this.#children.get(name)?.pid;
  }

  /** A description of the first process that exited without being stopped, if any. */
  exited(): string | undefined {
    return this.#unexpected[0];
  }

  /** The last lines of a process's log. */
  logTail(name: string, lines = 30): string {
    const file = this.logFile(name);
    if (!existsSync(file)) return '';
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  }

  /** The last lines of every process's log, each under its name. */
  logTails(lines = 30): string {
    return [...this.#children.keys()].map((name) => `--- ${name}\n${this.logTail(name, lines)}`).join('\n');
  }

  /** Sends `signal` to `name` and waits for it to exit (SIGKILL after `graceMs`). */
  async stop(name: string, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
    const child = this.#children.get(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.#stopping.add(name);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    this.#stopping.delete(name);
  }

  /** Stops every process, newest first, and removes the directory. */
  async stopAll(): Promise<void> {
    for (const name of [...this.#children.keys()].reverse()) await this.stop(name);
    liveGroups.delete(this);
    if (this.#removeDir) rmSync(this.#dir, { recursive: true, force: true });
  }

  /** Synchronous last resort on process exit: SIGKILL every child and remove the directory. */
  killNow(): void {
    for (const child of this.#children.values()) {
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    this.#children.clear();
    if (this.#removeDir) rmSync(this.#dir, { recursive: true, force: true });
  }
}
