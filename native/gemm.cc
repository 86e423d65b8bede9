// Single-precision matrix multiply for Colloquy's TensorFlow.js kernels (see native/README.md).
//
//   C[b] (+)= op(A[b]) · op(B[b])   (+ bias, then ReLU)    row-major, op = identity or transpose
//
// BLIS-style: B is packed in panels of NR columns and A in panels of MR rows, per KC-deep slice,
// and a register-blocked MR×NR micro-kernel accumulates each tile. The AVX2+FMA kernel is chosen
// at run time when the CPU has it; otherwise a portable kernel of the same shape runs. Products
// with very few rows (sampling one token per row) skip packing: they stream B once.
#include "gemm.h"

#include "parallel.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace colloquy {
namespace {

constexpr int MR = 6;
constexpr int NR = 16;
constexpr int KC = 256;
constexpr int MC = 96;   // multiple of MR
constexpr int NC = 2048; // multiple of NR
// Multiply-adds from which a product is split between two threads (~0.1 ms of one core's work).
constexpr double kParallelWork = double(1 << 22);

// Element (i, j) of a strided matrix view.
struct View {
  const float* p;
  int64_t rs, cs;
  float at(int64_t i, int64_t j) const { return p[i * rs + j * cs]; }
};

// A rows [i0, i0+mc) × k [k0, k0+kc) → panels of MR rows, k-major inside a panel, zero-padded.
void packA(const View& A, int64_t i0, int mc, int64_t k0, int kc, float* dst) {
  for (int ip = 0; ip < mc; ip += MR) {
    const int mr = std::min(MR, mc - ip);
    if (A.cs == 1) {
      const float* rows[MR];
      for (int r = 0; r < MR; r++) rows[r] = A.p + (i0 + ip + std::min(r, mr - 1)) * A.rs + k0;
      for (int k = 0; k < kc; k++) {
        for (int r = 0; r < MR; r++) dst[r] = r < mr ? rows[r][k] : 0.0f;
        dst += MR;
      }
    } else {
      for (int k = 0; k < kc; k++) {
        for (int r = 0; r < MR; r++) dst[r] = r < mr ? A.at(i0 + ip + r, k0 + k) : 0.0f;
        dst += MR;
      }
    }
  }
}

// B k [k0, k0+kc) × columns [j0, j0+nc) → panels of NR columns, k-major inside a panel, zero-padded.
void packB(const View& B, int64_t k0, int kc, int64_t j0, int nc, float* dst) {
  for (int jp = 0; jp < nc; jp += NR) {
    const int nr = std::min(NR, nc - jp);
    if (B.cs == 1 && nr == NR) {
      for (int k = 0; k < kc; k++) {
        std::memcpy(dst, B.p + (k0 + k) * B.rs + j0 + jp, NR * sizeof(float));
        dst += NR;
      }
    } else {
      for (int k = 0; k < kc; k++) {
        for (int c = 0; c < NR; c++) dst[c] = c < nr ? B.at(k0 + k, j0 + jp + c) : 0.0f;
        dst += NR;
      }
    }
  }
}

// Every element of C is one multiply-add chain over k = 0 … K−1 in order, started from 0 (or from
// C when accumulating), whichever path computes it. So a row's result does not depend on how
// many rows are multiplied with it (a reply sampled alone or in a batch is the same).

// A partial tile of C (mr×nr) into `t` (row-major, NR wide, zeros elsewhere), or zeros.
inline void loadTile(float* t, const float* c, int64_t ldc, int mr, int nr, bool acc) {
  for (int r = 0; r < MR; r++)
    for (int j = 0; j < NR; j++) t[r * NR + j] = acc && r < mr && j < nr ? c[r * ldc + j] : 0.0f;
}

inline void storeTile(const float* t, float* c, int64_t ldc, int mr, int nr) {
  for (int r = 0; r < mr; r++) std::memcpy(c + r * ldc, t + r * NR, nr * sizeof(float));
}

void kernelGeneric(int kc, const float* a, const float* b, float* c, int64_t ldc, int mr, int nr, bool acc) {
  float t[MR * NR];
  loadTile(t, c, ldc, mr, nr, acc);
  for (int k = 0; k < kc; k++) {
    for (int r = 0; r < MR; r++) {
      const float av = a[r];
      for (int j = 0; j < NR; j++) t[r * NR + j] += av * b[j];
    }
    a += MR;
    b += NR;
  }
  storeTile(t, c, ldc, mr, nr);
}

__attribute__((target("avx2,fma")))
void kernelAvx2(int kc, const float* a, const float* b, float* c, int64_t ldc, int mr, int nr, bool acc) {
  const bool full = mr == MR && nr == NR;
  alignas(32) float t[MR * NR];
  const float* src = c;
  int64_t ld = ldc;
  if (!full) { loadTile(t, c, ldc, mr, nr, acc); src = t; ld = NR; acc = true; }
  __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  if (acc) {
    c00 = _mm256_loadu_ps(src); c01 = _mm256_loadu_ps(src + 8);
    c10 = _mm256_loadu_ps(src + ld); c11 = _mm256_loadu_ps(src + ld + 8);
    c20 = _mm256_loadu_ps(src + 2 * ld); c21 = _mm256_loadu_ps(src + 2 * ld + 8);
    c30 = _mm256_loadu_ps(src + 3 * ld); c31 = _mm256_loadu_ps(src + 3 * ld + 8);
    c40 = _mm256_loadu_ps(src + 4 * ld); c41 = _mm256_loadu_ps(src + 4 * ld + 8);
    c50 = _mm256_loadu_ps(src + 5 * ld); c51 = _mm256_loadu_ps(src + 5 * ld + 8);
  } else {
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
  }
#pragma GCC unroll 4
  for (int k = 0; k < kc; k++) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 av = _mm256_broadcast_ss(a);
    c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51);
    a += MR;
    b += NR;
  }
  float* dst = full ? c : t;
  ld = full ? ldc : NR;
  _mm256_storeu_ps(dst, c00); _mm256_storeu_ps(dst + 8, c01);
  _mm256_storeu_ps(dst + ld, c10); _mm256_storeu_ps(dst + ld + 8, c11);
  _mm256_storeu_ps(dst + 2 * ld, c20); _mm256_storeu_ps(dst + 2 * ld + 8, c21);
  _mm256_storeu_ps(dst + 3 * ld, c30); _mm256_storeu_ps(dst + 3 * ld + 8, c31);
  _mm256_storeu_ps(dst + 4 * ld, c40); _mm256_storeu_ps(dst + 4 * ld + 8, c41);
  _mm256_storeu_ps(dst + 5 * ld, c50); _mm256_storeu_ps(dst + 5 * ld + 8, c51);
  if (!full) storeTile(t, c, ldc, mr, nr);
}

using Kernel = void (*)(int, const float*, const float*, float*, int64_t, int, int, bool);

bool cpuHasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

// Few rows and B not transposed: no packing (the multiply-add chains run in the same k order).
constexpr int FEW_ROWS = 24;

// Rows m0 … m0+R−1 (R ≤ 6) × columns j0 … j0+15 of C, reading A and B in place (no packing):
// the 6×16 register tile of the packed kernel, for products of few rows where packing B would
// cost as much as the product itself.
template <int R>
__attribute__((target("avx2,fma"), always_inline)) inline
void directTile(const View& A, const View& B, float* C, int64_t ldc, int64_t m0, int64_t j0, int64_t K, bool acc) {
  __m256 s[R][2];
  for (int r = 0; r < R; r++) {
    float* c = C + (m0 + r) * ldc + j0;
    s[r][0] = acc ? _mm256_loadu_ps(c) : _mm256_setzero_ps();
    s[r][1] = acc ? _mm256_loadu_ps(c + 8) : _mm256_setzero_ps();
  }
  const float* b = B.p + j0;
  const float* a = A.p + m0 * A.rs;
  for (int64_t k = 0; k < K; k++, b += B.rs, a += A.cs) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    for (int r = 0; r < R; r++) {
      const __m256 av = _mm256_broadcast_ss(a + r * A.rs);
      s[r][0] = _mm256_fmadd_ps(av, b0, s[r][0]);
      s[r][1] = _mm256_fmadd_ps(av, b1, s[r][1]);
    }
  }
  for (int r = 0; r < R; r++) {
    float* c = C + (m0 + r) * ldc + j0;
    _mm256_storeu_ps(c, s[r][0]);
    _mm256_storeu_ps(c + 8, s[r][1]);
  }
}

// One to four rows: stream B row by row (contiguous, so the prefetchers keep up) into R rows of C
// held in L1, a chunk of columns at a time; each C element is still one chain over k in order.
template <int R>
__attribute__((target("avx2,fma")))
void streamRows(const View& A, const View& B, float* C, int64_t ldc, int64_t m0, int64_t N, int64_t K, bool acc) {
  constexpr int64_t CHUNK = 1024;
  for (int64_t j0 = 0; j0 < N; j0 += CHUNK) {
    const int64_t nc = std::min(CHUNK, N - j0), nv = nc & ~int64_t(7);
    float* c[R];
    for (int r = 0; r < R; r++) {
      c[r] = C + (m0 + r) * ldc + j0;
      if (!acc) std::memset(c[r], 0, nc * sizeof(float));
    }
    for (int64_t k = 0; k < K; k++) {
      const float* b = B.p + k * B.rs + j0;
      __m256 av[R];
      float as[R];
      for (int r = 0; r < R; r++) { as[r] = A.at(m0 + r, k); av[r] = _mm256_set1_ps(as[r]); }
      int64_t j = 0;
      for (; j < nv; j += 8) {
        const __m256 bv = _mm256_loadu_ps(b + j);
        for (int r = 0; r < R; r++) _mm256_storeu_ps(c[r] + j, _mm256_fmadd_ps(av[r], bv, _mm256_loadu_ps(c[r] + j)));
      }
      for (; j < nc; j++)
        for (int r = 0; r < R; r++) c[r][j] = std::fma(as[r], b[j], c[r][j]);
    }
  }
}

__attribute__((target("avx2,fma")))
void fewRowsAvx2(const View& A, const View& B, float* C, int64_t ldc, int64_t M, int64_t N, int64_t K, bool acc) {
  if (M <= 4) {
    switch (M) {
      case 1: streamRows<1>(A, B, C, ldc, 0, N, K, acc); break;
      case 2: streamRows<2>(A, B, C, ldc, 0, N, K, acc); break;
      case 3: streamRows<3>(A, B, C, ldc, 0, N, K, acc); break;
      default: streamRows<4>(A, B, C, ldc, 0, N, K, acc); break;
    }
    return;
  }
  int64_t j0 = 0;
  for (; j0 + NR <= N; j0 += NR) {
    int64_t m = 0;
    for (; m + MR <= M; m += MR) directTile<6>(A, B, C, ldc, m, j0, K, acc);
    switch (M - m) {
      case 5: directTile<5>(A, B, C, ldc, m, j0, K, acc); break;
      case 4: directTile<4>(A, B, C, ldc, m, j0, K, acc); break;
      case 3: directTile<3>(A, B, C, ldc, m, j0, K, acc); break;
      case 2: directTile<2>(A, B, C, ldc, m, j0, K, acc); break;
      case 1: directTile<1>(A, B, C, ldc, m, j0, K, acc); break;
      default: break;
    }
  }
  if (j0 == N) return;
  const int nr = int(N - j0);
  for (int64_t m = 0; m < M; m++) {
    float t[NR];
    float* c = C + m * ldc + j0;
    for (int j = 0; j < nr; j++) t[j] = acc ? c[j] : 0.0f;
    for (int64_t k = 0; k < K; k++) {
      const float a = A.at(m, k);
      const float* b = B.p + k * B.rs + j0;
      for (int j = 0; j < nr; j++) t[j] = std::fma(a, b[j], t[j]);
    }
    std::memcpy(c, t, nr * sizeof(float));
  }
}

void fewRowsGeneric(const View& A, const View& B, float* C, int64_t ldc, int64_t M, int64_t N, int64_t K, bool acc) {
  for (int64_t m = 0; m < M; m++) {
    float* c = C + m * ldc;
    if (!acc) std::memset(c, 0, N * sizeof(float));
    for (int64_t k = 0; k < K; k++) {
      const float a = A.at(m, k);
      const float* b = B.p + k * B.rs;
      for (int64_t j = 0; j < N; j++) c[j] += a * b[j];
    }
  }
}

thread_local std::vector<float> packBufA, packBufB;

void gemmOne(const View& A, const View& B, float* C, int64_t ldc, int64_t M, int64_t N, int64_t K, bool acc, bool avx2) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!acc) for (int64_t i = 0; i < M; i++) std::memset(C + i * ldc, 0, N * sizeof(float));
    return;
  }
  if (M <= FEW_ROWS && B.cs == 1) {
    if (avx2) fewRowsAvx2(A, B, C, ldc, M, N, K, acc);
    else fewRowsGeneric(A, B, C, ldc, M, N, K, acc);
    return;
  }
  const Kernel kernel = avx2 ? kernelAvx2 : kernelGeneric;
  packBufA.resize(size_t(MC) * KC);
  packBufB.resize(size_t(KC) * NC);
  float* pa = packBufA.data();
  float* pb = packBufB.data();
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int nc = int(std::min<int64_t>(NC, N - jc));
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int kc = int(std::min<int64_t>(KC, K - pc));
      packB(B, pc, kc, jc, nc, pb);
      const bool add = acc || pc > 0;
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int mc = int(std::min<int64_t>(MC, M - ic));
        packA(A, ic, mc, pc, kc, pa);
        for (int jr = 0; jr < nc; jr += NR) {
          const int nr = std::min(NR, nc - jr);
          for (int ir = 0; ir < mc; ir += MR) {
            const int mr = std::min(MR, mc - ir);
            kernel(kc, pa + int64_t(ir) * kc, pb + int64_t(jr) * kc, C + (ic + ir) * ldc + jc + jr, ldc, mr, nr, add);
          }
        }
      }
    }
  }
}


// f(j0, j1) over the columns [0, N): on two threads, in halves split at a panel boundary, when
// the product is large and has more than FEW_ROWS rows (products of few rows stream B from memory,
// where a second thread does not pay); otherwise f(0, N) here.
template <class F>
void columnHalves(int64_t M, int64_t N, double work, F&& f) {
  const bool split = work >= kParallelWork && N >= 2 * NR && M > FEW_ROWS;
  const int64_t mid = std::min(N, (N / 2 + NR - 1) / NR * NR);
  parallel2([&](int part) {
    if (!split) { if (part == 0) f(int64_t(0), N); }
    else if (part == 0) f(int64_t(0), mid);
    else f(mid, N);
  }, split);
}

// After the product: C (+)= bias (its first n entries, or bias[0] when biasSize is 1), then the
// activation (ReLU; or act 1 relu6, 2 leaky ReLU with alpha, 3 sigmoid, 4 elu), on rows of n columns.
void epilogue(float* C, int64_t ldc, int64_t M, int64_t n, const float* bias, int64_t biasSize, bool relu, int act, float alpha) {
  if (!bias && !relu && !act) return;
  for (int64_t i = 0; i < M; i++) {
    float* cr = C + i * ldc;
    if (bias) {
      if (biasSize == 1) for (int64_t j = 0; j < n; j++) cr[j] += bias[0];
      else for (int64_t j = 0; j < n; j++) cr[j] += bias[j];
    }
    if (relu) for (int64_t j = 0; j < n; j++) cr[j] = cr[j] > 0.0f ? cr[j] : 0.0f;
    switch (act) {
      case 1: for (int64_t j = 0; j < n; j++) cr[j] = std::min(6.0f, std::max(0.0f, cr[j])); break;
      case 2: for (int64_t j = 0; j < n; j++) cr[j] = cr[j] < 0.0f ? alpha * cr[j] : cr[j]; break;
      case 3: for (int64_t j = 0; j < n; j++) cr[j] = 1.0f / (1.0f + std::exp(-cr[j])); break;
      case 4: for (int64_t j = 0; j < n; j++) cr[j] = cr[j] < 0.0f ? std::expm1(cr[j]) : cr[j]; break;
      default: break;
    }
  }
}

}  // namespace

bool gemmUsesAvx2() { return cpuHasAvx2(); }

void gemmPanels(const float* A, int64_t M, int64_t K, const float* Bp, int64_t N, float* C, const float* bias, bool relu) {
  static_assert(kPanel == NR, "panels are the micro-kernel's width");
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; i++) std::memset(C + i * N, 0, N * sizeof(float));
  } else {
    const Kernel kernel = cpuHasAvx2() ? kernelAvx2 : kernelGeneric;
    thread_local std::vector<float> pa;
    const int64_t tiles = (M + MR - 1) / MR;
    pa.resize(size_t(tiles) * MR * K);
    const View Av{A, K, 1};
    for (int64_t t = 0; t < tiles; t++) packA(Av, t * MR, int(std::min<int64_t>(MR, M - t * MR)), 0, int(K), pa.data() + t * MR * K);
    const float* packed = pa.data();
    const auto panels = [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; j += NR) {
        const int nr = int(std::min<int64_t>(NR, N - j));
        const float* b = Bp + j * K;
        for (int64_t t = 0; t < tiles; t++) {
          const int mr = int(std::min<int64_t>(MR, M - t * MR));
          kernel(int(K), packed + t * MR * K, b, C + t * MR * N + j, N, mr, nr, false);
        }
      }
    };
    columnHalves(M, N, double(M) * double(N) * double(K), panels);
  }
  epilogue(C, N, M, N, bias, N, relu, 0, 0.0f);
}

void gemm(const GemmArgs& g) {
  const bool avx2 = cpuHasAvx2() && !g.portable;
  const int64_t lda = g.lda ? g.lda : (g.transA ? g.M : g.K);
  const int64_t ldb = g.ldb ? g.ldb : (g.transB ? g.K : g.N);
  const int64_t ldc = g.ldc ? g.ldc : g.N;
  // Columns [j0, j1) of every batch member; the two threads take halves at a panel boundary, so
  // each element of C is computed by the same chain either way.
  const auto columns = [&](int64_t j0, int64_t j1) {
    if (j1 <= j0) return;
    for (int64_t b = 0; b < g.batch; b++) {
      const View A = g.transA ? View{g.a + b * g.strideA, 1, lda} : View{g.a + b * g.strideA, lda, 1};
      const View B = g.transB ? View{g.b + b * g.strideB + j0 * ldb, 1, ldb} : View{g.b + b * g.strideB + j0, ldb, 1};
      float* C = g.c + b * g.M * ldc + j0;
      gemmOne(A, B, C, ldc, g.M, j1 - j0, g.K, g.accumulate, avx2);
      epilogue(C, ldc, g.M, j1 - j0, g.bias ? (g.biasSize == 1 ? g.bias : g.bias + j0) : nullptr, g.biasSize, g.relu, g.act, g.alpha);
    }
  };
  columnHalves(g.M, g.N, double(g.batch) * double(g.M) * double(g.N) * double(g.K), columns);
}

}  // namespace colloquy
