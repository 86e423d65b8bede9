/**
 * Spaces (Gymnasium semantics): the set of valid observations or actions, a seeded sampler, and a
 * JSON form that travels over the wire (`{"type":"Discrete","n":4,"start":0}`).
 */
import { Rng } from '../core/rng.ts';
import { BadConfig } from '../core/errors.ts';

export type BoxDtype = 'float32' | 'float64' | 'int32';

export type SpaceJSON =
  | { type: 'Discrete'; n: number; start: number }
  | { type: 'Box'; low: number | number[]; high: number | number[]; shape: number[]; dtype: BoxDtype }
  | { type: 'Text'; minLength: number; maxLength: number; charset?: string }
  | { type: 'Dict'; spaces: Record<string, SpaceJSON> }
  | { type: 'Tuple'; spaces: SpaceJSON[] }
  | { type: 'MultiDiscrete'; nvec: number[] };

export abstract class Space<T = unknown> {
  abstract readonly type: SpaceJSON['type'];
  /** True when `x` is an element of this space. */
  abstract contains(x: unknown): x is T;
  /** A uniformly random element, from the given generator. */
  abstract sample(rng: Rng): T;
  abstract toJSON(): SpaceJSON;
  /** Human-readable reason `x` is not in the space, or null when it is. */
  explain(x: unknown): string | null { return this.contains(x) ? null : `${short(x)} is not in ${JSON.stringify(this.toJSON())}`; }
}

function short(x: unknown): string {
  const s = JSON.stringify(x) ?? String(x);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

export class Discrete extends Space<number> {
  readonly type = 'Discrete' as const;
  constructor(readonly n: number, readonly start = 0) {
    super();
    if (!Number.isInteger(n) || n <= 0) throw new BadConfig(`Discrete n must be a positive integer, got ${n}`);
    if (!Number.isInteger(start)) throw new BadConfig(`Discrete start must be an integer, got ${start}`);
  }
  contains(x: unknown): x is number {
    return typeof x === 'number' && Number.isInteger(x) && x >= this.start && x < this.start + this.n;
  }
  sample(rng: Rng): number { return this.start + rng.int(this.n); }
  toJSON(): SpaceJSON { return { type: 'Discrete', n: this.n, start: this.start }; }
}

export class MultiDiscrete extends Space<number[]> {
  readonly type = 'MultiDiscrete' as const;
  constructor(readonly nvec: number[]) {
    super();
    if (!nvec.length || nvec.some(n => !Number.isInteger(n) || n <= 0)) throw new BadConfig('MultiDiscrete nvec must be positive integers');
  }
  contains(x: unknown): x is number[] {
    return Array.isArray(x) && x.length === this.nvec.length && x.every((v, i) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < this.nvec[i]!);
  }
  sample(rng: Rng): number[] { return this.nvec.map(n => rng.int(n)); }
  toJSON(): SpaceJSON { return { type: 'MultiDiscrete', nvec: [...this.nvec] }; }
}

/** A box of numbers with a shape; values are flat arrays in row-major order (length = product of shape). */
export class Box extends Space<number[]> {
  readonly type = 'Box' as const;
  readonly size: number;
  private readonly lowArr: number[];
  private readonly highArr: number[];
  constructor(readonly low: number | number[], readonly high: number | number[], readonly shape: number[], readonly dtype: BoxDtype = 'float32') {
    super();
    if (!shape.every(d => Number.isInteger(d) && d > 0)) throw new BadConfig(`Box shape must be positive integers, got ${JSON.stringify(shape)}`);
    this.size = shape.reduce((a, b) => a * b, 1);
    const expand = (v: number | number[], what: string) => {
      if (typeof v === 'number') return new Array<number>(this.size).fill(v);
      if (v.length !== this.size) throw new BadConfig(`Box ${what} has ${v.length} values, shape needs ${this.size}`);
      return v;
    };
    this.lowArr = expand(low, 'low');
    this.highArr = expand(high, 'high');
    for (let i = 0; i < this.size; i++) if (!(this.lowArr[i]! <= this.highArr[i]!)) throw new BadConfig('Box low must be <= high');
  }
  contains(x: unknown): x is number[] {
    if (!Array.isArray(x) || x.length !== this.size) return false;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (typeof v !== 'number' || Number.isNaN(v) || v < this.lowArr[i]! || v > this.highArr[i]!) return false;
      // The value must be one the dtype holds: a float32 Box carries float32 values (a client
      // reads them into a float32 array), an int32 Box 32-bit integers.
      if (this.dtype === 'int32' ? (v | 0) !== v : this.dtype === 'float32' && Math.fround(v) !== v) return false;
    }
    return true;
  }
  sample(rng: Rng): number[] {
    const out = new Array<number>(this.size);
    for (let i = 0; i < this.size; i++) {
      const lo = this.lowArr[i]!, hi = this.highArr[i]!;
      let v: number;
      if (Number.isFinite(lo) && Number.isFinite(hi)) v = rng.uniform(lo, hi);
      else if (Number.isFinite(lo)) v = lo - Math.log(1 - rng.random());
      else if (Number.isFinite(hi)) v = hi + Math.log(1 - rng.random());
      else v = rng.normal();
      if (this.dtype === 'int32') v = Math.min(hi, Math.max(lo, Math.floor(v)));
      else if (this.dtype === 'float32') v = Math.fround(v);
      out[i] = v;
    }
    return out;
  }
  toJSON(): SpaceJSON {
    const enc = (v: number | number[]) => (typeof v === 'number' ? jsonNum(v) : v.map(jsonNum));
    return { type: 'Box', low: enc(this.low) as number | number[], high: enc(this.high) as number | number[], shape: [...this.shape], dtype: this.dtype };
  }
}

/** JSON has no infinities: they travel as ±1e308 and come back as ±Infinity. */
function jsonNum(v: number): number { return v === Infinity ? 1e308 : v === -Infinity ? -1e308 : v; }
function fromJsonNum(v: number): number { return v >= 1e308 ? Infinity : v <= -1e308 ? -Infinity : v; }

export class Text extends Space<string> {
  readonly type = 'Text' as const;
  constructor(readonly maxLength: number, readonly minLength = 0, readonly charset?: string) {
    super();
    if (!Number.isInteger(maxLength) || maxLength < 0 || !Number.isInteger(minLength) || minLength < 0 || minLength > maxLength) {
      throw new BadConfig(`Text lengths must satisfy 0 <= minLength <= maxLength, got ${minLength}..${maxLength}`);
    }
  }
  contains(x: unknown): x is string {
    if (typeof x !== 'string') return false;
    const n = [...x].length;
    if (n < this.minLength || n > this.maxLength) return false;
    if (this.charset) { for (const ch of x) if (!this.charset.includes(ch)) return false; }
    return true;
  }
  sample(rng: Rng): string {
    const chars = [...(this.charset ?? 'abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,?!')];
    const n = this.minLength + rng.int(Math.min(this.maxLength, this.minLength + 32) - this.minLength + 1);
    let s = '';
    for (let i = 0; i < n; i++) s += chars[rng.int(chars.length)];
    return s;
  }
  toJSON(): SpaceJSON {
    return this.charset ? { type: 'Text', minLength: this.minLength, maxLength: this.maxLength, charset: this.charset } : { type: 'Text', minLength: this.minLength, maxLength: this.maxLength };
  }
}

export class Dict<T extends Record<string, unknown> = Record<string, unknown>> extends Space<T> {
  readonly type = 'Dict' as const;
  readonly keys: string[];
  constructor(readonly spaces: { [K in keyof T]: Space<T[K]> }) {
    super();
    this.keys = Object.keys(spaces).sort();
  }
  contains(x: unknown): x is T {
    if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
    const o = x as Record<string, unknown>;
    if (Object.keys(o).length !== this.keys.length) return false;
    return this.keys.every(k => k in o && (this.spaces as Record<string, Space>)[k]!.contains(o[k]));
  }
  override explain(x: unknown): string | null {
    if (typeof x !== 'object' || x === null || Array.isArray(x)) return `${short(x)} is not an object`;
    const o = x as Record<string, unknown>;
    for (const k of this.keys) {
      if (!(k in o)) return `missing key '${k}'`;
      const why = (this.spaces as Record<string, Space>)[k]!.explain(o[k]);
      if (why) return `${k}: ${why}`;
    }
    const extra = Object.keys(o).filter(k => !this.keys.includes(k));
    return extra.length ? `unexpected keys ${extra.join(', ')}` : null;
  }
  sample(rng: Rng): T {
    const out: Record<string, unknown> = {};
    for (const k of this.keys) out[k] = (this.spaces as Record<string, Space>)[k]!.sample(rng);
    return out as T;
  }
  toJSON(): SpaceJSON {
    const spaces: Record<string, SpaceJSON> = {};
    for (const k of this.keys) spaces[k] = (this.spaces as Record<string, Space>)[k]!.toJSON();
    return { type: 'Dict', spaces };
  }
}

export class Tuple extends Space<unknown[]> {
  readonly type = 'Tuple' as const;
  constructor(readonly spaces: Space[]) { super(); }
  contains(x: unknown): x is unknown[] {
    return Array.isArray(x) && x.length === this.spaces.length && this.spaces.every((s, i) => s.contains(x[i]));
  }
  sample(rng: Rng): unknown[] { return this.spaces.map(s => s.sample(rng)); }
  toJSON(): SpaceJSON { return { type: 'Tuple', spaces: this.spaces.map(s => s.toJSON()) }; }
}

/** Rebuild a space from its JSON form (for remote envs). */
export function spaceFromJSON(j: SpaceJSON): Space {
  switch (j.type) {
    case 'Discrete': return new Discrete(j.n, j.start ?? 0);
    case 'MultiDiscrete': return new MultiDiscrete(j.nvec);
    case 'Box': {
      const dec = (v: number | number[]) => (typeof v === 'number' ? fromJsonNum(v) : v.map(fromJsonNum));
      return new Box(dec(j.low), dec(j.high), j.shape, j.dtype);
    }
    case 'Text': return new Text(j.maxLength, j.minLength ?? 0, j.charset);
    case 'Dict': {
      const spaces: Record<string, Space> = {};
      for (const [k, v] of Object.entries(j.spaces)) spaces[k] = spaceFromJSON(v);
      return new Dict(spaces);
    }
    case 'Tuple': return new Tuple(j.spaces.map(spaceFromJSON));
    default: throw new BadConfig(`unknown space type ${JSON.stringify((j as { type?: unknown }).type)}`);
  }
}
