/**
 * Protocol v1 (DESIGN.md "The wire protocol"): the request schemas, the result shapes, and the
 * compiled validators. Each schema is both what the server validates every frame against and the
 * TypeScript type of the request, so the two cannot drift. The client imports the types from here.
 *
 * Frames are JSON text (a session made with obsEncoding 'binary' also uses binary frames:
 * protocol/binary.ts). Every request carries an `id` (a finite number or a string of at most 256
 * characters); the reply carries the same `id` and either `ok: true, result` or `ok: false,
 * error: {code, message}`. Requests may be pipelined; those on one session are processed in order.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { AutoresetMode, EnvSpec, VectorResetResult, VectorStepResult } from '../env/core.ts';
import type { SpaceJSON } from '../env/spaces.ts';
import type { ErrorBody } from '../core/errors.ts';

export const PROTOCOL_VERSION = 1;
export const WS_PATH = '/v1/env';

/** Largest seed passed to the env as it is (sub-env i of a vector env gets `seed + i`, which must stay exact). */
export const MAX_SEED = 2 ** 52;
/**
 * The server's RNG (core/rng.ts, sfc32) reads a seed modulo 2^32 (`Math.floor(seed) >>> 0`): seeds
 * that agree modulo 2^32 give the same trajectory. Larger seeds are reduced to that before they
 * reach the env (`wireSeed`), so any non-negative integer is a seed.
 */
export const SEED_MODULUS = 2 ** 32;
/** What a client needs to know about the server's seeding (in `state` results). */
export const RNG_FACTS = { algorithm: 'sfc32', seedModulus: SEED_MODULUS, perEnvSeed: 'seed + i' } as const;
/** Nesting depth allowed inside `kwargs` and `options`. */
export const MAX_DEPTH = 32;

// `type: ['number', 'string']` validates faster than an anyOf; maxLength applies to strings only,
// the bounds to numbers only (they exclude ±Infinity, which JSON.parse makes of 1e999).
const Id = Type.Unsafe<number | string>({ type: ['number', 'string'], maxLength: 256, minimum: -Number.MAX_VALUE, maximum: Number.MAX_VALUE });
const SessionId = Type.String({ minLength: 1, maxLength: 128 });
const Obj = Type.Record(Type.String(), Type.Unknown());
/** A seed: a non-negative integer (finite: ajv's integer alone takes the Infinity of 1e999); one above 2^53, not exact as a JSON number, may travel as a decimal string. */
const Seed = Type.Union([Type.Integer({ minimum: 0, maximum: Number.MAX_VALUE }), Type.String({ pattern: '^[0-9]{1,1000}$' })]);

export const MakeRequest = Type.Object({
  id: Id,
  op: Type.Literal('make'),
  env: Type.String({ minLength: 1, maxLength: 200 }),
  kwargs: Type.Optional(Obj),
  numEnvs: Type.Optional(Type.Integer({ minimum: 1, maximum: 2 ** 31 - 1 })),
  autoresetMode: Type.Optional(Type.Union([Type.Literal('next-step'), Type.Literal('same-step'), Type.Literal('disabled')])),
  /**
   * How `observations` travel in reset/step results: `json` (default) as arrays; `f64` (Box
   * observation spaces only) as one PackedArray — exact float64 values, base64, much cheaper to
   * encode and decode than JSON numbers when observations are many floats; `binary` (any space):
   * reset and step replies come as binary frames (protocol/binary.ts: observations, rewards,
   * terminated, truncated as little-endian typed arrays, the same numbers), and the client may
   * send steps as binary frames too.
   */
  obsEncoding: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('f64'), Type.Literal('binary')])),
}, { additionalProperties: false });

export const ResetRequest = Type.Object({
  id: Id,
  op: Type.Literal('reset'),
  session: SessionId,
  /** One seed (sub-env i gets `seed + i`) or one per sub-env (null: that one continues its stream), as Gymnasium's. */
  seed: Type.Optional(Type.Union([Seed, Type.Array(Type.Union([Seed, Type.Null()]), { maxItems: 2 ** 31 - 1 })])),
  options: Type.Optional(Obj),
}, { additionalProperties: false });

export const StepRequest = Type.Object({
  id: Id,
  op: Type.Literal('step'),
  session: SessionId,
  actions: Type.Array(Type.Unknown()),
}, { additionalProperties: false });

export const CloseRequest = Type.Object({
  id: Id,
  op: Type.Literal('close'),
  session: SessionId,
}, { additionalProperties: false });

/** A session's state (as Gymnasium's and OpenEnv's `state()`): answered in order with the session's other requests. */
export const StateRequest = Type.Object({
  id: Id,
  op: Type.Literal('state'),
  session: SessionId,
}, { additionalProperties: false });

export const PingRequest = Type.Object({
  id: Id,
  op: Type.Literal('ping'),
}, { additionalProperties: false });

export const ResumeRequest = Type.Object({
  id: Id,
  op: Type.Literal('resume'),
  session: SessionId,
  /** The token returned by `make`. */
  token: Type.String({ minLength: 1, maxLength: 128 }),
  /** Ids of this session's requests whose replies the client has not received. */
  pending: Type.Optional(Type.Array(Id, { maxItems: 65536 })),
}, { additionalProperties: false });

export type MakeRequest = Static<typeof MakeRequest>;
export type ResetRequest = Static<typeof ResetRequest>;
export type StepRequest = Static<typeof StepRequest>;
export type CloseRequest = Static<typeof CloseRequest>;
export type StateRequest = Static<typeof StateRequest>;
export type PingRequest = Static<typeof PingRequest>;
export type ResumeRequest = Static<typeof ResumeRequest>;
export type Request = MakeRequest | ResetRequest | StepRequest | CloseRequest | StateRequest | PingRequest | ResumeRequest;
export type Op = Request['op'];
/** Requests queued on a session (processed in order). */
export type SessionRequest = ResetRequest | StepRequest | CloseRequest | StateRequest;
export type RequestId = number | string;

const SCHEMAS = {
  make: MakeRequest, reset: ResetRequest, step: StepRequest, close: CloseRequest, state: StateRequest, ping: PingRequest, resume: ResumeRequest,
} satisfies Record<Op, TSchema>;
export const OPS = Object.keys(SCHEMAS) as Op[];

// ---- results ----

export type ObsEncoding = 'json' | 'f64' | 'binary';

/** N flat float64 rows, little-endian, base64: `observations` of a session made with obsEncoding 'f64'. */
export interface PackedArray { dtype: 'float64'; shape: [number, number]; data: string }

export interface MakeResult {
  session: string;
  /** Secret for `resume` after a dropped connection. */
  resumeToken: string;
  numEnvs: number;
  autoresetMode: AutoresetMode;
  obsEncoding: ObsEncoding;
  spec: EnvSpec | null;
  observationSpace: SpaceJSON;
  actionSpace: SpaceJSON;
  protocol: number;
}
export type ResetResultWire = VectorResetResult;
export type StepResultWire = VectorStepResult;
/** `alreadyClosed`: the session had been closed before (a second close is not an error). */
export interface CloseResult { closed: true; alreadyClosed?: true }
export interface StateResult {
  session: string;
  env: string;
  numEnvs: number;
  autoresetMode: AutoresetMode;
  obsEncoding: ObsEncoding;
  spec: EnvSpec | null;
  /** Whether the session has been reset (a step before that is RESET_NEEDED). */
  hasReset: boolean;
  /** A step or reset timed out: the next step is RESET_NEEDED until a reset. */
  needsReset: boolean;
  /** Resets and steps this session has run. */
  resets: number;
  steps: number;
  /** Per sub-env: the index of its current episode (0: the first reset's; -1 before any). */
  episode: number[];
  /** Per sub-env: steps taken in its current episode. */
  episodeSteps: number[];
  /** Per sub-env: its episode has ended and it waits for a reset (or, in next-step mode, for the next step to reset it; that step's action for it is ignored). */
  ended: boolean[];
  /** Per sub-env: the seed its current episode was reset with, as the env got it (null: it continued its own random stream). */
  seeds: (number | null)[];
  /** How the server's RNG reads seeds (`RNG_FACTS`). */
  rng: typeof RNG_FACTS;
}
export interface PingResult { pong: true; time: number }
export interface ResumeResult extends MakeResult {
  /** Pending ids whose stored replies follow this reply. */
  replayed: RequestId[];
  /** Pending ids still queued or running on the server; their replies will come. */
  inFlight: RequestId[];
  /**
   * Pending numeric ids the server has seen (an id as large or larger reached this session) but
   * whose replies are no longer stored (more than `replayBuffer` replies ago): those requests ran,
   * their results are gone. Pending ids in none of the three lists never reached the server: send
   * them again. (Exact for clients whose ids increase, as the shipped client's do.)
   */
  lost: RequestId[];
}
export interface ResultOf { make: MakeResult; reset: ResetResultWire; step: StepResultWire; close: CloseResult; state: StateResult; ping: PingResult; resume: ResumeResult }

export type Reply<R = unknown> =
  | { id: RequestId | null; ok: true; result: R }
  | { id: RequestId | null; ok: false; error: ErrorBody };

// ---- validation ----

let validators: Map<string, ValidateFunction> | null = null;

/** The compiled validator of an op, or undefined for an unknown op (compiled on first use). */
export function validatorFor(op: string): ValidateFunction | undefined {
  if (!validators) {
    const ajv = new Ajv({ allErrors: false, coerceTypes: false, useDefaults: false, strict: false });
    validators = new Map(OPS.map(op => [op, ajv.compile(SCHEMAS[op])]));
  }
  return validators.get(op);
}

/** One line naming what is wrong with a frame, from ajv's first error. */
export function describeSchemaError(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  if (!e) return 'invalid request';
  const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : 'request';
  if (e.keyword === 'additionalProperties') return `${where} has an unexpected field '${String((e.params as { additionalProperty?: unknown }).additionalProperty).slice(0, 64)}'`;
  if (e.keyword === 'required') return `${where} is missing '${String((e.params as { missingProperty?: unknown }).missingProperty)}'`;
  return `${where} ${e.message ?? 'is invalid'}`;
}

/** A request id as the reply echoes it, or null when the frame has no usable one. */
export function idOf(msg: unknown): RequestId | null {
  if (typeof msg !== 'object' || msg === null) return null;
  const id = (msg as { id?: unknown }).id;
  if (typeof id === 'number') return Number.isFinite(id) ? id : null;
  if (typeof id === 'string') return id.length <= 256 ? id : null;
  return null;
}

const LEADING_ID = /^\s*\{\s*"id"\s*:\s*(-?\d{1,20}(?:\.\d{1,20})?(?:[eE][-+]?\d{1,3})?|"(?:[^"\\]|\\.){0,256}")\s*[,}]/;
/** The id of a frame too large to parse, when it is the first field (as the client writes it). */
export function sniffId(head: string): RequestId | null {
  const m = LEADING_ID.exec(head);
  if (!m) return null;
  try { return idOf({ id: JSON.parse(m[1]!) }); } catch { return null; }
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
/**
 * Why a free-form value (kwargs, options) is unsafe to hand to env code, or null: nesting deeper
 * than MAX_DEPTH (recursive env code would overflow the stack) or prototype-polluting keys.
 */
export function unsafeValue(value: unknown, depth = 0): string | null {
  if (typeof value !== 'object' || value === null) return null;
  if (depth >= MAX_DEPTH) return `nested deeper than ${MAX_DEPTH} levels`;
  if (Array.isArray(value)) {
    for (const v of value) { const why = unsafeValue(v, depth + 1); if (why) return why; }
    return null;
  }
  for (const k of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(k)) return `forbidden key '${k}'`;
    const why = unsafeValue((value as Record<string, unknown>)[k], depth + 1);
    if (why) return why;
  }
  return null;
}

/** The seed the env gets for a seed from the wire: as it is up to MAX_SEED, else reduced modulo SEED_MODULUS (see there). */
export function wireSeed(seed: number | string): number {
  if (typeof seed === 'number' && seed <= MAX_SEED) return seed;
  const big = BigInt(seed);
  if (big <= BigInt(MAX_SEED)) return Number(big);
  return Number(big % BigInt(SEED_MODULUS));
}

// ---- frames (the reply text is built by hand: the envelope is fixed, only the result varies) ----

/** A result already serialised (okFrame inserts it as is). */
export class RawJson { constructor(readonly json: string) {} }

export function okFrame(idJson: string, result: unknown): string {
  return `{"id":${idJson},"ok":true,"result":${result instanceof RawJson ? result.json : JSON.stringify(result)}}`;
}

const RESET_KEYS = 2, STEP_KEYS = 5;
const emptyObjects = new Map<number, string>();

/**
 * The JSON of a vector reset/step result, field by field: the same text JSON.stringify gives,
 * several times faster for the common shapes (arrays of booleans, empty infos, packed
 * observations — a long base64 string costs JSON.stringify ~3 ns a character, concatenation
 * nothing). Anything unusual goes through JSON.stringify.
 */
export function vectorResultJson(r: { observations: unknown[]; infos: unknown[]; rewards?: unknown[]; terminated?: unknown[]; truncated?: unknown[] }, packSize: number | null): string {
  const step = r.rewards !== undefined;
  if (Object.keys(r).length !== (step ? STEP_KEYS : RESET_KEYS)) return JSON.stringify(packSize === null ? r : withPacked(r, packSize));
  const packed = packSize === null ? null : packF64(r.observations, packSize);
  let s = `{"observations":${packed ? `{"dtype":"float64","shape":[${packed.shape[0]},${packed.shape[1]}],"data":"${packed.data}"}` : JSON.stringify(r.observations)}`;
  if (step) s += `,"rewards":${JSON.stringify(r.rewards)},"terminated":${boolsJson(r.terminated)},"truncated":${boolsJson(r.truncated)}`;
  return `${s},"infos":${infosJson(r.infos)}}`;
}

function withPacked<R extends { observations: unknown[] }>(r: R, size: number): R | (Omit<R, 'observations'> & { observations: PackedArray }) {
  const packed = packF64(r.observations, size);
  return packed ? { ...r, observations: packed } : r;
}

function boolsJson(a: unknown): string {
  if (!Array.isArray(a)) return JSON.stringify(a);
  let s = '[';
  for (let i = 0; i < a.length; i++) {
    const v: unknown = a[i];
    if (v === true) s += i ? ',true' : 'true';
    else if (v === false) s += i ? ',false' : 'false';
    else return JSON.stringify(a);
  }
  return `${s}]`;
}

/** The JSON of a result's infos (empty objects, the common case, from a cache). */
export function infosJson(a: unknown[]): string {
  if (!Array.isArray(a)) return JSON.stringify(a);
  for (let i = 0; i < a.length; i++) {
    const o: unknown = a[i];
    if (typeof o !== 'object' || o === null || Array.isArray(o) || Object.getPrototypeOf(o) !== Object.prototype) return JSON.stringify(a);
    for (const _ in o) return JSON.stringify(a);
  }
  let s = emptyObjects.get(a.length);
  if (s === undefined) { s = JSON.stringify(a.map(() => ({}))); if (a.length <= 4096) emptyObjects.set(a.length, s); }
  return s;
}
export function errorFrame(idJson: string, error: ErrorBody): string {
  return `{"id":${idJson},"ok":false,"error":${JSON.stringify(error)}}`;
}
export function idToJson(id: RequestId | null): string { return id === null ? 'null' : JSON.stringify(id); }

// ---- packed observations (obsEncoding 'f64') ----

/** Pack N rows of `size` numbers, or null when the rows are not that (the caller falls back to JSON). */
export function packF64(rows: readonly unknown[], size: number): PackedArray | null {
  const n = rows.length;
  const f = new Float64Array(n * size);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const row = rows[i];
    if (!Array.isArray(row) || row.length !== size) return null;
    for (let j = 0; j < size; j++) {
      const x: unknown = row[j];
      if (typeof x !== 'number') return null;
      f[k++] = x;
    }
  }
  return { dtype: 'float64', shape: [n, size], data: Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64') };
}

/** The rows of a PackedArray, as arrays of numbers (bit for bit the values that were packed). */
export function unpackF64(p: PackedArray): number[][] {
  const [n, size] = p.shape;
  const bytes = Buffer.from(p.data, 'base64');
  if (bytes.length !== n * size * 8) throw new Error(`packed array of ${bytes.length} bytes does not hold ${n}x${size} float64`);
  const f = new Float64Array(n * size);
  new Uint8Array(f.buffer).set(bytes);
  const out = new Array<number[]>(n);
  for (let i = 0, k = 0; i < n; i++) {
    const row = new Array<number>(size);
    for (let j = 0; j < size; j++) row[j] = f[k++]!;
    out[i] = row;
  }
  return out;
}

export function isPacked(x: unknown): x is PackedArray {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && (x as PackedArray).dtype === 'float64';
}
