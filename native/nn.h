#pragma once
#include <cstdint>

namespace colloquy {

// In-place log-softmax of each length-n row.
double logSoftmaxRows(float* x, int64_t rows, int64_t n);

// Mean (weighted) NLL of targets under softmax(h·Eᵀ); h [n, d], E [V, d]. P [n, V] receives the
// probabilities (kept for the backward pass).
double crossEntropyForward(const float* h, const float* E, const int32_t* targets, const float* weights,
                           int64_t n, int64_t V, int64_t d, float* P);
// dh = (P − onehot)·w·scale · E, dE = ((P − onehot)·w·scale)ᵀ · h. Overwrites P.
void crossEntropyBackward(const float* h, const float* E, float* P, const int32_t* targets, const float* weights,
                          int64_t n, int64_t V, int64_t d, float scale, float* dh, float* dE);

// The policy's per-action terms (agents/rl/policy.ts actionLogProbs): z = h·Eᵀ [n, V], and for each
// row the log-probability of actions[i] and the entropy: out [n, 2]. P [n, V] and logP [n, V]
// receive the probabilities and log-probabilities, ent [n] the entropies (float64), for backward.
void policyLogProbsForward(const float* h, const float* E, const int32_t* actions, int64_t n, int64_t V, int64_t d,
                           float* P, float* logP, double* ent, float* out);
// From g [n, 2] (∂/∂logπ(a), ∂/∂H): dz = g₀(onehot(a) − p) − g₁ p (log p + H), written over P; then
// dh = dz·E [n, d] and, when dE is not null, dE = dzᵀ·h [V, d].
void policyLogProbsBackward(const float* h, const float* E, float* P, const float* logP, const double* ent,
                            const int32_t* actions, const float* g, int64_t n, int64_t V, int64_t d, float* dh, float* dE);
// Causal multi-head attention on packed q|k|v rows [B·T, 3·H·hd] → out [B·T, H·hd]; P [B·H, T, T]
// receives the attention weights. starts[b] = left padding of sequence b (or null).
void attentionForward(const float* qkv, int B, int T, int H, int hd, const int32_t* starts, float* out, float* P);
void attentionBackward(const float* qkv, const float* dout, const float* P, int B, int T, int H, int hd,
                       const int32_t* starts, float* dqkv);

// One query row of packed q|k|v against a KV cache [H, C, hd]: writes k, v at `slot`, then
// out[h·hd …] = softmax(q_h·K_hᵀ/√hd) · V_h over slots 0 … slot.
void attendCached(const float* qkv, float* Kc, float* Vc, int slot, int H, int hd, int C, float* out);
// The same in two parts: storeCached writes k, v at `slot`; attendStored reads slots 0 … slot
// (already stored) and writes out. Entries of one cache can then be attended in any order.
void storeCached(const float* qkv, float* Kc, float* Vc, int slot, int H, int hd, int C);
void attendStored(const float* qkv, const float* Kc, const float* Vc, int slot, int H, int hd, int C, float* out);

// A token drawn from softmax(logProbs / temperature) with the uniform draw u ∈ [0, 1) (weights
// below e^-50 of the best dropped); the argmax when temperature ≤ 0.
int sampleRow(const float* logProbs, int64_t V, double temperature, double u);

}  // namespace colloquy

namespace colloquy {
// Layer normalisation over rows of x [n, d]: out = x̂·g + b; x̂ and 1/σ per row kept for backward.
void layerNormForward(const float* x, int64_t n, int64_t d, const float* g, const float* b, float eps, float* xhat, float* rstd, float* out);
void layerNormBackward(const float* dy, const float* xhat, const float* rstd, const float* g, int64_t n, int64_t d, float* dx, float* dg, float* db);
}  // namespace colloquy

namespace colloquy {
// GELU of n elements: kind 0 the tanh approximation ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (GPT-2's
// gelu_new), kind 1 the exact x·Φ(x). Backward: dx = dy · GELU'(x).
void geluForward(const float* x, int64_t n, int kind, float* out);
void geluBackward(const float* x, const float* dy, int64_t n, int kind, float* dx);
}  // namespace colloquy
