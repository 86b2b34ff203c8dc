import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Path of the iproute2 `ip` binary. */
export function ipBinary(): string {
  for (const candidate of ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip']) {
    if (existsSync(candidate)) return candidate;
  }
  return 'ip';
}

/** Thrown when a command run by the lab exits non-zero. */
export class NetnsCommandError extends Error {
  /** Stable error code. */
  readonly code = 'NETNS_COMMAND_FAILED';
  /** Lab set-up commands are not retried: the environment is wrong. */
  readonly retryable = false;
  /** The command line that failed. */
  readonly command: string;
  /** What it wrote to stderr. */
  readonly stderr: string;

  constructor(command: string, stderr: string, cause: unknown) {
    super(`${command} failed: ${stderr.trim() || String(cause)}`, { cause });
    this.name = 'NetnsCommandError';
    this.command = command;
    this.stderr = stderr;
  }
}

/** The output of a command a netns lab ran (`NetnsLab.exec`). */
export interface CommandResult {
  /** Standard output. */
  readonly stdout: string;
  /** Standard error. */
  readonly stderr: string;
}

/** Runs `bin args`, resolving with its output, rejecting with {@link NetnsCommandError} on failure. */
export function run(bin: string, args: readonly string[], timeoutMs = 30_000): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(bin, [...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new NetnsCommandError([bin, ...args].join(' '), String(stderr), err));
      else resolve({ stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Runs `ip args`. */
export function ip(args: readonly string[]): Promise<CommandResult> {
  return run(ipBinary(), args);
}

/** Runs `ip args` synchronously, ignoring failure (for clean-up on process exit). */
export function ipQuietSync(args: readonly string[]): string {
  try {
    return execFileSync(ipBinary(), [...args], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).toString();
  } catch {
    return '';
  }
}
