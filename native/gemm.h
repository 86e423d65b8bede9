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

}  // namespace colloquy
