#pragma once
#include <cstdint>

namespace colloquy {

// One pre-LN transformer block of the full forward pass (models/block.ts) with its gradient, in
// one call each way. B sequences of T rows (n = B·T), width d, H heads, MLP width F, act 0 ReLU,
// 1 GELU (tanh), 2 GELU (erf). It runs the kernels the TF.js ops of lm-ops.ts run (gemm with
// fused bias and ReLU, attentionForward/Backward, layerNormForward/Backward, geluForward/Backward;
// bias gradients as ones·G products), in the same order, so values and gradients are the same bits.
struct BlockDims {
  int B, T, H, d, F, act;
  float eps;
};

// Floats of a block's parameters packed in block.ts's BLOCK_PARAMS order: ln1.g, ln1.b [d],
// qkv.w [d, 3d], qkv.b [3d], out.w [d, d], out.b [d], ln2.g, ln2.b [d], fc.w [d, F], fc.b [F],
// proj.w [F, d], proj.b [d] (row-major). The gradient has the same layout.
int64_t blockParamFloats(int64_t d, int64_t F);
// Floats the forward pass saves for the backward pass, with m output rows.
int64_t blockSavedFloats(const BlockDims& D, int64_t m);

// y [m, d] = the block on x [n, d] at rows `rows` (m of them; all n, in order, when rows is null):
// the attention reads every row, the rest runs on the m rows. starts[b]: left padding (or null).
void blockForward(const float* x, const float* W, const BlockDims& D, const int32_t* starts, int64_t m, const int32_t* rows,
                  float* saved, float* y);
// From dy [m, d]: dx [n, d] and the parameters' gradient G (blockParamFloats).
void blockBackward(const float* dy, const float* W, const BlockDims& D, const int32_t* starts, int64_t m, const int32_t* rows,
                   const float* saved, float* dx, float* G);

}  // namespace colloquy
