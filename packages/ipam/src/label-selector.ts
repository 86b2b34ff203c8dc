/** One requirement of a {@link LabelSelector}, as in Kubernetes. */
export interface LabelSelectorRequirement {
  /** The label key. */
  readonly key: string;
  /** `In` / `NotIn` (need `values`), `Exists` / `DoesNotExist` (no `values`). */
  readonly operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  /** The values for `In` and `NotIn`. */
  readonly values?: readonly string[];
}

/** A Kubernetes label selector: every `matchLabels` pair and every expression must match. */
export interface LabelSelector {
  /** Labels that must be present with exactly these values. */
  readonly matchLabels?: Readonly<Record<string, string>>;
  /** Further requirements, all of which must hold. */
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

/** True when `labels` satisfy `selector` (an empty selector matches everything). */
export function matchesSelector(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, req.key);
    const value = labels[req.key];
    switch (req.operator) {
      case 'In':
        if (!has || value === undefined || !(req.values ?? []).includes(value)) return false;
        break;
      case 'NotIn':
        if (has && value !== undefined && (req.values ?? []).includes(value)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}
