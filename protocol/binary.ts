/**
 * Binary frames of protocol v1 (obsEncoding 'binary'): a WebSocket binary frame holding a small
 * JSON header and raw little-endian typed arrays, so that observations, rewards and flags (and a
 * step's actions) are neither printed as JSON numbers nor parsed back.
 *
 *   u32 LE   H, the header's length in bytes
 *   H bytes  the header: a UTF-8 JSON object, a request or a reply as in a text frame, plus
 *            "arrays": [[name, dtype, shape], ...] naming the fields that follow as arrays
 *   then, for each entry of "arrays" in order: zero bytes up to the next multiple of 8 (counted
 *            from the frame's first byte), then prod(shape) values of dtype, little-endian
 *
 * The frame ends with the last array's last byte. dtypes: float64, float32, int32, bool (one byte,
 * 0 or 1). Shapes have one or two dimensions: [n] (one value per sub-env) or [n, k] (a flat row of
 * k per sub-env). A receiver puts each array into the header's `result` (a reply) or into the
 * request (a step's `actions`) as the JSON arrays it stands for: the numbers are the same, bit for
 * bit (the sender packs only finite numbers, -0 as 0, and float32 only values that float32 holds
 * exactly, so a JSON frame would have carried exactly these values). A reply whose infos are all
 * empty objects says only how many: `"emptyInfos": n` in the header, no `infos` in its result.
 * Only step requests may be binary (one array, `actions`, int32 or float64); errors are text frames.
 */
import { isUtf8 } from 'node:buffer';
import { ColloquyError } from '../core/errors.ts';

export type WireDtype = 'float64' | 'float32' | 'int32' | 'bool';
const ITEM_BYTES: Record<WireDtype, number> = { float64: 8, float32: 4, int32: 4, bool: 1 };
/** Arrays a frame may hold, and the longest name. */
const MAX_ARRAYS = 8, MAX_NAME = 64, MAX_DIM = 2 ** 31 - 1;

export type WireArray = Float64Array | Float32Array | Int32Array | Uint8Array;
export interface NamedArray { name: string; dtype: WireDtype; shape: number[]; values: WireArray }

const align8 = (n: number) => (n + 7) & ~7;

/**
 * An array to write into a frame, from `src`: N booleans (dtype bool), N numbers (k null) or N
 * rows of k numbers, already checked by `packableAs` (or `boolsArray`).
 */
interface PendingArray { name: string; dtype: WireDtype; shape: number[]; src: ArrayLike<unknown>; k: number | null }

function viewOf(buf: ArrayBuffer, dtype: WireDtype, offset: number, count: number): WireArray {
  switch (dtype) {
    case 'float64': return new Float64Array(buf, offset, count);
    case 'float32': return new Float32Array(buf, offset, count);
    case 'int32': return new Int32Array(buf, offset, count);
    case 'bool': return new Uint8Array(buf, offset, count);
  }
}

/** Scratch space: numbers go through one Float64Array (one element kind per loop: fast), then a native copy converts them. */
let scratch = new Float64Array(4096);
function scratchOf(n: number): Float64Array {
  if (scratch.length < n) scratch = new Float64Array(Math.max(n, 2 * scratch.length));
  return scratch.subarray(0, n);
}

function fill(into: WireArray, a: PendingArray): void {
  const src = a.src, k = a.k;
  if (a.dtype === 'bool') { for (let i = 0; i < src.length; i++) into[i] = src[i] ? 1 : 0; return; }
  const f = scratchOf(into.length);
  // + 0: -0 as JSON writes it.
  if (k === null) for (let i = 0; i < src.length; i++) f[i] = (src[i] as number) + 0;
  else {
    for (let i = 0, p = 0; i < src.length; i++) {
      const row = src[i] as number[];
      for (let j = 0; j < k; j++) f[p++] = row[j]! + 0;
    }
  }
  into.set(f);
}

/** The JSON of a frame's array entries, by their names, dtypes and shapes (a step's are the same every step). */
const entriesJson = new Map<string, string>();

function writeFrame(headerOpen: string, arrays: readonly PendingArray[]): Buffer {
  let key = '';
  for (const a of arrays) key += `${a.name} ${a.dtype} ${a.shape[0]} ${a.shape[1]} `;
  let entries = entriesJson.get(key);
  if (entries === undefined) {
    entries = JSON.stringify(arrays.map(a => [a.name, a.dtype, a.shape]));
    if (entriesJson.size < 256) entriesJson.set(key, entries);
  }
  const header = `${headerOpen},"arrays":${entries}}`;
  const h = Buffer.byteLength(header);
  let total = 4 + h;
  for (const a of arrays) total = align8(total) + count(a.shape) * ITEM_BYTES[a.dtype];
  // Not pooled (offset 0, so the views below are aligned) and not zeroed: every byte is written.
  const buf = Buffer.allocUnsafeSlow(total);
  buf.writeUInt32LE(h, 0);
  let end = 4 + buf.write(header, 4, 'utf8');
  for (const a of arrays) {
    const start = align8(end);
    buf.fill(0, end, start);
    const n = count(a.shape);
    fill(viewOf(buf.buffer as ArrayBuffer, a.dtype, start, n), a);
    end = start + n * ITEM_BYTES[a.dtype];
  }
  return buf;
}

function count(shape: readonly number[]): number { return shape.length === 1 ? shape[0]! : shape[0]! * shape[1]!; }

function bad(message: string): ColloquyError { return new ColloquyError('BAD_REQUEST', `binary frame: ${message}`); }
/** A BAD_REQUEST carrying the frame's header (for the reply's id). */
function failWith(header: unknown, message: string): ColloquyError { return Object.assign(bad(message), { header }); }

/**
 * Read a binary frame: its header (an object) and its arrays, each checked against its entry
 * (dtype, shape, that the bytes are exactly there, zero padding, booleans 0 or 1). A malformed
 * frame throws BAD_JSON (the header is not a JSON object) or BAD_REQUEST, with `header` set on the
 * error when the header could be read (for the reply's id).
 */
export function decodeBinaryFrame(data: Buffer): { header: Record<string, unknown>; arrays: NamedArray[] } {
  const view = data;
  if (view.length < 4) throw bad(`${view.length} bytes is shorter than its 4-byte header length`);
  const h = view.readUInt32LE(0);
  if (h > view.length - 4) throw bad(`header length ${h} is beyond the frame's ${view.length} bytes`);
  let header: unknown;
  try {
    if (!isUtf8(view.subarray(4, 4 + h))) throw new Error('not UTF-8');
    header = JSON.parse(view.toString('utf8', 4, 4 + h));
  } catch {
    throw new ColloquyError('BAD_JSON', 'binary frame: the header is not UTF-8 JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new ColloquyError('BAD_REQUEST', 'binary frame: the header must be a JSON object');
  const entries = (header as { arrays?: unknown }).arrays;
  if (!Array.isArray(entries) || entries.length > MAX_ARRAYS) throw failWith(header, `the header's 'arrays' must be a list of at most ${MAX_ARRAYS} [name, dtype, shape]`);
  const arrays: NamedArray[] = [];
  let off = 4 + h;
  for (const e of entries as unknown[]) {
    if (!Array.isArray(e) || e.length !== 3) throw failWith(header, 'each entry of arrays must be [name, dtype, shape]');
    const [name, dtype, shape] = e as [unknown, unknown, unknown];
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME) throw failWith(header, `an array name must be a string of 1 to ${MAX_NAME} characters`);
    for (const a of arrays) if (a.name === name) throw failWith(header, `array '${name}' appears twice`);
    if (typeof dtype !== 'string' || !Object.hasOwn(ITEM_BYTES, dtype)) throw failWith(header, `array '${name}': dtype must be one of ${Object.keys(ITEM_BYTES).join(', ')}`);
    if (!Array.isArray(shape) || shape.length < 1 || shape.length > 2 || !Number.isInteger(shape[0]) || !Number.isInteger(shape[shape.length - 1])
      || shape[0] < 0 || shape[0] > MAX_DIM || shape[shape.length - 1] < 0 || shape[shape.length - 1] > MAX_DIM) {
      throw failWith(header, `array '${name}': shape must be [n] or [n, k] of non-negative integers`);
    }
    const start = align8(off);
    if (start > view.length) throw failWith(header, `array '${name}' starts beyond the frame's ${view.length} bytes`);
    for (let i = off; i < start; i++) if (view[i] !== 0) throw failWith(header, `padding before array '${name}' is not zero bytes`);
    const count = shape.length === 1 ? shape[0] as number : (shape[0] as number) * (shape[1] as number);
    const bytes = count * ITEM_BYTES[dtype as WireDtype];
    if (bytes > view.length - start) throw failWith(header, `array '${name}' (${dtype} [${(shape as number[]).join(', ')}]) needs ${bytes} bytes, the frame has ${view.length - start} left`);
    // A view where the bytes are aligned (as in a frame of its own), else a copy.
    const values = (view.byteOffset + start) % 8 === 0
      ? viewOf(view.buffer as ArrayBuffer, dtype as WireDtype, view.byteOffset + start, count)
      : viewOf(view.buffer.slice(view.byteOffset + start, view.byteOffset + start + bytes) as ArrayBuffer, dtype as WireDtype, 0, count);
    if (dtype === 'bool') for (let i = 0; i < count; i++) if (values[i]! > 1) throw failWith(header, `array '${name}': a bool byte must be 0 or 1, got ${values[i]}`);
    arrays.push({ name, dtype: dtype as WireDtype, shape: shape as number[], values });
    off = start + bytes;
  }
  if (off !== view.length) throw failWith(header, `${view.length - off} bytes after the last array`);
  return { header: header as Record<string, unknown>, arrays };
}

/** An array as the JSON value it stands for: [n] → a list, [n, k] → n lists of k; bool → booleans. Non-finite values are refused (JSON has none). */
export function arrayToJs(a: NamedArray): unknown[] {
  const n = a.shape[0]!;
  if (a.dtype === 'bool') {
    const b = a.values;
    const out = new Array<boolean>(b.length);
    for (let i = 0; i < b.length; i++) out[i] = b[i] === 1;
    return a.shape.length === 1 ? out : rows(out, n, a.shape[1]!);
  }
  let v: Float64Array;
  if (a.values instanceof Float64Array) v = a.values;
  else { v = scratchOf(a.values.length); v.set(a.values); }
  for (let i = 0; i < v.length; i++) { const x = v[i]!; if (x - x !== 0) throw bad(`array '${a.name}' holds a non-finite number at ${i} (JSON has none)`); }
  // + 0: -0 as JSON reads it.
  if (a.shape.length === 1) {
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = v[i]! + 0;
    return out;
  }
  const k = a.shape[1]!;
  const out = new Array<number[]>(n);
  for (let i = 0, p = 0; i < n; i++) {
    const row = new Array<number>(k);
    for (let j = 0; j < k; j++) row[j] = v[p++]! + 0;
    out[i] = row;
  }
  return out;
}

function rows<T>(flat: T[], n: number, k: number): T[][] {
  const out = new Array<T[]>(n);
  for (let i = 0; i < n; i++) out[i] = flat.slice(i * k, i * k + k);
  return out;
}

// ---- packing JS values (what a sender does) ----

/**
 * The dtype that carries `values` (N numbers, or N rows of `k` numbers; k null: one number per
 * sub-env) exactly, or null when they are not that (they then travel as JSON): int32 when `ints`
 * and every value is an int32, else float32 when `f32` and float32 holds every value exactly,
 * else float64. Only finite numbers pack (JSON has no others).
 */
export function packableAs(values: readonly unknown[], k: number | null, opts: { ints?: boolean; f32?: boolean }): WireDtype | null {
  let allInt = opts.ints === true, allF32 = opts.f32 === true;
  for (let i = 0; i < values.length; i++) {
    const row: unknown = values[i];
    if (k === null) {
      if (typeof row !== 'number' || row - row !== 0) return null;
      if (allInt && (row | 0) !== row) allInt = false;
      if (allF32 && Math.fround(row) !== row) allF32 = false;
      continue;
    }
    if (!Array.isArray(row) || row.length !== k) return null;
    for (let j = 0; j < k; j++) {
      const x: unknown = row[j];
      if (typeof x !== 'number' || x - x !== 0) return null;
      if (allInt && (x | 0) !== x) allInt = false;
      if (allF32 && Math.fround(x) !== x) allF32 = false;
    }
  }
  return allInt ? 'int32' : allF32 ? 'float32' : 'float64';
}

/** Numbers (or rows of k) that `packableAs` accepted, as an array to write. */
function numbersArray(name: string, values: readonly unknown[], k: number | null, dtype: WireDtype): PendingArray {
  return { name, dtype, shape: k === null ? [values.length] : [values.length, k], src: values, k };
}

function boolsArray(name: string, values: readonly unknown[]): PendingArray | null {
  for (let i = 0; i < values.length; i++) if (typeof values[i] !== 'boolean') return null;
  return { name, dtype: 'bool', shape: [values.length], src: values, k: null };
}

// ---- reset/step replies ----

/** Whether every info is an empty plain object (a frame then says only how many: `emptyInfos`). */
function allEmpty(infos: unknown[]): boolean {
  for (const o of infos) {
    if (typeof o !== 'object' || o === null || Array.isArray(o) || Object.getPrototypeOf(o) !== Object.prototype) return false;
    for (const _ in o) return false;
  }
  return true;
}

/** The result fields in the order a result has them (those that travel as arrays first). */
const RESULT_ORDER = ['observations', 'rewards', 'terminated', 'truncated', 'infos'];

/**
 * The binary reply frame of a vector reset/step result: observations (flat Box rows of `obsSize`
 * numbers, null: not a Box) as float32 when exact else float64, rewards as float64, terminated
 * and truncated as bool; whatever does not fit (texts, nested rows, non-finite numbers) stays in
 * the header's `result` as JSON, as do the infos.
 */
export function binaryResultFrame(idJson: string, r: Record<string, unknown>, obsSize: number | null, infosJson: (infos: unknown[]) => string): Buffer {
  const arrays: PendingArray[] = [];
  let rest = '', emptyInfos = -1;
  for (const key in r) {
    const v = r[key];
    let a: PendingArray | null = null;
    if (Array.isArray(v)) {
      if (key === 'observations' && obsSize !== null) {
        const dtype = packableAs(v, obsSize, { f32: true });
        if (dtype) a = numbersArray(key, v, obsSize, dtype);
      } else if (key === 'rewards') {
        const dtype = packableAs(v, null, {});
        if (dtype) a = numbersArray(key, v, null, dtype);
      } else if (key === 'terminated' || key === 'truncated') a = boolsArray(key, v);
    }
    if (a) arrays.push(a);
    else if (key === 'infos' && Array.isArray(v) && allEmpty(v)) emptyInfos = v.length;
    else rest += `${rest ? ',' : ''}${JSON.stringify(key)}:${key === 'infos' && Array.isArray(v) ? infosJson(v) : JSON.stringify(v)}`;
  }
  return writeFrame(`{"id":${idJson},"ok":true,"result":{${rest}}${emptyInfos >= 0 ? `,"emptyInfos":${emptyInfos}` : ''}`, arrays);
}

/**
 * A reply frame read back into the reply it stands for (`{id, ok, result}` with the arrays as JSON
 * values, the result's fields in the order of a JSON reply). BAD_REQUEST when the frame is malformed.
 */
export function replyFromBinary(data: Buffer): { id?: unknown; ok?: unknown; result?: Record<string, unknown> } {
  const { header, arrays } = decodeBinaryFrame(data);
  const result = header.result;
  if (typeof result !== 'object' || result === null || Array.isArray(result)) throw bad("a binary reply's header needs a 'result' object");
  const fields = new Map<string, unknown>(Object.entries(result));
  for (const a of arrays) fields.set(a.name, arrayToJs(a));
  const empty = header.emptyInfos;
  if (empty !== undefined) {
    if (!Number.isInteger(empty) || (empty as number) < 0 || (empty as number) > 2 ** 31 - 1 || fields.has('infos')) throw bad("'emptyInfos' must be a count, and the result then has no 'infos'");
    const infos = new Array<object>(empty as number);
    for (let i = 0; i < infos.length; i++) infos[i] = {};
    fields.set('infos', infos);
  }
  const out: Record<string, unknown> = {};
  for (const k of RESULT_ORDER) if (fields.has(k)) { out[k] = fields.get(k); fields.delete(k); }
  for (const [k, v] of fields) out[k] = v;
  return { id: header.id, ok: header.ok, result: out };
}

// ---- step requests ----

/**
 * A step request as a binary frame (its actions packed), or null when the actions are not numbers
 * or flat rows of numbers (send JSON). Integer actions (int32) pack only with `ints`: for a few
 * small integers a JSON frame is smaller and, measured end to end (bench/protocol.ts, 64 Discrete
 * actions), cheaper; the clients send those as JSON and floats as binary.
 */
export function binaryStepFrame(id: number, session: string, actions: readonly unknown[], opts: { ints?: boolean } = {}): Buffer | null {
  const k = Array.isArray(actions[0]) ? (actions[0] as unknown[]).length : null;
  const dtype = packableAs(actions, k, { ints: true });
  if (!dtype || (dtype === 'int32' && opts.ints !== true)) return null;
  return writeFrame(`{"id":${id},"op":"step","session":${JSON.stringify(session)}`, [numbersArray('actions', actions, k, dtype)]);
}

/**
 * The request a binary frame stands for (a step: its header with `actions` from its one array),
 * checked as strictly as a text frame is before the op's schema sees it. Throws BAD_JSON or
 * BAD_REQUEST (with `header` on the error once the header is read, for the reply's id).
 */
export function requestFromBinary(data: Buffer): Record<string, unknown> {
  const { header, arrays } = decodeBinaryFrame(data);
  if (header.op !== 'step') throw failWith(header, `only 'step' requests may be binary frames (send '${String(header.op).slice(0, 32)}' as a JSON text frame)`);
  if (arrays.length !== 1 || arrays[0]!.name !== 'actions' || Object.hasOwn(header, 'actions')) throw failWith(header, "a binary step carries exactly one array, 'actions', and no 'actions' in its header");
  const a = arrays[0]!;
  if (a.dtype !== 'int32' && a.dtype !== 'float64') throw failWith(header, `actions must be int32 or float64, got ${a.dtype}`);
  const { arrays: _, ...req } = header;
  let actions: unknown[];
  try { actions = arrayToJs(a); } catch (err) { throw failWith(header, (err as Error).message.replace(/^binary frame: /, '')); }
  return { ...req, actions };
}
