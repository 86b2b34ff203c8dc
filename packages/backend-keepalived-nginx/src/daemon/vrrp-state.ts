import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeepalivedInstance } from '../keepalived-renderer.js';
import type { DaemonVrrpInstanceReport, VrrpState } from '../node-report.js';
import { writeFileAtomic } from './atomic-file.js';

const STATES = new Set<VrrpState>(['INIT', 'BACKUP', 'MASTER', 'FAULT', 'STOP']);

/**
 * Records keepalived's VRRP state per instance: keepalived runs the notify script this writes
 * (`notify` in keepalived.conf) on every state change, and the script stores the new state in a
 * file per instance, which {@link VrrpStateTracker.read} turns into report entries.
 */
export class VrrpStateTracker {
  readonly #dir: string;
  readonly #script: string;

  /**
   * @param dir - a root-owned directory (not writable by others, as keepalived's script security
   *   demands) for the script and the state files.
   */
  constructor(dir: string) {
    this.#dir = dir;
    this.#script = join(dir, 'notify.sh');
  }

  /** Path of the notify script (for `KeepalivedRenderOptions.notifyScript`). */
  get script(): string {
    return this.#script;
  }

  /** Directory of the per-instance state files. */
  get stateDir(): string {
    return join(this.#dir, 'state');
  }

  /** Writes the notify script (mode 0700) and creates the state directory. */
  async install(): Promise<void> {
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    // keepalived calls it with TYPE NAME STATE PRIORITY; only instance names KLB renders are used
    // as file names, and the state is one of keepalived's words.
    const script = `#!/bin/sh
case "$2" in ''|*[!A-Za-z0-9_]*) exit 0 ;; esac
case "$3" in MASTER|BACKUP|FAULT|STOP|INIT) ;; *) exit 0 ;; esac
printf '%s\\n' "$3" > '${this.stateDir}/.$2.tmp' && mv -f '${this.stateDir}/.$2.tmp' '${this.stateDir}/$2'
`;
    await writeFileAtomic(this.#script, script, 0o700);
  }

  /** Forgets every recorded state (keepalived starts again from INIT). */
  async reset(): Promise<void> {
    const { rm } = await import('node:fs/promises');
    for (const name of await readdir(this.stateDir).catch(() => [] as string[])) {
      await rm(join(this.stateDir, name), { force: true });
    }
  }

  /**
   * The state of each rendered instance: what keepalived last reported; without a report, MASTER
   * when this node holds all of the instance's VIPs (per `localAddresses`) and BACKUP otherwise,
   * or INIT when `localAddresses` is not given. `running` false reports every instance as STOP.
   */
  async read(
    instances: readonly KeepalivedInstance[],
    running: boolean,
    localAddresses?: () => Promise<readonly string[]>,
  ): Promise<DaemonVrrpInstanceReport[]> {
    const result: DaemonVrrpInstanceReport[] = [];
    let local: readonly string[] | undefined;
    for (const instance of instances) {
      let state: VrrpState = 'INIT';
      if (!running) state = 'STOP';
      else {
        const text = await readFile(join(this.stateDir, instance.name), 'utf8').catch(() => '');
        const word = text.trim() as VrrpState;
        if (STATES.has(word)) state = word;
        else if (localAddresses) {
          // No notification (yet): a node holding all of the instance's VIPs is its master.
          local ??= await localAddresses().catch(() => []);
          const held = instance.addresses.every((a) => local?.includes(a));
          state = held ? 'MASTER' : 'BACKUP';
        }
      }
      result.push({
        instance: instance.name,
        group: instance.group,
        vrid: instance.vrid,
        state,
        addresses: [...instance.addresses],
      });
    }
    return result;
  }
}
