import { F5As3Backend, F5Backend, IControlClient } from '@klb/backend-f5';
import type { Protocol } from '@klb/core';
import {
  type ConformanceFaults,
  type F5Emulator,
  type ObservedLoadBalancer,
  requireComponents,
  runBackendConformance,
  startF5Emulator,
} from '@klb/testing';
import { suite } from 'uvu';

/** `/klb/192.0.2.5:80` or `/klb/2001:db8::5.80` → address and port. */
function parseDestination(destination: string): { address: string; port: number } {
  const last = destination.split('/').at(-1) ?? '';
  const at = last.includes('.') && last.split(':').length > 2 ? last.lastIndexOf('.') : last.lastIndexOf(':');
  return { address: last.slice(0, at).replace(/%\d+$/, ''), port: Number(last.slice(at + 1)) };
}

const owner = (description: unknown) => /^klb:klb (\S+)$/.exec(String(description ?? ''))?.[1];

/** The LTM objects the F5 backend owns, read from the emulator's configuration. */
function observeLtm(f5: F5Emulator): ObservedLoadBalancer[] {
  const state = f5.state();
  const byId = new Map<string, { listeners: ObservedLoadBalancer['listeners'][number][]; strays: string[] }>();
  const entry = (id: string) => {
    const found = byId.get(id) ?? { listeners: [], strays: [] };
    byId.set(id, found);
    return found;
  };
  const pools = new Map(state.pools.map((p) => [String(p.fullPath), p]));
  const usedPools = new Set<string>();
  for (const v of state.virtuals) {
    const id = owner(v.description);
    if (!id) continue;
    const pool = pools.get(String(v.pool));
    usedPools.add(String(v.pool));
    const members = (pool?.members ?? []) as Array<Record<string, unknown>>;
    entry(id).listeners.push({
      ...parseDestination(String(v.destination)),
      protocol: (v.ipProtocol === 'udp' ? 'UDP' : 'TCP') as Protocol,
      targets: members.filter((m) => m.session !== 'user-disabled').map((m) => String(m.name)),
    });
  }
  const usedMonitors = new Set([...usedPools].map((p) => String(pools.get(p)?.monitor ?? '').trim()));
  for (const p of state.pools) {
    const id = owner(p.description);
    if (id && !usedPools.has(String(p.fullPath))) entry(id).strays.push(`pool ${p.fullPath}`);
  }
  for (const m of [...state.monitors.tcp, ...state.monitors.http, ...state.monitors.https]) {
    const id = owner(m.description);
    if (id && !usedMonitors.has(String(m.fullPath))) entry(id).strays.push(`monitor ${m.fullPath}`);
  }
  const usedProfiles = new Set(
    state.virtuals.flatMap((v) =>
      ((v.persist ?? []) as { name: string; partition: string }[]).map((p) => `/${p.partition}/${p.name}`),
    ),
  );
  for (const p of state.persistence.sourceAddr) {
    const id = owner(p.description);
    if (id && !usedProfiles.has(p.fullPath)) entry(id).strays.push(`persistence profile ${p.fullPath}`);
  }
  return [...byId].map(([id, { listeners, strays }]) => ({ id, listeners, strays }));
}

/** The AS3 applications the F5 backend declared in `tenant`, read from the emulator. */
function observeAs3(f5: F5Emulator, tenant: string): ObservedLoadBalancer[] {
  const apps = Object.values(f5.state().as3[tenant] ?? {}) as Array<Record<string, Record<string, unknown>>>;
  return apps
    .filter((app) => (app.class as unknown) === 'Application' && (app.remark as unknown) === 'klb:klb')
    .map((app) => {
      const services = Object.values(app).filter((o) => typeof o === 'object' && /^Service_/.test(String(o.class)));
      const used = new Set(services.map((s) => String(s.pool)));
      const listeners = services.flatMap((s) => {
        const members = (app[String(s.pool)]?.members ?? []) as Array<{
          servicePort: number;
          serverAddresses: string[];
        }>;
        const targets = members.flatMap((m) => m.serverAddresses.map((a) => `${a}:${m.servicePort}`));
        return (s.virtualAddresses as string[]).map((address) => ({
          address,
          port: Number(s.virtualPort),
          protocol: (s.class === 'Service_UDP' ? 'UDP' : s.class === 'Service_HTTP' ? 'HTTP' : 'TCP') as Protocol,
          targets,
        }));
      });
      const strays = Object.entries(app)
        .filter(([name, o]) => typeof o === 'object' && o.class === 'Pool' && !used.has(name))
        .map(([name]) => `pool ${name}`);
      return { id: String(app.label), listeners, strays };
    });
}

/** Faults of the emulator: every call of the kind (authentication excepted) fails until cleared. */
function emulatorFaults(f5: F5Emulator): ConformanceFaults {
  return {
    failReads: () => void f5.faults.add({ method: 'GET', effect: 'service-unavailable' }),
    malformReads: () => void f5.faults.add({ method: 'GET', path: '/mgmt/', effect: 'malformed-body' }),
    failWrites: () => {
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) f5.faults.add({ method, effect: 'mcpd-lost' });
    },
    clear: () => f5.faults.clear(),
  };
}

const missing = requireComponents('openssl');
if (!missing) {
  const f5 = await startF5Emulator({ partitions: ['klb'] });
  const client = () => new IControlClient({ host: f5.host, username: 'admin', password: 'admin', ca: f5.ca });
  // Stop the emulator after the conformance suites (each runs itself).
  const teardown = suite('F5 conformance teardown');
  teardown('stops the emulator', async () => {
    await f5.stop();
  });
  runBackendConformance(
    async () => {
      const backend = new F5Backend({ client: client(), partition: 'klb', snapshotMaxAgeMs: 0 });
      return {
        backend,
        writes: () => f5.calls.counts().writes,
        observe: async () => observeLtm(f5),
        faults: emulatorFaults(f5),
        cleanup: () => backend.close(),
      };
    },
    { name: 'conformance: f5' },
  );
  runBackendConformance(
    async () => {
      const backend = new F5As3Backend({ client: client(), tenant: 'klb_as3', taskPollMs: 5 });
      return {
        backend,
        writes: () => f5.calls.counts().writes,
        observe: async () => observeAs3(f5, 'klb_as3'),
        faults: emulatorFaults(f5),
        cleanup: () => backend.close(),
      };
    },
    { name: 'conformance: f5 (AS3 mode)' },
  );
  teardown.run();
} else {
  const skipped = suite('conformance: f5');
  skipped.skip('needs openssl for the emulator', () => undefined);
  skipped.run();
}
