import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KlbError, type Logger, silentLogger } from '@klb/core';
import {
  type KeepalivedInstance,
  KeepalivedRenderer,
  type KeepalivedRenderOptions,
  type KeepalivedRenderResult,
} from '../keepalived-renderer.js';
import { NginxRenderer, type NginxRenderOptions, type NginxRenderResult } from '../nginx-renderer.js';
import { writeFileAtomic } from './atomic-file.js';

/** A rendered config failed `nginx -t` or `keepalived -t`; the last good config keeps serving. */
export class ConfigValidationError extends KlbError {
  /** Which program rejected it. */
  readonly program: 'nginx' | 'keepalived';

  /**
   * @param program - which program rejected it.
   * @param message - what it said.
   */
  constructor(program: 'nginx' | 'keepalived', message: string) {
    super('CONFIG_VALIDATION_FAILED', `${program} -t: ${message}`, false);
    this.program = program;
  }
}

/** What the applier asks of the processes it configures. */
export interface DataPlane {
  /** Starts nginx (and keepalived) if they are not supervised yet; called once a good config is in place. */
  ensureStarted(): Promise<void>;
  /** Reloads nginx and resolves once it serves the new config (throws if nginx refused it). */
  reloadNginx(): Promise<void>;
  /** Reloads keepalived (SIGHUP). */
  reloadKeepalived(): Promise<void>;
}

/** Options of {@link ConfigApplier}. */
export interface ConfigApplierOptions {
  /** Directory for configs, TLS files, pid files and logs (created if missing). */
  readonly stateDir: string;
  /** nginx binary; default `nginx`. */
  readonly nginxBin?: string;
  /** keepalived binary; default `keepalived`. */
  readonly keepalivedBin?: string;
  /** nginx render options other than the paths, which the applier sets. */
  readonly nginx?: Omit<NginxRenderOptions, 'tlsDir' | 'runDir' | 'errorLog'>;
  /**
   * keepalived render options other than nginx tracking and the notify script, which the applier
   * sets; `false` runs without keepalived (VIPs routed to the node by other means).
   */
  readonly keepalived: Omit<KeepalivedRenderOptions, 'trackNginx' | 'notifyScript'> | false;
  /** The notify script keepalived runs on VRRP state changes. */
  readonly notifyScript?: string;
  /** The processes to start and reload. */
  readonly dataPlane: DataPlane;
  /** Logger. */
  readonly logger?: Logger;
}

/** The outcome of one {@link ConfigApplier.apply}. */
export interface ApplyOutcome {
  /** `reloaded` (new config serving), `unchanged` (same rendered output: nothing done), `failed` (last good kept). */
  readonly result: 'reloaded' | 'unchanged' | 'failed';
  /** Load balancer id → config version now serving. */
  readonly applied: ReadonlyMap<string, string>;
  /** Load balancer id → why it is left out, with the version seen. */
  readonly rejected: ReadonlyMap<
    string,
    {
      /** The config version that was left out ('' when unreadable). */
      readonly version: string;
      /** Why. */
      readonly message: string;
    }
  >;
  /** Node-level problems of this application (validation of the whole config, reload). */
  readonly errors: readonly string[];
  /** The keepalived instances now serving (and their VIPs). */
  readonly instances: readonly KeepalivedInstance[];
  /** True when load balancers were just left out after a failed reload, so applying again can serve the rest. */
  readonly retry?: boolean;
}

interface Build {
  readonly nginx: NginxRenderResult;
  readonly keepalived: KeepalivedRenderResult | undefined;
  readonly checksum: string;
  readonly tlsDir: string;
  readonly error: ConfigValidationError | undefined;
}

function run(bin: string, args: readonly string[]): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(bin, [...args], { timeout: 60_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ ok: !err, output: `${String(stderr)}${String(stdout)}`.trim() || String(err?.message ?? '') });
    });
  });
}

function idOf(raw: unknown, index: number): string {
  const id = typeof raw === 'object' && raw !== null ? (raw as { id?: unknown }).id : undefined;
  return typeof id === 'string' && id.length > 0 && id.length <= 330 ? id : `#${index}`;
}

function versionOf(raw: unknown): string {
  const version = typeof raw === 'object' && raw !== null ? (raw as { version?: unknown }).version : undefined;
  return typeof version === 'string' ? version.slice(0, 64) : '';
}

function firstLines(text: string, pattern: RegExp): string {
  const lines = text.split('\n').filter((l) => pattern.test(l));
  return (lines.length > 0 ? lines : text.split('\n')).slice(0, 3).join('; ').slice(0, 1024);
}

/**
 * Renders, validates, swaps and reloads: the heart of the node daemon. Each {@link apply} renders
 * nginx.conf and keepalived.conf from the published configs, skips everything when the output is
 * byte-identical to what is serving (checksum gate), validates candidates with `nginx -t` and
 * `keepalived -t`, renames them over the live files (atomic) and reloads. When the whole config
 * fails validation, the load balancers that changed since the last good config are tried one by
 * one and those that break it are left out (reported), so one bad service never takes the others
 * down; when even that fails, or a reload fails, the last good config keeps serving.
 */
export class ConfigApplier {
  readonly #options: ConfigApplierOptions;
  readonly #log: Logger;
  readonly #nginxRenderer = new NginxRenderer();
  readonly #keepalivedRenderer = new KeepalivedRenderer();
  readonly #nginxDir: string;
  readonly #keepalivedDir: string;
  readonly #tlsRoot: string;
  /** Raw configs of the config now serving, by id. */
  #good = new Map<string, unknown>();
  #liveChecksum = '';
  #liveNginx = '';
  #liveKeepalived = '';
  #instances: readonly KeepalivedInstance[] = [];
  /** Ids left out because they broke validation, with the version that did. */
  readonly #quarantine = new Map<string, { version: string; message: string }>();

  constructor(options: ConfigApplierOptions) {
    this.#options = options;
    this.#log = (options.logger ?? silentLogger).child({ component: 'config-applier' });
    this.#nginxDir = join(options.stateDir, 'nginx');
    this.#keepalivedDir = join(options.stateDir, 'keepalived');
    this.#tlsRoot = join(options.stateDir, 'tls');
  }

  /** nginx's prefix directory (`-p`). */
  get nginxPrefix(): string {
    return this.#nginxDir;
  }

  /** The live nginx.conf. */
  get nginxConfigPath(): string {
    return join(this.#nginxDir, 'nginx.conf');
  }

  /** nginx's error log (reload outcomes are read from it). */
  get nginxErrorLog(): string {
    return join(this.#nginxDir, 'error.log');
  }

  /** nginx's pid file. */
  get nginxPidFile(): string {
    return join(this.#nginxDir, 'run', 'nginx.pid');
  }

  /** The live keepalived.conf. */
  get keepalivedConfigPath(): string {
    return join(this.#keepalivedDir, 'keepalived.conf');
  }

  /** keepalived's pid files (`-p`, `-r`). */
  get keepalivedPidFiles(): {
    /** The main process's (`-p`). */
    readonly main: string;
    /** The VRRP child's (`-r`). */
    readonly vrrp: string;
  } {
    return { main: join(this.#keepalivedDir, 'keepalived.pid'), vrrp: join(this.#keepalivedDir, 'vrrp.pid') };
  }

  /** The VRRP instances of the config now serving. */
  get instances(): readonly KeepalivedInstance[] {
    return this.#instances;
  }

  /** Every VIP of the config now serving. */
  get vips(): string[] {
    return this.#instances.flatMap((i) => i.addresses);
  }

  /**
   * Checks the node-level render options (by rendering an empty config) and creates the
   * directories.
   *
   * @throws InvalidRenderOptionsError when the options are invalid (e.g. a bad interface name).
   */
  async prepare(): Promise<void> {
    await this.#build([], false);
    for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
      await mkdir(join(this.#nginxDir, 'run', sub), { recursive: true, mode: 0o700 });
    }
    // nginx's workers run as another user (`nobody` when nginx starts as root) and write request
    // bodies and large responses to those temporary directories; nginx gives them to that user,
    // but every directory above must let it pass (search only: nothing can be listed).
    const state = await stat(this.#options.stateDir);
    await chmod(this.#options.stateDir, (state.mode & 0o7777) | 0o111);
    for (const dir of [this.#nginxDir, join(this.#nginxDir, 'run')]) await chmod(dir, 0o711);
    await mkdir(this.#keepalivedDir, { recursive: true, mode: 0o700 });
    await mkdir(this.#tlsRoot, { recursive: true, mode: 0o700 });
  }

  /**
   * Makes the node serve `configs` (raw objects as published; each is validated), with `sourceErrors`
   * (configs that could not even be read) reported as rejected.
   */
  async apply(
    configs: readonly unknown[],
    sourceErrors: ReadonlyMap<string, Error> = new Map(),
  ): Promise<ApplyOutcome> {
    const versions = new Map<string, string>();
    configs.forEach((raw, i) => {
      versions.set(idOf(raw, i), versionOf(raw));
    });
    for (const [id, q] of this.#quarantine) if (versions.get(id) !== q.version) this.#quarantine.delete(id);
    const candidates = this.#keepIncumbents(configs.filter((raw, i) => !this.#quarantine.has(idOf(raw, i))));
    const errors: string[] = [];

    let build = await this.#build(candidates);
    if (build.checksum === this.#liveChecksum) {
      return this.#outcome('unchanged', build, versions, sourceErrors, errors);
    }
    if (build.error) {
      this.#log.warn(
        { err: build.error.message },
        'config failed validation; isolating the load balancers that changed',
      );
      const isolated = await this.#isolate(candidates);
      if (!isolated) {
        errors.push(`${build.error.message} (the last good config keeps serving)`);
        return this.#outcome('failed', build, versions, sourceErrors, errors);
      }
      build = isolated;
      if (build.checksum === this.#liveChecksum) {
        return this.#outcome('unchanged', build, versions, sourceErrors, errors);
      }
    }

    // Swap: the validated candidates become the live files, atomically.
    const previousNginx = this.#liveNginx;
    const previousKeepalived = this.#liveKeepalived;
    await rename(`${this.nginxConfigPath}.next`, this.nginxConfigPath);
    if (build.keepalived) await rename(`${this.keepalivedConfigPath}.next`, this.keepalivedConfigPath);
    const first = this.#liveChecksum === '';
    try {
      if (first) await this.#options.dataPlane.ensureStarted();
      else {
        await this.#options.dataPlane.reloadNginx();
        if (build.keepalived && build.keepalived.config !== previousKeepalived) {
          await this.#options.dataPlane.reloadKeepalived();
        }
      }
    } catch (err) {
      // nginx keeps serving the previous config; put its file back so a restart uses it too.
      if (!first) {
        await writeFileAtomic(this.nginxConfigPath, previousNginx);
        if (build.keepalived) await writeFileAtomic(this.keepalivedConfigPath, previousKeepalived);
      }
      const message = (err as Error).message;
      errors.push(`reload failed: ${message} (the last good config keeps serving)`);
      this.#log.error({ err: message }, 'reload failed');
      const blamed = this.#blameBind(candidates, message);
      return { ...this.#outcome('failed', build, versions, sourceErrors, errors), retry: blamed };
    }
    this.#liveChecksum = build.checksum;
    this.#liveNginx = build.nginx.config;
    this.#liveKeepalived = build.keepalived?.config ?? '';
    this.#instances = build.keepalived?.instances ?? [];
    const rendered = new Set(build.nginx.rendered);
    this.#good = new Map(
      candidates.flatMap((raw, i) => (rendered.has(idOf(raw, i)) ? [[idOf(raw, i), raw] as const] : [])),
    );
    await this.#pruneTls(build.tlsDir);
    return this.#outcome('reloaded', build, versions, sourceErrors, errors);
  }

  /**
   * A load balancer new on this node that claims a VIP:port already serving another one is left
   * out (quarantined with a conflict message), whatever the ids: a newcomer never takes over the
   * traffic of a service that is up.
   */
  #keepIncumbents(candidates: readonly unknown[]): unknown[] {
    const sockets = (raw: unknown): string[] => {
      const c = raw as { addresses?: unknown; listeners?: unknown };
      if (!Array.isArray(c.addresses) || !Array.isArray(c.listeners)) return [];
      return c.addresses.flatMap((a) =>
        (c.listeners as unknown[]).map((l) => {
          const listener = (typeof l === 'object' && l !== null ? l : {}) as { protocol?: unknown; port?: unknown };
          return `${listener.protocol === 'UDP' ? 'udp' : 'tcp'} ${String(a)}:${String(listener.port)}`;
        }),
      );
    };
    const owners = new Map<string, string>();
    candidates.forEach((raw, i) => {
      const id = idOf(raw, i);
      if (this.#good.has(id)) for (const socket of sockets(raw)) owners.set(socket, id);
    });
    return candidates.filter((raw, i) => {
      const id = idOf(raw, i);
      if (this.#good.has(id)) return true;
      const taken = sockets(raw).find((socket) => owners.has(socket) && owners.get(socket) !== id);
      if (taken === undefined) return true;
      const message = `${taken} is already used by ${owners.get(taken)}, which is serving on this node`;
      this.#quarantine.set(id, { version: versionOf(raw), message });
      this.#log.warn({ id, socket: taken }, 'load balancer collides with one that is serving; left out');
      return false;
    });
  }

  /**
   * After nginx refused a reload because it could not bind `address:port` (in use by another
   * program), quarantines the changed load balancers that listen there so the others can be
   * applied. Returns whether any was.
   */
  #blameBind(candidates: readonly unknown[], message: string): boolean {
    const match = /bind\(\) to \[?([0-9a-fA-F:.]+)\]?:(\d+) failed/.exec(message);
    if (!match) return false;
    const [, address, port] = match;
    this.#log.debug({ address, port, candidates: candidates.length }, 'looking for the load balancer that cannot bind');
    let blamed = false;
    candidates.forEach((raw, i) => {
      const id = idOf(raw, i);
      const good = this.#good.get(id);
      if (good !== undefined && versionOf(good) === versionOf(raw)) return;
      const config = raw as { addresses?: unknown; listeners?: unknown };
      const listens =
        Array.isArray(config.addresses) &&
        config.addresses.includes(address) &&
        Array.isArray(config.listeners) &&
        config.listeners.some(
          (l) => typeof l === 'object' && l !== null && String((l as { port?: unknown }).port) === port,
        );
      if (!listens) return;
      this.#quarantine.set(id, {
        version: versionOf(raw),
        message: `nginx could not listen on ${address}:${port}: ${message}`,
      });
      blamed = true;
      this.#log.warn({ id, address, port }, 'load balancer cannot listen; left out');
    });
    return blamed;
  }

  /** Tries the unchanged load balancers, then each changed one on top; quarantines those that break validation. */
  async #isolate(candidates: readonly unknown[]): Promise<Build | undefined> {
    const unchanged: unknown[] = [];
    const changed: unknown[] = [];
    candidates.forEach((raw, i) => {
      const good = this.#good.get(idOf(raw, i));
      (good !== undefined && versionOf(good) === versionOf(raw) ? unchanged : changed).push(raw);
    });
    const base = await this.#build(unchanged);
    if (base.error) return undefined;
    const accepted = [...unchanged];
    for (const raw of changed) {
      const attempt = await this.#build([...accepted, raw]);
      if (attempt.error) {
        const id = idOf(raw, candidates.indexOf(raw));
        this.#quarantine.set(id, { version: versionOf(raw), message: attempt.error.message });
        this.#log.warn({ id, err: attempt.error.message }, 'load balancer breaks validation; left out');
      } else accepted.push(raw);
    }
    const final = await this.#build(accepted);
    return final.error ? undefined : final;
  }

  async #build(configs: readonly unknown[], validate = true): Promise<Build> {
    const tlsDir = join(this.#tlsRoot, this.#tlsHash(configs));
    const nginx = this.#nginxRenderer.render(configs, {
      ...this.#options.nginx,
      tlsDir,
      runDir: join(this.#nginxDir, 'run'),
      errorLog: this.nginxErrorLog,
    });
    const k = this.#options.keepalived;
    const keepalived =
      k === false
        ? undefined
        : this.#keepalivedRenderer.render(configs, {
            ...k,
            trackNginx: { pidFile: this.nginxPidFile },
            ...(this.#options.notifyScript === undefined ? {} : { notifyScript: this.#options.notifyScript }),
          });
    const checksum = createHash('sha256')
      .update(nginx.config)
      .update('\0')
      .update(keepalived?.config ?? '')
      .digest('hex');
    if (checksum === this.#liveChecksum || !validate) return { nginx, keepalived, checksum, tlsDir, error: undefined };
    await mkdir(tlsDir, { recursive: true, mode: 0o700 });
    for (const file of nginx.files) await writeFileAtomic(file.path, file.content, file.mode);
    await writeFileAtomic(`${this.nginxConfigPath}.next`, nginx.config);
    const checks: Promise<ConfigValidationError | undefined>[] = [
      run(this.#options.nginxBin ?? 'nginx', [
        '-t',
        '-q',
        '-p',
        this.#nginxDir,
        '-c',
        `${this.nginxConfigPath}.next`,
      ]).then((r) =>
        r.ok ? undefined : new ConfigValidationError('nginx', firstLines(r.output, /\[emerg\]|\[alert\]/)),
      ),
    ];
    if (keepalived) {
      await writeFileAtomic(`${this.keepalivedConfigPath}.next`, keepalived.config);
      checks.push(
        run(this.#options.keepalivedBin ?? 'keepalived', ['-t', '-l', '-f', `${this.keepalivedConfigPath}.next`]).then(
          (r) =>
            r.ok ? undefined : new ConfigValidationError('keepalived', firstLines(r.output, /rror|nknown|nvalid/)),
        ),
      );
    }
    const error = (await Promise.all(checks)).find((e) => e !== undefined);
    return { nginx, keepalived, checksum, tlsDir, error };
  }

  #tlsHash(configs: readonly unknown[]): string {
    const hash = createHash('sha256');
    for (const raw of configs) {
      const listeners =
        typeof raw === 'object' && raw !== null ? (raw as { listeners?: unknown }).listeners : undefined;
      if (!Array.isArray(listeners)) continue;
      for (const l of listeners) {
        const tls = typeof l === 'object' && l !== null ? (l as { tls?: unknown }).tls : undefined;
        if (tls !== undefined) hash.update(`${idOf(raw, 0)}\0${JSON.stringify(tls)}\0`);
      }
    }
    return hash.digest('hex').slice(0, 16);
  }

  async #pruneTls(keep: string): Promise<void> {
    for (const name of await readdir(this.#tlsRoot).catch(() => [] as string[])) {
      const dir = join(this.#tlsRoot, name);
      if (dir !== keep) await rm(dir, { recursive: true, force: true });
    }
  }

  #outcome(
    result: ApplyOutcome['result'],
    build: Build,
    versions: ReadonlyMap<string, string>,
    sourceErrors: ReadonlyMap<string, Error>,
    errors: string[],
  ): ApplyOutcome {
    const serving = result === 'failed' ? this.#good : undefined;
    const applied = new Map<string, string>();
    if (serving) for (const [id, raw] of serving) applied.set(id, versionOf(raw));
    else for (const id of build.nginx.rendered) applied.set(id, versions.get(id) ?? '');
    const rejected = new Map<string, { version: string; message: string }>();
    const reject = (id: string, message: string) => {
      if (!applied.has(id) && !rejected.has(id)) rejected.set(id, { version: versions.get(id) ?? '', message });
    };
    for (const [id, err] of sourceErrors) reject(id, err.message);
    for (const [id, q] of this.#quarantine) reject(id, q.message);
    for (const [id, err] of build.nginx.rejected) reject(id, err.message);
    for (const [id, err] of build.keepalived?.rejected ?? []) reject(id, err.message);
    if (result === 'failed') {
      // What was asked for but is not serving, because the whole config was refused.
      for (const id of versions.keys()) reject(id, errors[0] ?? 'not applied');
    }
    return { result, applied, rejected, errors, instances: this.#instances };
  }

  /** The live files' content, for tests and diagnostics. */
  async liveConfigs(): Promise<{
    /** The live nginx.conf ('' when none yet). */
    nginx: string;
    /** The live keepalived.conf ('' when none yet). */
    keepalived: string;
  }> {
    const read = (p: string) => readFile(p, 'utf8').catch(() => '');
    return { nginx: await read(this.nginxConfigPath), keepalived: await read(this.keepalivedConfigPath) };
  }
}
