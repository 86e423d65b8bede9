/**
 * The convolutional sentiment classifier's forward pass in plain TypeScript, for scoring: the
 * same numbers as the TensorFlow.js graph of rewards/classifier.ts (for architectures without a
 * GRU and with `maskWindows`), at a fraction of the cost.
 *
 * A convolution window's pre-activation is a sum over its positions of (word features) · (that
 * position's slice of the kernel), and a word's features are fixed at scoring time (embedding,
 * pretrained channel, lexicon value). So each word's products with every kernel slice are
 * computed once, when the word is first seen, and kept (`cacheWords` of them; the cache starts
 * afresh when full); a window then costs additions. What is left per text is the max over
 * windows, the output layers and the hashed n-gram weights.
 */

/** One member's weights, as flat row-major arrays (the checkpoint's tensors). */
export interface FastMemberWeights {
  embedding: Float32Array;
  pretrained?: Float32Array;
  lexicon?: Float32Array;
  /** Per width: kernel [k·d, filters] and bias [filters]. */
  conv: { k: number; kernel: Float32Array; bias: Float32Array }[];
  hidden?: { kernel: Float32Array; bias: Float32Array };
  outKernel: Float32Array;
  outBias: number;
  bigram?: Float32Array;
  vader?: number;
  emotion?: { kernel: Float32Array; bias: Float32Array; vader?: Float32Array };
}

export interface FastShape {
  embedDim: number;
  filters: number;
  hidden: number;
  /** Words with a trainable row (the rest read `pretrained`). */
  trainableVocab: number;
  staticChannel: boolean;
  emotions: number;
}

/** Default number of words whose kernel products are kept. */
export const FAST_CACHE_WORDS = 30_000;

class FastMember {
  private readonly cache = new Map<number, Float32Array>();
  /** Kernel slices (width, position) in order, and the first slice of each width. */
  private readonly slices: number;
  private readonly firstSlice: number[];
  private readonly d: number;

  constructor(private readonly w: FastMemberWeights, private readonly shape: FastShape, private readonly cacheWords: number) {
    this.d = shape.embedDim * (shape.staticChannel ? 2 : 1) + (w.lexicon ? 1 : 0);
    this.firstSlice = [];
    let s = 0;
    for (const c of w.conv) { this.firstSlice.push(s); s += c.k; }
    this.slices = s;
  }

  clearCache(): void { this.cache.clear(); }

  /** The word's input features (the network's embedding row and its extra channels). */
  private features(id: number): Float32Array {
    const { embedDim: e, trainableVocab: tv, staticChannel } = this.shape;
    const x = new Float32Array(this.d);
    if (id < tv) x.set(this.w.embedding.subarray(id * e, id * e + e), 0);
    else x.set(this.w.pretrained!.subarray(id * e, id * e + e), 0);
    let o = e;
    if (staticChannel) { x.set(this.w.pretrained!.subarray(id * e, id * e + e), o); o += e; }
    if (this.w.lexicon) x[o] = this.w.lexicon[id]!;
    return x;
  }

  /** [slices · filters]: the word's products with each kernel slice. */
  private products(id: number): Float32Array {
    let p = this.cache.get(id);
    if (p) return p;
    const F = this.shape.filters, d = this.d, conv = this.w.conv;
    const x = this.features(id);
    p = new Float32Array(this.slices * F);
    for (let ci = 0; ci < conv.length; ci++) {
      const c = conv[ci]!, kernel = c.kernel;
      for (let i = 0; i < c.k; i++) {
        const base = (this.firstSlice[ci]! + i) * F;
        for (let j = 0; j < d; j++) {
          const xj = x[j]!;
          if (xj === 0) continue;
          const row = (i * d + j) * F;
          for (let f = 0; f < F; f++) p[base + f] += xj * kernel[row + f]!;
        }
      }
    }
    if (this.cache.size >= this.cacheWords) this.cache.clear();
    this.cache.set(id, p);
    return p;
  }

  /**
   * Logits of one text: the sentiment logit, and the emotion logits into `emotion` when given.
   * `ngrams` are the text's hashed n-gram buckets, `vader` its VADER compound score.
   */
  run(ids: readonly number[], ngrams: ArrayLike<number>, vader: number, emotion?: Float32Array): number {
    const F = this.shape.filters, conv = this.w.conv, first = this.firstSlice;
    const n = ids.length;
    const prods: Float32Array[] = new Array(n);
    for (let t = 0; t < n; t++) prods[t] = this.products(ids[t]!);
    const pooled = new Float32Array(conv.length * F);
    const h = new Float32Array(F);
    for (let ci = 0; ci < conv.length; ci++) {
      const c = conv[ci]!, k = c.k, bias = c.bias;
      const windows = Math.max(1, n - k + 1), o = ci * F;
      for (let t = 0; t < windows; t++) {
        h.set(bias);
        for (let i = 0; i < k && t + i < n; i++) {
          const p = prods[t + i]!, base = (first[ci]! + i) * F;
          for (let f = 0; f < F; f++) h[f] += p[base + f]!;
        }
        // Pooled values start at 0: the max of ReLU outputs is the max of the pre-activations and 0.
        for (let f = 0; f < F; f++) if (h[f]! > pooled[o + f]!) pooled[o + f] = h[f]!;
      }
    }
    const feat = this.w.hidden ? this.hiddenLayer(pooled) : pooled;
    let logit = this.w.outBias;
    const outK = this.w.outKernel;
    for (let j = 0; j < feat.length; j++) logit += feat[j]! * outK[j]!;
    const bigram = this.w.bigram;
    if (bigram) for (let i = 0; i < ngrams.length; i++) logit += bigram[ngrams[i]!]!;
    if (this.w.vader !== undefined) logit += vader * this.w.vader;
    const em = this.w.emotion;
    if (emotion && em) {
      const E = this.shape.emotions, ek = em.kernel;
      emotion.set(em.bias);
      for (let j = 0; j < feat.length; j++) {
        const v = feat[j]!;
        if (v === 0) continue;
        for (let c = 0; c < E; c++) emotion[c] += v * ek[j * E + c]!;
      }
      if (em.vader) for (let c = 0; c < E; c++) emotion[c] += vader * em.vader[c]!;
    }
    return logit;
  }

  private hiddenLayer(pooled: Float32Array): Float32Array {
    const H = this.shape.hidden, hid = this.w.hidden!, out = new Float32Array(H);
    out.set(hid.bias);
    for (let j = 0; j < pooled.length; j++) {
      const v = pooled[j]!;
      if (v === 0) continue;
      for (let u = 0; u < H; u++) out[u] += v * hid.kernel[j * H + u]!;
    }
    for (let u = 0; u < H; u++) if (out[u]! < 0) out[u] = 0;
    return out;
  }
}

/** The ensemble's forward pass: the mean of the members' probabilities. */
export class FastForward {
  private readonly members: FastMember[];
  constructor(readonly shape: FastShape, weights: FastMemberWeights[], cacheWords = FAST_CACHE_WORDS) {
    this.members = weights.map(w => new FastMember(w, shape, cacheWords));
  }

  /** Forget the words' kernel products (they are recomputed as words come). */
  clearCache(): void { for (const m of this.members) m.clearCache(); }

  /**
   * Probability of "positive" of one text, and (into `emotionOut`, length `shape.emotions`) the
   * mean of the members' emotion distributions. `use` picks members (default all).
   */
  predict(ids: readonly number[], ngrams: ArrayLike<number>, vader: number, emotionOut?: Float32Array, use?: readonly number[]): number {
    const which = use ?? this.members.map((_, i) => i);
    const E = this.shape.emotions;
    const logits = emotionOut && E > 0 ? new Float32Array(E) : undefined;
    if (emotionOut) emotionOut.fill(0);
    let p = 0;
    for (const m of which) {
      const z = this.members[m]!.run(ids, ngrams, vader, logits);
      p += 1 / (1 + Math.exp(-z));
      if (logits && emotionOut) {
        let max = -Infinity, sum = 0;
        for (let c = 0; c < E; c++) if (logits[c]! > max) max = logits[c]!;
        for (let c = 0; c < E; c++) { logits[c] = Math.exp(logits[c]! - max); sum += logits[c]!; }
        for (let c = 0; c < E; c++) emotionOut[c]! += logits[c]! / sum / which.length;
      }
    }
    return p / which.length;
  }
}
