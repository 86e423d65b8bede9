#pragma once
#include <cstdint>

namespace colloquy {

// agents/rl/kl-mixture.ts solveMixture in C++ (the same safeguarded bisection, in float64): the
// weight α ∈ [0, 1] of x = α·a + (1 − α)·b with KL(x ‖ b) = k (α = 1 when KL(a ‖ b) ≤ k), from the
// normalised log-probabilities loga [V] and logb [V]. Writes log x [V]; out = (α, KL(x‖b),
// KL(a‖b)). guess outside (0, 1): none. The exp and log are the C library's, so the figures agree
// with the JS path to float64 rounding, not bit for bit.
void solveMixture(const double* loga, const float* logb, int64_t V, double k, double rtol, int maxIter, double guess,
                  double* logx, double* out);

}  // namespace colloquy
