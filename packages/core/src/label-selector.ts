import type { LabelSelectorJson } from './gateway-api-types.js';

const OPERATORS: Record<string, (value: string | undefined, values: readonly string[]) => boolean> = {
  In: (v, values) => v !== undefined && values.includes(v),
  NotIn: (v, values) => v === undefined || !values.includes(v),
  Exists: (v) => v !== undefined,
  DoesNotExist: (v) => v === undefined,
};

/**
 * Whether `labels` satisfy a Kubernetes label selector (an empty selector matches everything;
 * an unknown operator matches nothing).
 */
export function matchesLabelSelector(selector: LabelSelectorJson, labels: Readonly<Record<string, string>>): boolean {
  const pairs = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  return (
    pairs &&
    (selector.matchExpressions ?? []).every((e) => {
      const test = OPERATORS[e.operator];
      return test?.(Object.hasOwn(labels, e.key) ? labels[e.key] : undefined, e.values ?? []) === true;
    })
  );
}
