/**
 * The command line of every `colloquy` command, written once. A command declares its flags in one
 * table: a flag that sets a config field names the field, and takes its type, its check and its
 * --help line (the field's `description`) from the command's TypeBox schema, so the help and the
 * config cannot drift; other flags carry their own description. `--set PATH=VALUE` (repeatable)
 * sets any field of the config, with one grammar everywhere: VALUE is parsed as JSON when it
 * parses, else taken as a string (`--set kl.target=6`, `--set env.kwargs.reward=jaques`,
 * `--set rl.seeds=[1,2]`, `--set 'prompt="42"'` for a string of digits); PATH must name a field
 * of the schema. A bad flag is a UsageError: one line naming the flag, exit code 2.
 */
import path from 'node:path';
import { writeSync } from 'node:fs';
import { Type, type TSchema } from '@sinclair/typebox';
import { BadConfig, ColloquyError } from '../core/errors.ts';
import { deepMerge, validateConfig } from '../core/config.ts';

/** A malformed command line (unknown flag, missing or bad value): BAD_CONFIG, exit code 2. */
export class UsageError extends BadConfig {}

interface FlagBase {
  /** Long name, without the dashes. */
  name: string;
  /** One-letter alias (`-h`). */
  short?: string;
  /** Placeholder of the value in the help (`N`, `FILE`); derived from the schema for field flags. */
  metavar?: string;
  /** Given more than once, the values are collected into an array. */
  multiple?: boolean;
}

/** A flag that sets a config field: type, check and help come from the schema. */
export interface FieldFlag extends FlagBase {
  /** The field's path in the config (`train.batchSize`). */
  field: string;
  /** The value is a path: resolved against the current directory. */
  path?: boolean;
  /** Said before the field's description in the help (e.g. what the flag adds to it). */
  note?: string;
}

/** A flag of the command itself (not a config field). */
export interface OptionFlag extends FlagBase {
  type: 'string' | 'boolean' | 'number' | 'integer';
  describe: string;
  choices?: readonly string[];
}

export type Flag = FieldFlag | OptionFlag;

export interface CommandSpec {
  /** How the command is called: `colloquy serve`. */
  command: string;
  /** What follows it in the usage line (default `[options]`). */
  usage?: string;
  /** A paragraph on what the command does. */
  summary: string;
  /** The config schema: field flags and `--set` paths are checked against it. */
  schema?: TSchema;
  flags: readonly Flag[];
  /** Accept `--set PATH=VALUE`; a string is an example shown in the help. */
  set?: boolean | string;
  /** Text after the options (sections, notes). */
  footer?: string;
  /**
   * The config the flags override when no --config is given (the default file, validated): the
   * help shows its values as the defaults. Without it (or when it fails), the schema's defaults.
   */
  defaults?: () => unknown;
}

export interface CommandLine {
  /** `-h` / `--help` was given. */
  help: boolean;
  /** Every given flag by name (field flags too, converted and checked; paths resolved). */
  values: Record<string, unknown>;
  /** `--set` items in order (`a.b=1`). */
  sets: string[];
  /**
   * The config overrides: the `--set` items (checked against `schema`, default the spec's), then
   * the field flags on top, as one nested object to deep-merge over the config file.
   */
  overrides(schema?: TSchema): Record<string, unknown>;
}

const HELP_FLAG: OptionFlag = { name: 'help', short: 'h', type: 'boolean', describe: 'this help' };

const isField = (f: Flag): f is FieldFlag => 'field' in f;

/** Parse `argv` by the spec; throws UsageError naming the flag at the first problem. */
export function parseCommandLine(spec: CommandSpec, argv: readonly string[]): CommandLine {
  const flags = [...spec.flags, HELP_FLAG];
  const byName = new Map(flags.map(f => [f.name, f]));
  const byShort = new Map(flags.filter(f => f.short).map(f => [f.short!, f]));
  const see = `see ${spec.command} --help`;
  const values: Record<string, unknown> = {};
  const fieldValues: { flag: FieldFlag; value: unknown }[] = [];
  const sets: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    let flag: Flag | undefined;
    let inline: string | undefined;
    let shown: string;
    if (arg.startsWith('--') && arg.length > 2) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      if (eq >= 0) inline = arg.slice(eq + 1);
      shown = `--${name}`;
      if (name === 'set' && spec.set) {
        const item = inline ?? takeValue(argv, ++i, shown, 'PATH=VALUE', see);
        sets.push(item);
        continue;
      }
      flag = byName.get(name);
    } else if (/^-[A-Za-z]$/.test(arg)) {
      shown = arg;
      flag = byShort.get(arg.slice(1));
    } else {
      throw new UsageError(`unexpected argument '${arg}' (${spec.command} takes options only; ${see})`);
    }
    if (!flag) throw new UsageError(`Unknown option '${shown}' (${see})`);
    shown = `--${flag.name}`;
    const schema = isField(flag) ? fieldSchemaOf(spec, flag) : null;
    const boolean = isField(flag) ? schema!.type === 'boolean' : flag.type === 'boolean';
    let value: unknown;
    if (boolean) {
      if (inline !== undefined) throw new UsageError(`option '${shown}' takes no value (got '${inline}'; ${see})`);
      value = true;
    } else {
      const raw = inline ?? takeValue(argv, ++i, shown, metavarOf(flag, schema), see);
      value = isField(flag) ? fieldValue(flag, schema!, raw) : optionValue(flag, raw, see);
    }
    if (flag.multiple) {
      const list = (values[flag.name] as unknown[] | undefined) ?? [];
      list.push(value);
      values[flag.name] = list;
    } else values[flag.name] = value;
    if (isField(flag)) {
      const k = fieldValues.findIndex(f => f.flag === flag);
      if (k >= 0) fieldValues.splice(k, 1);
      fieldValues.push({ flag, value: values[flag.name] });
    }
  }
  return {
    help: values.help === true,
    values,
    sets,
    overrides(schema = spec.schema) {
      const out: Record<string, unknown> = {};
      for (const item of sets) {
        const { keys, value } = parseSetItem(item, schema);
        setPath(out, keys, value);
      }
      for (const { flag, value } of fieldValues) setPath(out, flag.field.split('.'), value);
      return out;
    },
  };
}

function takeValue(argv: readonly string[], i: number, shown: string, metavar: string, see: string): string {
  const v = argv[i];
  // A following flag is not a value (`--out --resume`); negative numbers and `-` are.
  if (v === undefined || (v.startsWith('--') && v.length > 2)) throw new UsageError(`option '${shown}' needs a value (${shown} ${metavar}; ${see})`);
  return v;
}

function optionValue(flag: OptionFlag, raw: string, see: string): unknown {
  const shown = `--${flag.name}`;
  if (flag.type === 'number' || flag.type === 'integer') {
    const x = raw.trim() === '' ? NaN : Number(raw);
    if (!Number.isFinite(x) || (flag.type === 'integer' && !Number.isInteger(x))) throw new UsageError(`${shown} must be ${flag.type === 'integer' ? 'an integer' : 'a number'}, got '${raw}' (${see})`);
    return x;
  }
  if (flag.choices && !flag.choices.includes(raw)) throw new UsageError(`${shown} must be one of ${flag.choices.join(', ')}, got '${raw}'`);
  return raw;
}

function fieldValue(flag: FieldFlag, schema: TSchema, raw: string): unknown {
  const value = fromText(schema, raw);
  checkValue(schema, value, `--${flag.name}`, raw);
  return flag.path && typeof value === 'string' ? path.resolve(value) : value;
}

function fieldSchemaOf(spec: CommandSpec, flag: FieldFlag): TSchema {
  if (!spec.schema) throw new Error(`${spec.command}: flag --${flag.name} names field ${flag.field} but the command has no schema`);
  const s = subSchema(spec.schema, flag.field.split('.'), `--${flag.name}`);
  if (!s) throw new Error(`${spec.command}: --${flag.name}: ${flag.field} has no schema of its own`);
  return flag.multiple ? (s.items as TSchema) : s;
}

// ------------------------------------------------------------------------------------------------
// --set

/** `a.b.c=VALUE` → keys and value (JSON when it parses, else the string), checked against the schema. */
export function parseSetItem(item: string, schema?: TSchema): { keys: string[]; value: unknown } {
  const eq = item.indexOf('=');
  if (eq <= 0) throw new UsageError(`--set expects PATH=VALUE, got '${item}'`);
  const keys = item.slice(0, eq).split('.');
  if (keys.some(k => k === '')) throw new UsageError(`--set: bad field path '${item.slice(0, eq)}'`);
  const raw = item.slice(eq + 1);
  const value = jsonOrString(raw);
  const label = `--set ${keys.join('.')}`;
  const leaf = schema ? subSchema(schema, keys, label) : null;
  if (leaf) checkValue(leaf, value, label, raw);
  return { keys, value };
}

/** `--set` items → one nested overrides object (later items win; objects are deep-merged). */
export function parseSet(items: readonly string[], schema?: TSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of items) {
    const { keys, value } = parseSetItem(item, schema);
    setPath(out, keys, value);
  }
  return out;
}

function jsonOrString(raw: string): unknown {
  try { return JSON.parse(raw); } catch { return raw; }
}

function setPath(out: Record<string, unknown>, keys: readonly string[], value: unknown): void {
  let o = out;
  for (const k of keys.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null || Array.isArray(o[k])) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  const last = keys[keys.length - 1]!;
  o[last] = deepMerge(o[last], value);
}

// ------------------------------------------------------------------------------------------------
// Schemas (read as JSON Schema: TypeBox's objects are JSON Schema)

type Json = TSchema & {
  type?: string; properties?: Record<string, TSchema>; patternProperties?: Record<string, TSchema>;
  additionalProperties?: boolean | TSchema; anyOf?: TSchema[]; const?: unknown; items?: TSchema;
};

/**
 * The schema of the field at `keys`; null when the path goes below a field of any shape
 * (`env.kwargs.reward`: kwargs are free-form). Throws UsageError when the schema has no such field.
 */
export function subSchema(root: TSchema, keys: readonly string[], label: string): TSchema | null {
  let s = root as Json;
  for (let i = 0; i < keys.length; i++) {
    const next = childSchema(s, keys[i]!);
    if (next === null) return null;
    if (next === undefined) {
      const where = keys.slice(0, i).join('.');
      const names = Object.keys(objectMembers(s).reduce((a, o) => ({ ...a, ...o.properties }), {} as Record<string, TSchema>));
      const hint = names.length ? ` (fields${where ? ` of ${where}` : ''}: ${names.join(', ')})` : where ? ` (${where} has no fields)` : '';
      throw new UsageError(`${label}: no config field '${keys.slice(0, i + 1).join('.')}'${hint}`);
    }
    s = next as Json;
  }
  return s;
}

function objectMembers(s: Json): Json[] {
  if (s.anyOf) return (s.anyOf as Json[]).flatMap(objectMembers);
  return s.type === 'object' ? [s] : [];
}

/** The schema of `key` below `s`: a schema, null (anything goes), or undefined (no such field). */
function childSchema(s: Json, key: string): TSchema | null | undefined {
  if (s.anyOf) {
    const objs = objectMembers(s);
    if (objs.length === 0) return undefined;
    const hits = objs.map(o => childSchema(o, key)).filter(c => c !== undefined);
    if (hits.length === 1) return hits[0];
    return hits.length ? null : undefined;
  }
  if (s.type === 'object' || s.properties || s.patternProperties) {
    if (s.properties && key in s.properties) return s.properties[key]!;
    if (s.patternProperties) {
      for (const [pattern, schema] of Object.entries(s.patternProperties)) if (new RegExp(pattern).test(key)) return schema;
      return undefined;
    }
    if (s.additionalProperties === false) return undefined;
    return typeof s.additionalProperties === 'object' ? s.additionalProperties : null;
  }
  // No type at all (Type.Unknown): any value, any depth.
  if (s.type === undefined && s.const === undefined) return null;
  return undefined;
}

/** Accepts any string as such (then a flag's text is never parsed as JSON: `--token 1234`). */
function takesString(s: Json): boolean {
  if (s.anyOf) return (s.anyOf as Json[]).some(takesString);
  return s.type === 'string' && s.const === undefined;
}

function fromText(schema: TSchema, raw: string): unknown {
  return takesString(schema as Json) ? raw : jsonOrString(raw);
}

const wrappers = new WeakMap<TSchema, TSchema>();

/** Check a value against a field's schema; the error names the flag and the value given. */
function checkValue(schema: TSchema, value: unknown, label: string, raw: string): void {
  const s = schema as Json;
  const consts = s.anyOf?.every(m => (m as Json).const !== undefined) ? (s.anyOf as Json[]).map(m => m.const) : null;
  if (consts) {
    if (!consts.includes(value)) throw new UsageError(`${label} must be one of ${consts.map(c => String(c)).join(', ')}, got '${raw}'`);
    return;
  }
  let wrapper = wrappers.get(schema);
  if (!wrapper) { wrapper = Type.Object({ value: schema }); wrappers.set(schema, wrapper); }
  try {
    validateConfig(wrapper, { value }, label);
  } catch (err) {
    if (!(err instanceof BadConfig)) throw err;
    const msgs = ((err.details?.errors as string[] | undefined) ?? [err.message]).map(m => m.replace(/^\/value\/?/, '').trim());
    // An anyOf failure lists every branch; say which types would do instead.
    const text = msgs.some(m => m.includes('must match a schema in anyOf')) ? `must be ${typeName(s)}` : [...new Set(msgs.map(plain))].join('; ');
    throw new UsageError(`${label} ${text}, got '${raw}'`);
  }
}

/** ajv's "must be integer" as a sentence. */
function plain(msg: string): string {
  return msg.replace(/must be (integer|number|string|boolean|object|array|null)\b/, (_, t: string) => `must be ${typeName({ type: t } as Json)}`);
}

function typeName(s: Json): string {
  if (s.anyOf) return (s.anyOf as Json[]).map(typeName).join(' or ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.type === 'integer') return 'an integer';
  if (s.type === 'boolean') return 'true or false';
  if (s.type === 'object') return 'a JSON object';
  if (s.type === 'array') return 'a JSON array';
  return s.type ? (s.type === 'null' ? 'null' : `a ${s.type}`) : 'a value';
}

// ------------------------------------------------------------------------------------------------
// Help

function metavarOf(flag: Flag, schema: TSchema | null): string {
  if (flag.metavar) return flag.metavar;
  if (!isField(flag)) return flag.choices ? flag.choices.join('|') : flag.type === 'number' ? 'X' : flag.type === 'integer' ? 'N' : 'VALUE';
  const s = schema as Json;
  if (s.anyOf?.every(m => (m as Json).const !== undefined)) {
    const v = (s.anyOf as Json[]).map(m => String(m.const)).join('|');
    if (v.length <= 24) return v;
  }
  const t = s.anyOf ? (s.anyOf as Json[]).find(m => m.type !== 'null' && m.const === undefined)?.type : s.type;
  return t === 'integer' ? 'N' : t === 'number' ? 'X' : t === 'object' || t === 'array' ? 'JSON' : 'VALUE';
}

/** `(one of a, b; default a)`: the choices of a union of literals, and the default. */
function defaultNote(s: Json, dflt: unknown): string {
  const parts: string[] = [];
  if (s.anyOf?.every(m => (m as Json).const !== undefined)) parts.push(`one of ${(s.anyOf as Json[]).map(m => String(m.const)).join(', ')}`);
  const d = dflt;
  const none = d === undefined || d === null || d === false || (typeof d === 'object' && Object.keys(d as object).length === 0);
  const text = none ? '' : typeof d === 'string' ? d : JSON.stringify(d);
  if (text && text.length <= 40) parts.push(`default ${text}`);
  return parts.length ? ` (${parts.join('; ')})` : '';
}

/** The description of a flag: a field flag's is its schema field's, with the default. */
export function describeFlag(spec: CommandSpec, flag: Flag, defaults?: unknown): string {
  if (!isField(flag)) return flag.describe;
  const field = subSchema(spec.schema!, flag.field.split('.'), `--${flag.name}`) as Json;
  const desc = (field as { description?: string }).description ?? '';
  const keys = flag.field.split('.');
  let d: unknown = defaults;
  for (const k of keys) d = d !== null && typeof d === 'object' ? (d as Record<string, unknown>)[k] : undefined;
  return `${desc}${defaultNote(field, defaults === undefined ? (field as { default?: unknown }).default : d)}${flag.note ? `; ${flag.note}` : ''}`;
}

function loadDefaults(spec: CommandSpec): unknown {
  try { return spec.defaults?.(); } catch { return undefined; } // a broken default file: the schema's defaults
}

const WIDTH = 100;
const COL = 24;

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (const word of para.split(/\s+/).filter(Boolean)) {
      if (line && line.length + 1 + word.length > width) { out.push(line); line = word; } else line = line ? `${line} ${word}` : word;
    }
    out.push(line);
  }
  return out;
}

/** The --help text: usage, summary, one line per flag (field flags described by the schema). */
export function helpText(spec: CommandSpec): string {
  const rows: [string, string][] = [];
  const defaults = loadDefaults(spec);
  for (const f of spec.flags) {
    const schema = isField(f) ? fieldSchemaOf(spec, f) : null;
    const boolean = isField(f) ? (schema as Json).type === 'boolean' : f.type === 'boolean';
    rows.push([`${f.short ? `-${f.short}, ` : ''}--${f.name}${boolean ? '' : ` ${metavarOf(f, schema)}`}`, describeFlag(spec, f, defaults) + (f.multiple ? ' (repeatable)' : '')]);
  }
  if (spec.set) {
    const example = typeof spec.set === 'string' ? `, e.g. --set ${spec.set}` : '';
    rows.push(['--set PATH=VALUE', `set any config field (repeatable; VALUE is JSON when it parses, else a string)${example}`]);
  }
  rows.push(['-h, --help', HELP_FLAG.describe]);
  const lines = [`usage: ${spec.command} ${spec.usage ?? '[options]'}`, '', ...wrap(spec.summary, WIDTH), '', 'options:'];
  for (const [left, desc] of rows) {
    const body = wrap(desc, WIDTH - COL - 2);
    const head = `  ${left}`;
    if (head.length < COL) lines.push(`${head.padEnd(COL)}${body[0] ?? ''}`);
    else { lines.push(head); lines.push(`${' '.repeat(COL)}${body[0] ?? ''}`); }
    for (const b of body.slice(1)) lines.push(`${' '.repeat(COL)}${b}`);
  }
  if (spec.footer) lines.push('', spec.footer);
  return lines.join('\n');
}

// ------------------------------------------------------------------------------------------------
// Failures

/**
 * A parent colloquy process that runs this one (the server's first-start pretraining) reads the
 * failure line on the fd named by COLLOQUY_ERROR_FD and reports it as its own: one line in all.
 */
let errorFd: number | null = null;
export function takeErrorFd(): void {
  const fd = Number(process.env.COLLOQUY_ERROR_FD);
  delete process.env.COLLOQUY_ERROR_FD; // not for this process's own children
  if (Number.isInteger(fd) && fd > 2) errorFd = fd;
}

/** Print a failure as one coded line (and the stack with `debug`); returns the exit code. */
export function reportError(err: unknown, debug = process.env.COLLOQUY_DEBUG === '1'): number {
  const coded = err instanceof ColloquyError;
  const message = err instanceof Error ? err.message : String(err);
  // One line: a multi-line message (a child's output, a JSON dump) is folded.
  const line = `error ${coded ? err.code : 'INTERNAL'}: ${message.replace(/\s*\n\s*/g, ' ').trim() || (err as Error)?.name || 'failed'}`;
  let written = false;
  if (errorFd !== null) { try { writeSync(errorFd, `${line}\n`); written = true; } catch { /* the parent is gone: say it here */ } }
  if (!written) console.error(line);
  if (debug && err instanceof Error && err.stack) console.error(err.stack);
  return coded ? 2 : 1;
}
