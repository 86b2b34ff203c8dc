// Renders the kustomizations under deploy/ without kustomize: `resources` (files and
// directories) and `patches` (strategic-merge patch files, matched by kind, name and namespace).
// Anything else in a kustomization.yaml is refused, so a manifest using a feature this renderer
// lacks fails the tests instead of being applied half-rendered. When a `kubectl` is on PATH the
// tests also compare this rendering with `kubectl kustomize`.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

/** A Kubernetes object as parsed from YAML. */
export type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
};

const SUPPORTED = new Set(['apiVersion', 'kind', 'resources', 'patches']);

/** Objects of a YAML file, in order (empty documents skipped). */
export function readManifests(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((doc) => {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]?.message}`);
      return doc.toJSON() as Manifest | null;
    })
    .filter((m): m is Manifest => m !== null);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Strategic merge, as Kubernetes does for the lists used here: named items merge by name. */
export function strategicMerge(base: unknown, patch: unknown): unknown {
  if (isObject(base) && isObject(patch)) {
    const out: Record<string, unknown> = { ...base };
    for (const [key, value] of Object.entries(patch)) {
      out[key] = value === null ? undefined : key in base ? strategicMerge(base[key], value) : value;
      if (out[key] === undefined) delete out[key];
    }
    return out;
  }
  if (Array.isArray(base) && Array.isArray(patch)) {
    const keyOf = (item: unknown) => (isObject(item) ? (item.mountPath ?? item.name) : undefined);
    if (!patch.every((item) => keyOf(item) !== undefined)) return patch;
    // Items only in the patch come first, in patch order (as kustomize renders them).
    const merged = base.map((b) => {
      const p = patch.find((item) => keyOf(item) === keyOf(b));
      return p === undefined ? b : strategicMerge(b, p);
    });
    return [...patch.filter((item) => !base.some((b) => keyOf(b) === keyOf(item))), ...merged];
  }
  return patch;
}

/** The objects a kustomization directory renders to. */
export function renderKustomization(dir: string): Manifest[] {
  const file = join(dir, 'kustomization.yaml');
  const [k] = readManifests(file) as unknown as Array<{ resources?: string[]; patches?: Array<{ path?: string }> }>;
  if (!k) throw new Error(`${file} is empty`);
  for (const key of Object.keys(k)) if (!SUPPORTED.has(key)) throw new Error(`${file}: unsupported field ${key}`);
  const objects: Manifest[] = [];
  for (const resource of k.resources ?? []) {
    const path = join(dir, resource);
    if (!existsSync(path)) throw new Error(`${file}: resource ${resource} does not exist`);
    objects.push(...(statSync(path).isDirectory() ? renderKustomization(path) : readManifests(path)));
  }
  for (const patch of k.patches ?? []) {
    if (!patch.path || Object.keys(patch).length !== 1) throw new Error(`${file}: only { path } patches are supported`);
    for (const p of readManifests(join(dir, patch.path))) {
      const at = objects.findIndex(
        (o) =>
          o.kind === p.kind && o.metadata.name === p.metadata.name && o.metadata.namespace === p.metadata.namespace,
      );
      if (at < 0) throw new Error(`${file}: patch ${patch.path} matches no ${p.kind} ${p.metadata.name}`);
      objects[at] = strategicMerge(objects[at], p) as Manifest;
    }
  }
  const seen = new Set<string>();
  for (const o of objects) {
    const id = `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    if (seen.has(id)) throw new Error(`${dir}: ${id} appears twice`);
    seen.add(id);
  }
  return objects;
}
