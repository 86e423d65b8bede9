/**
 * Sampling continuations of many contexts from one long-lived `LMSession` whose rows outlive the
 * call: a row keeps its tokens and KV cache, and a later context that extends a kept row's tokens
 * (the same dialog's next turn: the transcript so far plus the teacher's new turn) is served by
 * that row, so it pays for the new tokens only instead of re-reading the whole transcript.
 *
 * It is used only where a row's numbers do not depend on how its tokens arrived: with the native
 * decoding step, a prefill is the same computation as a catch-up (models/sampler.ts), so a context
 * gets the same log-probabilities, bit for bit, whether or not a row held its prefix; the results
 * then do not depend on what else the pool served before (`canPool`). Elsewhere callers start a
 * fresh session per call (`sampleRows`).
 *
 * Memory is bounded: at most `capacity` rows (least recently used reused first); contexts beyond
 * that in one call go to a temporary session.
 */
import type { Rng } from '../core/rng.ts';
import type { TransformerLM } from './lm.ts';
import { nativeDecodeStep, sampleToken, type LMSession } from './sampler.ts';

export interface SampleRowsOptions { maxTokens: number[]; temperature: number; stopTokens: number[]; rngs: Rng[] }

/** Whether sessions of this process fill caches the same way however tokens arrive (the native decoding step). */
export function canPool(): boolean {
  return nativeDecodeStep() !== null;
}

/** Draw each active row's next token until a stop token or its limit; `out[k]` gets row rows[k]'s tokens. */
export function sampleSessionRows(session: LMSession, rows: readonly number[], opts: SampleRowsOptions): number[][] {
  const out: number[][] = rows.map(() => []);
  const stop = new Set(opts.stopTokens);
  let active = rows.map((_, k) => k).filter(k => opts.maxTokens[k]! > 0);
  while (active.length) {
    const lps = session.nextLogProbs(active.map(k => rows[k]!));
    const still: number[] = [];
    active.forEach((k, j) => {
      const tok = sampleToken(lps[j]!, { temperature: opts.temperature, rng: opts.rngs[k]! });
      out[k]!.push(tok);
      if (!stop.has(tok) && out[k]!.length < opts.maxTokens[k]!) { session.extend(rows[k]!, [tok]); still.push(k); }
    });
    active = still;
  }
  return out;
}

/** Sample continuations in a fresh session, with one random stream per row, so a row's tokens do not depend on its batch. */
export function sampleRows(lm: TransformerLM, contexts: number[][], opts: SampleRowsOptions): number[][] {
  if (!contexts.length) return [];
  const session = lm.startSession(contexts);
  try {
    return sampleSessionRows(session, contexts.map((_, i) => i), opts);
  } finally {
    session.dispose();
  }
}

/** Polynomial hashes of every prefix of `t` (two 32-bit streams), as map keys `length:h1:h2`. */
function prefixKeys(t: readonly number[]): string[] {
  const keys: string[] = [];
  let h1 = 0, h2 = 0x811c9dc5;
  for (let i = 0; i < t.length; i++) {
    h1 = (Math.imul(h1, 1000003) + t[i]! + 1) >>> 0;
    h2 = Math.imul(h2 ^ (t[i]! + 7), 16777619) >>> 0;
    keys.push(`${i + 1}:${h1}:${h2}`);
  }
  return keys;
}

function keyOf(t: readonly number[]): string {
  return t.length ? prefixKeys(t)[t.length - 1]! : '0';
}

export class SessionPool {
  private session: LMSession | null = null;
  private cacheKey: object | null = null;
  /** Row → its tokens' key (null: free), and key → row. */
  private keys: (string | null)[] = [];
  private byKey = new Map<string, number>();
  private lastUsed: number[] = [];
  private clock = 0;
  /** Contexts served from a kept row's prefix (hits) or (re)filled from scratch (misses), and the tokens that saved. */
  readonly stats = { hits: 0, misses: 0, tokensReused: 0 };

  constructor(private readonly model: TransformerLM, readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('SessionPool: capacity must be at least 1');
  }

  /** Rows held now. */
  get size(): number { return this.keys.length; }

  sample(contexts: number[][], opts: SampleRowsOptions): number[][] {
    if (!contexts.length) return [];
    this.checkWeights();
    const s = this.session ??= this.model.startSession([]);
    const claimed = new Set<number>();
    const rows: number[] = [], overflow: number[] = [];
    contexts.forEach((ctx, k) => {
      const row = this.claim(ctx, claimed);
      if (row === null) { overflow.push(k); return; }
      claimed.add(row);
      rows[k] = row;
    });
    const mine = contexts.map((_, k) => k).filter(k => rows[k] !== undefined);
    const pick = <T>(a: readonly T[], ks: number[]) => ks.map(k => a[k]!);
    const out: number[][] = new Array(contexts.length);
    const got = sampleSessionRows(s, pick(rows, mine), { ...opts, maxTokens: pick(opts.maxTokens, mine), rngs: pick(opts.rngs, mine) });
    mine.forEach((k, j) => { out[k] = got[j]!; this.index(rows[k]!); });
    if (overflow.length) {
      const more = sampleRows(this.model, pick(contexts, overflow), { ...opts, maxTokens: pick(opts.maxTokens, overflow), rngs: pick(opts.rngs, overflow) });
      overflow.forEach((k, j) => { out[k] = more[j]!; });
    }
    return out;
  }

  dispose(): void {
    this.session?.dispose();
    this.session = null;
    this.keys = []; this.lastUsed = []; this.byKey.clear();
  }

  /** A row holding `ctx` (extended from the longest kept prefix, or a reused row refilled), or null when all are claimed. */
  private claim(ctx: number[], claimed: ReadonlySet<number>): number | null {
    const s = this.session!;
    const keys = prefixKeys(ctx);
    for (let n = ctx.length; n >= 1; n--) {
      const row = this.byKey.get(keys[n - 1]!);
      if (row === undefined || claimed.has(row)) continue;
      const have = s.tokens(row);
      if (have.length !== n || !have.every((t, i) => t === ctx[i])) continue;
      this.unindex(row);
      s.extend(row, ctx.slice(n));
      this.touch(row);
      this.stats.hits++;
      this.stats.tokensReused += n;
      return row;
    }
    let row: number;
    if (this.keys.length < this.capacity) {
      row = s.addRow(ctx.slice());
      this.keys.push(null);
      this.lastUsed.push(0);
    } else {
      let best = -1;
      for (let r = 0; r < this.keys.length; r++) if (!claimed.has(r) && (best < 0 || this.lastUsed[r]! < this.lastUsed[best]!)) best = r;
      if (best < 0) { this.stats.misses++; return null; }
      row = best;
      this.unindex(row);
      s.resetRow(row, ctx.slice());
    }
    this.touch(row);
    this.stats.misses++;
    return row;
  }

  private touch(row: number): void { this.lastUsed[row] = ++this.clock; }

  private index(row: number): void {
    const key = keyOf(this.session!.tokens(row));
    const old = this.byKey.get(key);
    if (old !== undefined && old !== row) this.keys[old] = null;
    this.byKey.set(key, row);
    this.keys[row] = key;
  }

  private unindex(row: number): void {
    const key = this.keys[row];
    if (key && this.byKey.get(key) === row) this.byKey.delete(key);
    this.keys[row] = null;
  }

  /** Rows cached under other weights are dropped (the caches would hold the old keys and values). */
  private checkWeights(): void {
    const now = this.model.inferenceCache();
    if (this.cacheKey && this.cacheKey !== now) this.dispose();
    this.cacheKey = now;
  }
}
