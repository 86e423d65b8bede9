#pragma once
#include <cstdint>

namespace colloquy {

// The transformer's sizes for decodeStep. act: 0 ReLU, 1 GELU (tanh approximation), 2 GELU (erf).
struct DecodeDims {
  int L, d, H, F, V, C, act;
  double eps;
};

// Floats in the packed weights W: per layer ln1.g, ln1.b [d], qkv.w [d, 3d], qkv.b [3d], out.w [d, d],
// out.b [d], ln2.g, ln2.b [d], fc.w [d, F], fc.b [F], proj.w [F, d], proj.b [d]; then ln_f.g, ln_f.b [d],
// the token embeddings [V, d], the position table [C, d] and the output matrix transposed [d, V].
// Every matrix [K, N] (the w's and the output matrix) is stored as gemm.h's panels (panelFloats(K, N)
// floats), the vectors and tables as they are.
int64_t decodeWeightCount(const DecodeDims& D);

// A tokens through the model against KV caches: entry a reads token tokens[a] at position slots[a]
// with the cache caches[a] ([L][K, V][H, C, hd], valid below slots[a]; its k, v are written at
// slots[a]). Entries may share a cache (several new tokens of one dialog) when they come in the
// order of their slots: each then sees the ones before it, as if they had been stepped one by one.
// For the nOut entries outRows[o] (the last of each dialog), logp [nOut, V] receives the next
// token's log-probabilities and hidden [nOut, d] the final hidden state; the other entries only
// fill their caches.
void decodeStep(const float* W, const DecodeDims& D, int A, const int32_t* tokens, const int32_t* slots,
                float* const* caches, int nOut, const int32_t* outRows, float* logp, float* hidden);

}  // namespace colloquy
