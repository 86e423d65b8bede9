#pragma once
#include <cstdint>

namespace colloquy {

// C[b] (+)= op(A[b]) · op(B[b]) for b < batch, row-major. op(A) is M×K (A stored K×M when transA),
// op(B) is K×N (B stored N×K when transB); C[b] is M×N and contiguous. strideA/strideB step between
// batch members (0 broadcasts one matrix). Then C += bias (biasSize N or 1) and ReLU, when given.
struct GemmArgs {
  const float* a;
  const float* b;
  float* c;
  int64_t batch, M, N, K;
  int64_t strideA, strideB;
  bool transA, transB, accumulate;
  const float* bias;
  int64_t biasSize;
  bool relu;
  bool portable;  // force the portable kernel (tests)
  int act;        // after bias: 0 none (or relu above), 1 relu6, 2 leaky relu (alpha), 3 sigmoid, 4 elu
  float alpha;
  int64_t lda, ldb, ldc;  // row strides of A, B, C as stored (0: packed, the default)
};

void gemm(const GemmArgs& g);
bool gemmUsesAvx2();

// One product C = op(A)·op(B) (+ bias [N], then ReLU), all packed row-major.
inline void matmul(const float* a, const float* b, float* c, int64_t M, int64_t N, int64_t K, bool ta, bool tb,
                   const float* bias = nullptr, bool relu = false) {
  GemmArgs g{a, b, c, 1, M, N, K, 0, 0, ta, tb, false, bias, bias ? N : 0, relu, false, 0, 0.0f, 0, 0, 0};
  gemm(g);
}

// Weights packed once for many products (the decoding step's): B [K, N] as panels of 16 columns,
// k-major inside a panel (element (k, 16p + c) at p·16K + 16k + c), the last panel zero-padded.
constexpr int64_t kPanel = 16;
inline int64_t panelFloats(int64_t K, int64_t N) { return (N + kPanel - 1) / kPanel * kPanel * K; }
// C [M, N] = A [M, K] · B (+ bias [N], then ReLU), B packed as above. Each element of C is the
// same chain of multiply-adds over k in order as gemm's, so the two give the same bits.
void gemmPanels(const float* A, int64_t M, int64_t K, const float* Bp, int64_t N, float* C, const float* bias, bool relu);

}  // namespace colloquy
