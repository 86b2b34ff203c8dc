import { defaultOperators, Liquid, type Template } from 'liquidjs';
import {
  createTemplateEngine,
  renderTemplate,
  STRICT_LIQUID_OPTIONS,
  TEMPLATE_FILTERS,
  type TemplateFilter,
} from './template-engine.js';

/*
 * liquidjs evaluates every tag through several nested generators, about 2 µs a tag; a node with
 * 10,000 load balancers has several hundred thousand tags to print. Most load balancers share a
 * few shapes (a TCP service with three targets, an HTTP service with two routes), and what a
 * template prints differs between them only in the values, never in the lines. So a template is
 * rendered by liquidjs once per shape, with every string and number of the scope replaced by a
 * marker, and that output is kept as a list of text pieces and filter calls. A scope of a known
 * shape is then printed by calling the same filters (the validators) on its own values in that
 * order: the same output liquidjs would give, at the cost of the filters alone.
 *
 * The shape of a scope is everything a template can branch on: the keys of every object, the
 * length of every array, and every boolean, null and undefined. Templates may test values for
 * truthiness (a string or a number is always truthy in Liquid) but not compare them: a
 * comparison that touches a value (`==`, `<`, `contains`, …) throws while a shape is compiled, and
 * so does a value printed without a filter.
 */

type Step = string | number;
type Path = readonly Step[];
type Arg = { readonly path: Path } | { readonly literal: unknown };
type Call = { readonly filter: TemplateFilter; readonly args: readonly Arg[] };
/** A compiled shape: text, or what prints one value of a scope. */
type Part = string | ((scope: unknown) => string);

/** Separates markers in a shape's output; never in a template, never printed by a filter. */
const MARK = '\u0000';
const MAX_SHAPES = 4096;

/** A string or number of the scope while a shape is compiled: where it is, not what it is. */
class Slot {
  constructor(readonly index: number) {}
  /** Printing a value without a filter (`{{ name }}`) is refused: every value passes a validator. */
  toString(): never {
    throw new TypeError('a shape-compiled template prints a scope value only through a filter');
  }
}

/** What one shape's render recorded. */
interface Recording {
  readonly paths: Path[];
  readonly objects: WeakMap<object, Path>;
  readonly calls: Call[];
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function unsupported(value: unknown): never {
  throw new TypeError(`a template scope holds only plain objects, arrays and primitives, not ${String(value)}`);
}

function mix(hash: number, value: number): number {
  return Math.imul(hash ^ value, 0x01000193) >>> 0;
}

/** A hash of the shape of `value` (FNV-1a over its structure); equal shapes hash equal. */
function shapeHash(value: unknown, hash: number): number {
  switch (typeof value) {
    case 'string':
    case 'number':
      return mix(hash, 1);
    case 'boolean':
      return mix(hash, value ? 2 : 3);
    case 'undefined':
      return mix(hash, 4);
  }
  if (value === null) return mix(hash, 5);
  if (Array.isArray(value)) {
    let h = mix(hash, 6);
    for (const item of value) h = shapeHash(item, h);
    return mix(h, 7);
  }
  if (typeof value === 'object' && isPlainObject(value)) {
    let h = mix(hash, 8);
    for (const name in value) h = shapeHash(value[name], mix(h, name.length));
    return mix(h, 9);
  }
  return unsupported(value);
}

/** Whether `a` and `b` have the same shape: the same keys, lengths, booleans, nulls and undefineds. */
function sameShape(a: unknown, b: unknown): boolean {
  const type = typeof a;
  if (type === 'string' || type === 'number') return typeof b === 'string' || typeof b === 'number';
  if (a === null || type !== 'object') return a === b;
  if (typeof b !== 'object' || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameShape(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let keys = 0;
  for (const name in x) {
    if (!Object.hasOwn(y, name) || !sameShape(x[name], y[name])) return false;
    keys++;
  }
  for (const _ in y) keys--;
  return keys === 0;
}

/** A copy of `value` whose strings and numbers are {@link Slot}s, recording every path. */
function shadow(value: unknown, path: Path, recording: Recording): unknown {
  if (typeof value === 'string' || typeof value === 'number') {
    recording.paths.push(path);
    return new Slot(recording.paths.length - 1);
  }
  if (value === null || value === undefined || typeof value === 'boolean') return value;
  let copy: unknown[] | Record<string, unknown>;
  if (Array.isArray(value)) {
    copy = value.map((item, i) => shadow(item, [...path, i], recording));
  } else if (typeof value === 'object' && isPlainObject(value)) {
    copy = {};
    for (const name in value) copy[name] = shadow(value[name], [...path, name], recording);
  } else {
    return unsupported(value);
  }
  recording.objects.set(copy, path);
  return copy;
}

/** A function that reads the value at `path` of a scope. */
function getter(path: Path): (scope: unknown) => unknown {
  return (scope) => {
    let value = scope;
    for (const step of path) value = (value as Record<Step, unknown>)[step];
    return value;
  };
}

/** A function that prints a recorded filter call for a scope: the filter applied to its values. */
function printer({ filter, args }: Call): (scope: unknown) => string {
  const get = args.map((arg) => ('path' in arg ? getter(arg.path) : () => arg.literal));
  const [first, second] = get as [(scope: unknown) => unknown, ((scope: unknown) => unknown) | undefined];
  if (get.length === 1) return (scope) => String(filter(first(scope)));
  if (get.length === 2 && second) return (scope) => String(filter(first(scope), second(scope)));
  return (scope) => {
    const values = get.map((g) => g(scope));
    return String(filter(values[0], ...values.slice(1)));
  };
}

/**
 * A liquidjs template (strict mode, {@link TEMPLATE_FILTERS}) rendered by liquidjs once per shape of
 * its scope and replayed for every other scope of that shape; see the comment at the top of this
 * file. {@link render} and {@link renderDirect} give the same output for every scope.
 */
export class ShapeCompiledTemplate {
  readonly #engine: Liquid;
  readonly #template: Template[];
  readonly #recorder: Liquid;
  readonly #recorderTemplate: Template[];
  /** Compiled shapes by {@link shapeHash}, each with a scope of that shape to tell collisions apart. */
  readonly #shapes = new Map<number, { readonly sample: object; readonly parts: readonly Part[] }[]>();
  #shapeCount = 0;
  #recording: Recording | undefined;

  /** Parses `source` for both the direct and the recording engine. */
  constructor(source: string) {
    if (source.includes(MARK)) throw new TypeError('a template may not contain NUL');
    this.#engine = createTemplateEngine();
    this.#template = this.#engine.parse(source);
    const operators = { ...defaultOperators };
    for (const op of ['==', '!=', '>', '<', '>=', '<=', 'contains'] as const) {
      const compare = defaultOperators[op] as (l: unknown, r: unknown, ctx: unknown) => unknown;
      operators[op] = function* (l: unknown, r: unknown, ctx: unknown) {
        if (l instanceof Slot || r instanceof Slot) {
          throw new TypeError(`a shape-compiled template may not compare scope values (operator ${op})`);
        }
        return yield compare(l, r, ctx);
      } as (typeof operators)[typeof op];
    }
    this.#recorder = new Liquid({ ...STRICT_LIQUID_OPTIONS, operators });
    for (const [name, filter] of Object.entries(TEMPLATE_FILTERS)) {
      this.#recorder.registerFilter(name, (...input: unknown[]) => this.#record(filter, input));
    }
    this.#recorderTemplate = this.#recorder.parse(source);
  }

  /** Renders `scope`: by replaying its shape, compiled first if new. */
  render(scope: object): string {
    const hash = shapeHash(scope, 0x811c9dc5);
    let bucket = this.#shapes.get(hash);
    let parts = bucket?.find((shape) => sameShape(shape.sample, scope))?.parts;
    if (parts === undefined) {
      parts = this.#compile(scope);
      if (this.#shapeCount >= MAX_SHAPES) {
        this.#shapes.clear();
        this.#shapeCount = 0;
        bucket = undefined;
      }
      if (bucket === undefined) {
        bucket = [];
        this.#shapes.set(hash, bucket);
      }
      bucket.push({ sample: scope, parts });
      this.#shapeCount++;
    }
    let out = '';
    for (const part of parts) out += typeof part === 'string' ? part : part(scope);
    return out;
  }

  /** Renders `scope` with liquidjs, tag by tag: the reference {@link render} must match. */
  renderDirect(scope: object): string {
    return renderTemplate(this.#engine, this.#template, scope);
  }

  #compile(scope: object): readonly Part[] {
    const recording: Recording = { paths: [], objects: new WeakMap(), calls: [] };
    const shadowScope = shadow(scope, [], recording) as object;
    this.#recording = recording;
    let text: string;
    try {
      text = renderTemplate(this.#recorder, this.#recorderTemplate, shadowScope);
    } finally {
      this.#recording = undefined;
    }
    const pieces = text.split(MARK);
    const parts: Part[] = [];
    pieces.forEach((piece, i) => {
      if (i % 2 === 0) {
        if (piece !== '') parts.push(piece);
        return;
      }
      parts.push(printer(recording.calls[Number(piece)] as Call));
    });
    return parts;
  }

  #record(filter: TemplateFilter, input: unknown[]): string {
    const recording = this.#recording as Recording;
    const args = input.map((value): Arg => {
      if (value instanceof Slot) return { path: recording.paths[value.index] as Path };
      if (typeof value === 'object' && value !== null) {
        const path = recording.objects.get(value);
        if (path === undefined) return unsupported(value);
        return { path };
      }
      if (typeof value === 'string' && value.includes(MARK)) {
        throw new TypeError('a shape-compiled template passes a filter only scope values and literals');
      }
      return { literal: value };
    });
    recording.calls.push({ filter, args });
    return `${MARK}${recording.calls.length - 1}${MARK}`;
  }
}
