/**
 * Typed, validated configs: a TypeBox schema is both the JSON Schema that validates a config file
 * and the TypeScript type of the result. Defaults in the schema fill missing fields; unknown
 * fields and wrong types are rejected with a BAD_CONFIG error that names the field.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import type { Static, TSchema } from '@sinclair/typebox';
import { BadConfig } from './errors.ts';

const ajv = new Ajv({ useDefaults: true, allErrors: true, coerceTypes: false, strict: false });
const compiled = new WeakMap<TSchema, ValidateFunction>();

export { CONFIG_DIR } from './paths.ts';

/** Validate `value` against `schema` (filling defaults, in place on a copy); throw BAD_CONFIG on failure. */
export function validateConfig<S extends TSchema>(schema: S, value: unknown, what = 'config'): Static<S> {
  let validate = compiled.get(schema);
  if (!validate) { validate = ajv.compile(schema); compiled.set(schema, validate); }
  const copy = structuredClone(value ?? {});
  if (!validate(copy)) {
    const msgs = (validate.errors ?? []).map(e => `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` '${String(e.params.additionalProperty)}'` : ''}`);
    throw new BadConfig(`invalid ${what}: ${msgs.join('; ')}`, { errors: msgs });
  }
  return copy as Static<S>;
}

/** Read a JSON config file, deep-merge overrides (e.g. from CLI flags) and validate. */
export function loadConfig<S extends TSchema>(schema: S, file: string | undefined, overrides: Record<string, unknown> = {}): Static<S> {
  let base: unknown = {};
  if (file) {
    let text: string;
    try { text = readFileSync(file, 'utf8'); } catch (err) { throw new BadConfig(`cannot read config ${file}: ${(err as Error).message}`); }
    try { base = JSON.parse(text); } catch (err) { throw new BadConfig(`config ${file} is not valid JSON: ${(err as Error).message}`); }
  }
  return validateConfig(schema, deepMerge(base, overrides), file ?? 'config');
}

export function deepMerge(a: unknown, b: unknown): unknown {
  if (b === undefined) return a;
  if (isPlain(a) && isPlain(b)) {
    const out: Record<string, unknown> = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = deepMerge(a[k], v);
    return out;
  }
  return b;
}

function isPlain(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
