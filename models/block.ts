/**
 * The transformer's structure, written once: the pre-LN block
 *
 *   x ← x + Attn(LN₁(x))          Attn = out-projection ∘ causal attention ∘ qkv-projection
 *   x ← x + MLP(LN₂(x))           MLP  = proj ∘ act ∘ fc   (act: ReLU, or GELU for imported models)
 *
 * and the final layer norm, over abstract steps. The full forward pass (tensor ops with
 * hand-written gradients, lm.ts) and the KV-cached single-token step (plain arrays and one-row
 * cached attention, sampler.ts) run this same structure with their own kernels.
 *
 * Parameter names are those of `TransformerLM.paramSpecs`: block l's are `h<l>.<BLOCK_PARAMS>`.
 */

/** Names of one block's parameters, in save order. */
export const BLOCK_PARAMS = ['ln1.g', 'ln1.b', 'attn.qkv.w', 'attn.qkv.b', 'attn.out.w', 'attn.out.b', 'ln2.g', 'ln2.b', 'mlp.fc.w', 'mlp.fc.b', 'mlp.proj.w', 'mlp.proj.b'] as const;

/** What one implementation of the forward pass supplies, on its own representation X of a batch of rows. */
export interface BlockSteps<X> {
  /** Layer norm with parameters `<name>.g`, `<name>.b` (e.g. 'h0.ln1', 'ln_f'). */
  norm(x: X, name: string): X;
  /** x·W + b with parameters `<name>.w` [in, out], `<name>.b`; the MLP activation (config.activation, default ReLU) after when `mlp`. */
  linear(x: X, name: string, mlp: boolean): X;
  /** Causal self-attention of block `layer` on its packed q | k | v rows; returns [rows, d]. */
  attend(qkv: X, layer: number): X;
  /** The residual stream plus a branch's output (`branch` 0: attention, 1: MLP; dropout goes here). */
  residual(x: X, branch: X, layer: number, which: 0 | 1): X;
}

/** Block `layer` applied to the residual stream x. */
export function block<X>(s: BlockSteps<X>, x: X, layer: number): X {
  const p = `h${layer}.`;
  const qkv = s.linear(s.norm(x, p + 'ln1'), p + 'attn.qkv', false);
  x = s.residual(x, s.linear(s.attend(qkv, layer), p + 'attn.out', false), layer, 0);
  const hidden = s.linear(s.norm(x, p + 'ln2'), p + 'mlp.fc', true);
  return s.residual(x, s.linear(hidden, p + 'mlp.proj', false), layer, 1);
}

/**
 * Block `layer` when only some rows of its output are wanted (`select` picks them): the attention
 * still reads every row's keys and values, but the output projection, the MLP and the residuals
 * run on the selected rows only. Those rows get the numbers `block` gives them.
 */
export function blockAt<X>(s: BlockSteps<X>, x: X, layer: number, select: (x: X) => X): X {
  const p = `h${layer}.`;
  const qkv = s.linear(s.norm(x, p + 'ln1'), p + 'attn.qkv', false);
  x = s.residual(select(x), s.linear(select(s.attend(qkv, layer)), p + 'attn.out', false), layer, 0);
  const hidden = s.linear(s.norm(x, p + 'ln2'), p + 'mlp.fc', true);
  return s.residual(x, s.linear(hidden, p + 'mlp.proj', false), layer, 1);
}

/** Blocks from … to − 1 in order; with `select`, only the rows it picks leave the last one. */
export function blocks<X>(s: BlockSteps<X>, x: X, from: number, to: number, select?: (x: X) => X): X {
  for (let l = from; l < to; l++) x = select && l === to - 1 ? blockAt(s, x, l, select) : block(s, x, l);
  return select && from >= to ? select(x) : x;
}

/** The final layer norm: the hidden state whose product with the output matrix gives the logits. */
export function finalNorm<X>(s: BlockSteps<X>, x: X): X {
  return s.norm(x, 'ln_f');
}
