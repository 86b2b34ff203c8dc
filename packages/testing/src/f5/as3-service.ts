import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { Ajv, type SchemaValidateFunction, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { F5RestError, restError } from './f5-error.js';

/** The AS3 version the emulator reports. */
export const as3Version = '3.56.0';

type Json = Record<string, unknown>;

interface Task {
  readonly id: string;
  readonly results: Json[];
  readonly declaration: Json;
  pollsLeft: number;
}

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function invalid(errors: string[]): F5RestError {
  return new F5RestError(422, { code: 422, message: 'declaration is invalid', errors });
}

/** The classes an AS3 pointer may point to, from the schema's `f5PostProcess` pointer data. */
function pointerClasses(data: unknown): string[] | undefined {
  const cls = isObject(data) && isObject(data.properties) ? data.properties.class : undefined;
  if (!isObject(cls)) return undefined;
  if (typeof cls.const === 'string') return [cls.const];
  return Array.isArray(cls.enum) ? cls.enum.map(String) : undefined;
}

/**
 * Resolves an AS3 pointer as AS3 does (`f5PostProcess` tag `pointer`): a name relative to the
 * pointing object's Application, or an absolute `/Tenant/Application/name` into the same
 * Application, the tenant's `Shared` or `/Common/Shared`; the target must exist and have one of
 * the classes the schema names. Returns AS3's message for a bad pointer, undefined for a good
 * one. `@`- and number-relative pointers are not resolved (accepted as they are).
 */
function pointerProblem(
  pointer: string,
  at: readonly string[],
  adc: Json,
  classes: string[] | undefined,
): string | undefined {
  if (pointer === '' || pointer.startsWith('@') || /^[0-9]/.test(pointer) || at.length < 4) return undefined;
  const elems = pointer.startsWith('/') ? pointer.split('/') : [...at.slice(0, 3), ...pointer.split('/')];
  const leaf = elems.pop() as string;
  if (elems.length < 3) return undefined;
  let obj: unknown = adc;
  for (let i = 1; i < elems.length; i++) {
    const name = elems[i] as string;
    if (!isObject(obj) || !isObject(obj[name])) return `contains path to non-existent object ${name}`;
    if ((i === 1 && name !== 'Common' && name !== at[1]) || (i === 2 && name !== 'Shared' && name !== at[2])) {
      return 'must contain path pointing into same Application (or /same-Tenant/Shared or /Common/Shared)';
    }
    obj = obj[name];
  }
  const target = isObject(obj) ? obj[leaf] : undefined;
  if (target === undefined) return `contains path to non-existent object ${leaf}`;
  if (classes && !(isObject(target) && classes.includes(String(target.class)))) {
    return `AS3 pointer ${pointer} does not point to required object type`;
  }
  return undefined;
}

/**
 * An ajv validator for F5's AS3 schema (draft-07, `strict: false`, defaults applied as AS3 does).
 * It also checks the schema's AS3 pointers (`f5PostProcess` tag `pointer`, e.g. a Service's
 * `pool` or a `persistenceMethods` entry `{ use }`) as AS3 does after validation: the object
 * pointed to must exist and be of the class the schema asks for.
 */
export function as3SchemaValidator(schemaPath: string): ValidateFunction {
  const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Json;
  const ajv = new Ajv({ strict: false, allErrors: true, useDefaults: true });
  const checkPointer: SchemaValidateFunction = (tag: unknown, data: unknown, _parent, cxt): boolean => {
    if (!isObject(tag) || tag.tag !== 'pointer' || typeof data !== 'string' || !cxt) return true;
    const root = cxt.rootData as unknown;
    const wrapped = isObject(root) && root.class === 'AS3';
    const adc = wrapped ? root.declaration : root;
    if (!isObject(adc)) return true;
    const at = cxt.instancePath.split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (wrapped) at.splice(1, 1); // drop `declaration`
    const problem = pointerProblem(data, at, adc, pointerClasses(tag.data));
    if (problem === undefined) return true;
    checkPointer.errors = [{ keyword: 'f5PostProcess(pointer)', message: problem, params: {} }];
    return false;
  };
  ajv.addKeyword({ keyword: 'f5PostProcess', validate: checkPointer, errors: true });
  const addFormats = addFormatsModule as unknown as (a: Ajv) => void;
  addFormats(ajv);
  ajv.addFormat('f5ip', (value: string) => {
    const match = /^([^%/]+)(%\d+)?(\/\d+)?$/.exec(value);
    return value === '' || value === 'any' || (match !== null && isIP(match[1] as string) !== 0);
  });
  for (const name of ['f5bigip', 'f5pointer']) ajv.addFormat(name, () => true);
  return ajv.compile(schema);
}

/**
 * The AS3 service (`/mgmt/shared/appsvcs/*`): declarations per tenant, "success" or
 * "no change" per tenant, async tasks that read "in progress" first, tenant deletion, and the
 * per-application API (`/declare/<tenant>/applications[/<app>]`, AS3 3.50+). With the schema,
 * AS3 pointers are resolved too (see {@link as3SchemaValidator}). Declarations are stored as
 * declared; they are not expanded into LTM objects.
 */
export class As3Service {
  readonly #tenants = new Map<string, Json>();
  readonly #tasks = new Map<string, Task>();
  readonly #validate: ValidateFunction | undefined;
  readonly #taskPolls: number;
  #nextTask = 1;

  /**
   * @param validate - validates whole declarations (F5's schema); structural checks only when absent.
   * @param taskPolls - how many task reads answer "in progress" before the result.
   */
  constructor(validate: ValidateFunction | undefined, taskPolls: number) {
    this.#validate = validate;
    this.#taskPolls = taskPolls;
  }

  /** The stored declarations by tenant (a copy). */
  tenants(): Record<string, Json> {
    return structuredClone(Object.fromEntries(this.#tenants));
  }

  /** Answers one `/mgmt/shared/appsvcs/...` call. */
  handle(
    method: string,
    path: string,
    query: URLSearchParams,
    body: Json | undefined,
  ): { status: number; body: unknown } {
    const rest = path.slice('/mgmt/shared/appsvcs'.length).split('/').filter(Boolean);
    const async = query.get('async') === 'true';
    if (rest[0] === 'info' && method === 'GET') {
      return {
        status: 200,
        body: { version: as3Version, release: '5', schemaCurrent: as3Version, schemaMinimum: '3.0.0' },
      };
    }
    if (rest[0] === 'task' && rest[1] !== undefined && method === 'GET') return this.#readTask(rest[1]);
    if (rest[0] !== 'declare') throw restError(404, `Public URI path not registered: ${path}`);
    const [, tenant, sub, app, ...extra] = rest;
    if (extra.length > 0) throw restError(404, `Public URI path not registered: ${path}`);
    if (tenant === undefined) {
      if (method === 'GET') return { status: 200, body: this.#declaration() };
      if (method === 'POST') return this.#finish(this.#declare(body), async);
      throw restError(405, `Method ${method} not allowed on ${path}`);
    }
    if (sub === undefined) {
      if (method === 'GET') {
        const stored = this.#tenants.get(tenant);
        if (!stored) return { status: 204, body: undefined };
        return { status: 200, body: this.#declaration(tenant) };
      }
      if (method === 'DELETE') {
        const existed = this.#tenants.delete(tenant);
        return this.#finish([{ code: 200, message: existed ? 'success' : 'no change', tenant, runTime: 1 }], async);
      }
      throw restError(405, `Method ${method} not allowed on ${path}`);
    }
    if (sub !== 'applications') throw restError(404, `Public URI path not registered: ${path}`);
    if (app === undefined) {
      if (method === 'GET') return { status: 200, body: this.#apps(tenant) };
      if (method === 'POST') return this.#finish(this.#declareApps(tenant, body), async);
      throw restError(405, `Method ${method} not allowed on ${path}`);
    }
    const apps = this.#tenants.get(tenant);
    if (method === 'GET') {
      const found = apps?.[app];
      if (!isObject(found))
        throw new F5RestError(404, { code: 404, message: `specified Application '${app}' not found in '${tenant}'` });
      return { status: 200, body: { [app]: found } };
    }
    if (method === 'DELETE') {
      if (!apps || !isObject(apps[app])) {
        throw new F5RestError(404, { code: 404, message: `specified Application '${app}' not found in '${tenant}'` });
      }
      const next = { ...apps };
      delete next[app];
      this.#tenants.set(tenant, next);
      return this.#finish([{ code: 200, message: 'success', tenant, runTime: 1 }], async);
    }
    throw restError(405, `Method ${method} not allowed on ${path}`);
  }

  #declaration(only?: string): Json {
    const out: Json = { class: 'ADC', schemaVersion: as3Version, id: 'emulator', updateMode: 'selective' };
    for (const [tenant, apps] of this.#tenants)
      if (only === undefined || only === tenant) out[tenant] = { class: 'Tenant', ...apps };
    return out;
  }

  #apps(tenant: string): Json {
    const apps = this.#tenants.get(tenant) ?? {};
    return Object.fromEntries(Object.entries(apps).filter(([, v]) => isObject(v) && v.class === 'Application'));
  }

  #checkTenant(name: string, tenant: unknown, errors: string[]): void {
    if (!isObject(tenant) || tenant.class !== 'Tenant') {
      errors.push(`/${name}: must be an object with class Tenant`);
      return;
    }
    for (const [key, value] of Object.entries(tenant)) {
      if (isObject(value) && value.class !== 'Application') errors.push(`/${name}/${key}: must have class Application`);
      if (isObject(value) && value.class === 'Application') this.#checkApp(`/${name}/${key}`, value, errors);
    }
  }

  #checkApp(where: string, app: Json, errors: string[]): void {
    for (const [key, item] of Object.entries(app)) {
      if (isObject(item) && typeof item.class !== 'string') errors.push(`${where}/${key}: must have a class`);
    }
  }

  /**
   * Validates a whole declaration against the schema, on a copy (defaults are filled in). A bare
   * ADC is wrapped in an AS3 request first, as AS3 does: the schema's defaults for one `oneOf`
   * branch would otherwise leak into the other.
   */
  #validateWhole(declaration: Json): void {
    if (!this.#validate) return;
    const wrapped =
      declaration.class === 'ADC' ? { class: 'AS3', action: 'deploy', persist: true, declaration } : declaration;
    if (!this.#validate(structuredClone(wrapped))) {
      throw invalid(
        (this.#validate.errors ?? []).slice(0, 20).map((e) => `${e.instancePath}: ${e.message ?? 'invalid'}`),
      );
    }
  }

  #declare(body: Json | undefined): Json[] {
    if (!isObject(body)) throw invalid(['/: must be an object']);
    const adc = body.class === 'AS3' ? body.declaration : body;
    if (!isObject(adc) || adc.class !== 'ADC')
      throw invalid(['/: must be class AS3 with an ADC declaration, or class ADC']);
    if (typeof adc.schemaVersion !== 'string') throw invalid(["/: must have required property 'schemaVersion'"]);
    const errors: string[] = [];
    const tenants = Object.entries(adc).filter(([, v]) => isObject(v) && v.class === 'Tenant');
    for (const [name, tenant] of tenants) this.#checkTenant(name, tenant, errors);
    if (errors.length > 0) throw invalid(errors);
    this.#validateWhole(body);
    const results: Json[] = [];
    for (const [name, tenant] of tenants) {
      const { class: _c, ...apps } = tenant as Json;
      const before = JSON.stringify(this.#tenants.get(name) ?? null);
      this.#tenants.set(name, apps);
      results.push({
        code: 200,
        message: before === JSON.stringify(apps) ? 'no change' : 'success',
        tenant: name,
        runTime: 1,
      });
    }
    if (adc.updateMode === 'complete') {
      for (const name of [...this.#tenants.keys()]) {
        if (!tenants.some(([t]) => t === name)) {
          this.#tenants.delete(name);
          results.push({ code: 200, message: 'success', tenant: name, runTime: 1 });
        }
      }
    }
    return results;
  }

  #declareApps(tenant: string, body: Json | undefined): Json[] {
    if (!isObject(body)) throw invalid(['/: must be an object']);
    if (typeof body.schemaVersion !== 'string') throw invalid(["/: must have required property 'schemaVersion'"]);
    const apps = Object.entries(body).filter(([, v]) => isObject(v));
    const errors: string[] = [];
    for (const [name, app] of apps) {
      if ((app as Json).class !== 'Application') errors.push(`/${tenant}/${name}: must have class Application`);
      else this.#checkApp(`/${tenant}/${name}`, app as Json, errors);
    }
    if (apps.length === 0) errors.push('/: no Application in the request');
    if (errors.length > 0) throw invalid(errors);
    const current = this.#tenants.get(tenant) ?? {};
    const next = { ...current, ...Object.fromEntries(apps) };
    this.#validateWhole({
      class: 'ADC',
      schemaVersion: body.schemaVersion,
      id: 'per-app',
      [tenant]: { class: 'Tenant', ...next },
    });
    const changed = JSON.stringify(current) !== JSON.stringify(next);
    this.#tenants.set(tenant, next);
    return [{ code: 200, message: changed ? 'success' : 'no change', tenant, runTime: 1 }];
  }

  #finish(results: Json[], async: boolean): { status: number; body: unknown } {
    if (!async) return { status: 200, body: { results, declaration: {} } };
    const id = `${Date.now().toString(16)}-${(this.#nextTask++).toString(16).padStart(4, '0')}`;
    this.#tasks.set(id, { id, results, declaration: {}, pollsLeft: this.#taskPolls });
    return {
      status: 202,
      body: {
        id,
        results: [{ message: 'Declaration successfully submitted', tenant: '', code: 0, runTime: 0 }],
        declaration: {},
        selfLink: `https://localhost/mgmt/shared/appsvcs/task/${id}`,
      },
    };
  }

  #readTask(id: string): { status: number; body: unknown } {
    const task = this.#tasks.get(id);
    if (!task) throw new F5RestError(404, { code: 404, message: `task ID ${id} does not exist` });
    if (task.pollsLeft > 0) {
      task.pollsLeft -= 1;
      return { status: 200, body: { id, results: [{ message: 'in progress', tenant: '', code: 0 }], declaration: {} } };
    }
    return { status: 200, body: { id, results: task.results, declaration: task.declaration } };
  }
}
