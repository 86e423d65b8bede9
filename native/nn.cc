// The transformer's memory-bound and attention pieces for models/lm-ops.ts and sampler.ts,
// on plain float arrays (see native/README.md). Matrix products go through gemm.cc.
#include "nn.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "gemm.h"

namespace colloquy {
namespace {

bool hasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

// e^x for 8 floats (Cephes' polynomial, relative error about 2e-7; inputs below −87 give 0).
__attribute__((target("avx2,fma"), always_inline)) inline __m256 exp8(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.0f);
  const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
  __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, z, x);
  y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  return _mm256_andnot_ps(under, y);
}

__attribute__((target("avx2,fma"))) float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

__attribute__((target("avx2,fma"))) double hsum8(__m256 v) {
  alignas(32) float t[8];
  _mm256_store_ps(t, v);
  return (double(t[0]) + t[1] + t[2] + t[3]) + (double(t[4]) + t[5] + t[6] + t[7]);
}

// x[0 … n) ← e^(x − max); returns the sum (float64) and writes the max.
__attribute__((target("avx2,fma"))) double expShiftAvx2(float* x, int64_t n, float* maxOut) {
  __m256 mv = _mm256_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + j));
  float m = hmax8(mv);
  for (; j < n; j++) m = std::max(m, x[j]);
  const __m256 mb = _mm256_set1_ps(m);
  __m256 s = _mm256_setzero_ps();
  double tail = 0;
  j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), mb));
    _mm256_storeu_ps(x + j, e);
    s = _mm256_add_ps(s, e);
  }
  for (; j < n; j++) { x[j] = std::exp(x[j] - m); tail += x[j]; }
  *maxOut = m;
  return hsum8(s) + tail;
}

double expShiftGeneric(float* x, int64_t n, float* maxOut) {
  float m = -INFINITY;
  for (int64_t j = 0; j < n; j++) m = std::max(m, x[j]);
  double s = 0;
  for (int64_t j = 0; j < n; j++) { x[j] = std::exp(x[j] - m); s += x[j]; }
  *maxOut = m;
  return s;
}

double expShift(float* x, int64_t n, float* maxOut) {
  return hasAvx2() ? expShiftAvx2(x, n, maxOut) : expShiftGeneric(x, n, maxOut);
}


// Keys visible to query i of a row left-padded by `start`: [lo, i] (a pad query sees itself only).
inline int keyLo(int i, int start) { return i < start ? i : start; }

}  // namespace

double logSoftmaxRows(float* x, int64_t rows, int64_t n) {
  std::vector<float> e(n);
  for (int64_t r = 0; r < rows; r++) {
    float* row = x + r * n;
    std::memcpy(e.data(), row, n * sizeof(float));
    float m;
    const double s = expShift(e.data(), n, &m);
    const float shift = float(double(m) + std::log(s));
    for (int64_t j = 0; j < n; j++) row[j] -= shift;
  }
  return 0;
}

double crossEntropyForward(const float* h, const float* E, const int32_t* targets, const float* weights,
                           int64_t n, int64_t V, int64_t d, float* P) {
  matmul(h, E, P, n, V, d, false, true);
  double loss = 0, wsum = 0;
  for (int64_t i = 0; i < n; i++) {
    float* row = P + i * V;
    const double w = weights ? weights[i] : 1.0;
    const float ly = row[targets[i]];
    float m;
    const double s = expShift(row, V, &m);
    loss += w * (double(m) + std::log(s) - ly);
    wsum += w;
    const float inv = float(1.0 / s);
    for (int64_t j = 0; j < V; j++) row[j] *= inv;
  }
  return wsum > 0 ? loss / wsum : 0;
}

void crossEntropyBackward(const float* h, const float* E, float* P, const int32_t* targets, const float* weights,
                          int64_t n, int64_t V, int64_t d, float scale, float* dh, float* dE) {
  for (int64_t i = 0; i < n; i++) {
    float* row = P + i * V;
    row[targets[i]] -= 1.0f;
    const float f = weights ? weights[i] * scale : scale;
    for (int64_t j = 0; j < V; j++) row[j] *= f;
  }
  matmul(P, E, dh, n, d, V, false, false);
  matmul(P, h, dE, V, d, n, true, false);
}

void policyLogProbsForward(const float* h, const float* E, const int32_t* actions, int64_t n, int64_t V, int64_t d,
                           float* P, float* logP, double* ent, float* out) {
  matmul(h, E, logP, n, V, d, false, true);
  for (int64_t i = 0; i < n; i++) {
    float* l = logP + i * V;
    float* p = P + i * V;
    std::memcpy(p, l, V * sizeof(float));
    float m;
    const double s = expShift(p, V, &m);
    const float shift = float(double(m) + std::log(s));
    const float inv = float(1.0 / s);
    double H = 0;
    for (int64_t j = 0; j < V; j++) {
      l[j] -= shift;
      p[j] *= inv;
      H -= double(p[j]) * double(l[j]);
    }
    ent[i] = H;
    out[2 * i] = l[actions[i]];
    out[2 * i + 1] = float(H);
  }
}

void policyLogProbsBackward(const float* h, const float* E, float* P, const float* logP, const double* ent,
                            const int32_t* actions, const float* g, int64_t n, int64_t V, int64_t d, float* dh, float* dE) {
  for (int64_t i = 0; i < n; i++) {
    float* p = P + i * V;
    const float* l = logP + i * V;
    const float gl = g[2 * i], gh = g[2 * i + 1], H = float(ent[i]);
    for (int64_t j = 0; j < V; j++) p[j] = -gl * p[j] - gh * p[j] * (l[j] + H);
    p[actions[i]] += gl;
  }
  matmul(P, E, dh, n, d, V, false, false);
  if (dE) matmul(P, h, dE, V, d, n, true, false);
}

namespace {

// Head h of sequence b as contiguous T×hd blocks (Q scaled), or their transposes.
struct Heads {
  int T, hd, d;
  std::vector<float> a, b, c, e;
  Heads(int T_, int hd_, int d_) : T(T_), hd(hd_), d(d_), a(size_t(T_) * hd_), b(size_t(T_) * hd_), c(size_t(T_) * hd_), e(size_t(T_) * hd_) {}
  // dst[t, j] = src[(row0 + t)·ld + col + j]·s   (transposed: dst[j, t])
  void take(std::vector<float>& dst, const float* src, int64_t row0, int64_t ld, int col, float s, bool transposed) const {
    for (int t = 0; t < T; t++) {
      const float* p = src + (row0 + t) * ld + col;
      if (transposed) for (int j = 0; j < hd; j++) dst[size_t(j) * T + t] = p[j] * s;
      else for (int j = 0; j < hd; j++) dst[size_t(t) * hd + j] = p[j] * s;
    }
  }
};

}  // namespace

namespace {

// C (+)= op(A)·op(B) with explicit row strides (0: packed).
void mmld(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t M, int64_t N, int64_t K,
          bool ta, bool tb, bool acc) {
  GemmArgs g{a, b, c, 1, M, N, K, 0, 0, ta, tb, acc, nullptr, 0, false, false, 0, 0.0f, lda, ldb, ldc};
  gemm(g);
}

// Query rows are taken in blocks of QB: block [i0, i1) only needs keys [0, i1) (causal), so the
// products skip the upper triangle block by block (about 5/8 of the full T×T work at T = 256).
constexpr int QB = 64;

}  // namespace

void attentionForward(const float* qkv, int B, int T, int H, int hd, const int32_t* starts, float* out, float* P) {
  const int d = H * hd, d3 = 3 * d;
  const float scale = 1.0f / std::sqrt(float(hd));
  Heads hs(T, hd, d);
  std::vector<float> o(size_t(T) * hd);
  for (int b = 0; b < B; b++) {
    const int start = starts ? starts[b] : 0;
    for (int h = 0; h < H; h++) {
      float* S = P + (int64_t(b) * H + h) * T * T;
      hs.take(hs.a, qkv, int64_t(b) * T, d3, h * hd, scale, false);         // Q·scale [T, hd]
      hs.take(hs.b, qkv, int64_t(b) * T, d3, d + h * hd, 1.0f, true);       // Kᵀ [hd, T]
      hs.take(hs.c, qkv, int64_t(b) * T, d3, 2 * d + h * hd, 1.0f, false);  // V [T, hd]
      for (int i0 = 0; i0 < T; i0 += QB) {
        const int i1 = std::min(T, i0 + QB), rows = i1 - i0;
        float* Sb = S + int64_t(i0) * T;
        mmld(hs.a.data() + size_t(i0) * hd, hd, hs.b.data(), T, Sb, T, rows, i1, hd, false, false, false);
        for (int i = i0; i < i1; i++) {
          float* row = S + int64_t(i) * T;
          const int lo = keyLo(i, start);
          float m;
          const float inv = float(1.0 / expShift(row + lo, i - lo + 1, &m));
          for (int j = 0; j < lo; j++) row[j] = 0.0f;
          for (int j = lo; j <= i; j++) row[j] *= inv;
          for (int j = i + 1; j < T; j++) row[j] = 0.0f;
        }
        mmld(Sb, T, hs.c.data(), hd, o.data() + size_t(i0) * hd, hd, rows, hd, i1, false, false, false);
      }
      for (int t = 0; t < T; t++) std::memcpy(out + (int64_t(b) * T + t) * d + h * hd, o.data() + size_t(t) * hd, hd * sizeof(float));
    }
  }
}

void attentionBackward(const float* qkv, const float* dout, const float* P, int B, int T, int H, int hd, const int32_t* starts, float* dqkv) {
  const int d = H * hd, d3 = 3 * d;
  const float scale = 1.0f / std::sqrt(float(hd));
  Heads hs(T, hd, d);
  std::vector<float> dP(size_t(T) * T), dQ(size_t(T) * hd), dK(size_t(T) * hd), dV(size_t(T) * hd);
  for (int b = 0; b < B; b++) {
    const int start = starts ? starts[b] : 0;
    for (int h = 0; h < H; h++) {
      const float* Pb = P + (int64_t(b) * H + h) * T * T;
      hs.take(hs.a, qkv, int64_t(b) * T, d3, h * hd, scale, false);          // Q·scale [T, hd]
      hs.take(hs.b, qkv, int64_t(b) * T, d3, d + h * hd, 1.0f, false);       // K [T, hd]
      hs.take(hs.c, qkv, int64_t(b) * T, d3, 2 * d + h * hd, 1.0f, true);    // Vᵀ [hd, T]
      hs.take(hs.e, dout, int64_t(b) * T, d, h * hd, 1.0f, false);           // dO [T, hd]
      std::fill(dK.begin(), dK.end(), 0.0f);
      std::fill(dV.begin(), dV.end(), 0.0f);
      for (int i0 = 0; i0 < T; i0 += QB) {
        const int i1 = std::min(T, i0 + QB), rows = i1 - i0;
        const float* Pblk = Pb + int64_t(i0) * T;
        float* G = dP.data() + size_t(i0) * T;
        mmld(hs.e.data() + size_t(i0) * hd, hd, hs.c.data(), T, G, T, rows, i1, hd, false, false, false);  // dP = dO·Vᵀ
        mmld(Pblk, T, hs.e.data() + size_t(i0) * hd, hd, dV.data(), hd, i1, hd, rows, true, false, true);  // dV += Pᵀ·dO
        for (int i = i0; i < i1; i++) {                                        // dS = P ⊙ (dP − Σ dP⊙P)
          float* g = dP.data() + size_t(i) * T;
          const float* p = Pb + int64_t(i) * T;
          const int lo = keyLo(i, start);
          double dot = 0;
          for (int j = lo; j <= i; j++) dot += double(g[j]) * p[j];
          const float df = float(dot);
          for (int j = 0; j < i1; j++) g[j] = (j >= lo && j <= i) ? p[j] * (g[j] - df) : 0.0f;
        }
        mmld(G, T, hs.b.data(), hd, dQ.data() + size_t(i0) * hd, hd, rows, hd, i1, false, false, false);   // dQs = dS·K
        mmld(G, T, hs.a.data() + size_t(i0) * hd, hd, dK.data(), hd, i1, hd, rows, true, false, true);     // dK += dSᵀ·Qs
      }
      for (int t = 0; t < T; t++) {
        float* row = dqkv + (int64_t(b) * T + t) * d3 + h * hd;
        for (int j = 0; j < hd; j++) {
          row[j] = dQ[size_t(t) * hd + j] * scale;
          row[d + j] = dK[size_t(t) * hd + j];
          row[2 * d + j] = dV[size_t(t) * hd + j];
        }
      }
    }
  }
}

namespace {

// out[h] += Σ_t p_h[t]·V_h[t] for G heads at once (G·NV independent multiply-add chains, each in t
// order, as one head at a time would run them).
template <int NV, int G>
__attribute__((target("avx2,fma"), always_inline)) inline
void weightedValues(const float* Vc, const float* s, const float* inv, int slot, int C, int h0, int stride, float* out) {
  constexpr int hd = 8 * NV;
  __m256 o[G][NV];
  for (int g = 0; g < G; g++) for (int v = 0; v < NV; v++) o[g][v] = _mm256_setzero_ps();
  for (int t = 0; t <= slot; t++) {
    for (int g = 0; g < G; g++) {
      const __m256 p = _mm256_set1_ps(s[(h0 + g) * stride + t] * inv[h0 + g]);
      const float* vr = Vc + (int64_t(h0 + g) * C + t) * hd;
      for (int v = 0; v < NV; v++) o[g][v] = _mm256_fmadd_ps(p, _mm256_loadu_ps(vr + 8 * v), o[g][v]);
    }
  }
  for (int g = 0; g < G; g++) for (int v = 0; v < NV; v++) _mm256_storeu_ps(out + (h0 + g) * hd + 8 * v, o[g][v]);
}

template <int NV>
__attribute__((target("avx2,fma")))
void valuesAvx2(const float* Vc, const float* s, const float* inv, int slot, int H, int C, int stride, float* out) {
  constexpr int G = NV >= 8 ? 1 : 8 / NV;
  int h = 0;
  for (; h + G <= H; h += G) weightedValues<NV, G>(Vc, s, inv, slot, C, h, stride, out);
  for (; h < H; h++) weightedValues<NV, 1>(Vc, s, inv, slot, C, h, stride, out);
}

__attribute__((target("avx2,fma")))
void attendCachedAvx2(const float* qkv, const float* Kc, const float* Vc, int slot, int H, int hd, int C, float* out, float* scores) {
  const int stride = C + 1;
  float inv[64];
  const int nv = hd / 8;
  const float scale = 1.0f / std::sqrt(float(hd));
  for (int h = 0; h < H; h++) {
    const float* K = Kc + int64_t(h) * C * hd;
    const float* q = qkv + h * hd;
    float* s = scores + h * stride;
    int t = 0;
    // Four slots at a time: the same products and the same float64 sums per slot as hsum8 below,
    // with the four slots in the lanes of the sums (independent chains instead of one at a time).
    for (; t + 4 <= slot + 1; t += 4) {
      const float* k = K + int64_t(t) * hd;
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int v = 0; v < nv; v++) {
        const __m256 qv = _mm256_loadu_ps(q + 8 * v);
        a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + 8 * v), a0);
        a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + hd + 8 * v), a1);
        a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + 2 * hd + 8 * v), a2);
        a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + 3 * hd + 8 * v), a3);
      }
      __m128 l0 = _mm256_castps256_ps128(a0), l1 = _mm256_castps256_ps128(a1), l2 = _mm256_castps256_ps128(a2), l3 = _mm256_castps256_ps128(a3);
      __m128 h0 = _mm256_extractf128_ps(a0, 1), h1 = _mm256_extractf128_ps(a1, 1), h2 = _mm256_extractf128_ps(a2, 1), h3 = _mm256_extractf128_ps(a3, 1);
      _MM_TRANSPOSE4_PS(l0, l1, l2, l3);
      _MM_TRANSPOSE4_PS(h0, h1, h2, h3);
      const __m256d lo = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(_mm256_cvtps_pd(l0), _mm256_cvtps_pd(l1)), _mm256_cvtps_pd(l2)), _mm256_cvtps_pd(l3));
      const __m256d hi = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(_mm256_cvtps_pd(h0), _mm256_cvtps_pd(h1)), _mm256_cvtps_pd(h2)), _mm256_cvtps_pd(h3));
      _mm_storeu_ps(s + t, _mm_mul_ps(_mm256_cvtpd_ps(_mm256_add_pd(lo, hi)), _mm_set1_ps(scale)));
    }
    for (; t <= slot; t++) {
      const float* k = K + int64_t(t) * hd;
      __m256 acc = _mm256_setzero_ps();
      for (int v = 0; v < nv; v++) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * v), _mm256_loadu_ps(k + 8 * v), acc);
      s[t] = float(hsum8(acc)) * scale;
    }
    float m;
    inv[h] = float(1.0 / expShift(s, slot + 1, &m));
  }
  switch (nv) {
    case 1: valuesAvx2<1>(Vc, scores, inv, slot, H, C, stride, out); break;
    case 2: valuesAvx2<2>(Vc, scores, inv, slot, H, C, stride, out); break;
    case 3: valuesAvx2<3>(Vc, scores, inv, slot, H, C, stride, out); break;
    case 4: valuesAvx2<4>(Vc, scores, inv, slot, H, C, stride, out); break;
    case 5: valuesAvx2<5>(Vc, scores, inv, slot, H, C, stride, out); break;
    case 6: valuesAvx2<6>(Vc, scores, inv, slot, H, C, stride, out); break;
    case 7: valuesAvx2<7>(Vc, scores, inv, slot, H, C, stride, out); break;
    default: valuesAvx2<8>(Vc, scores, inv, slot, H, C, stride, out); break;
  }
}

}  // namespace

void attendCached(const float* qkv, float* Kc, float* Vc, int slot, int H, int hd, int C, float* out) {
  storeCached(qkv, Kc, Vc, slot, H, hd, C);
  attendStored(qkv, Kc, Vc, slot, H, hd, C, out);
}

void storeCached(const float* qkv, float* Kc, float* Vc, int slot, int H, int hd, int C) {
  const int d = H * hd;
  for (int h = 0; h < H; h++) {  // the new token's k and v into each head's cache
    std::memcpy(Kc + (int64_t(h) * C + slot) * hd, qkv + d + h * hd, hd * sizeof(float));
    std::memcpy(Vc + (int64_t(h) * C + slot) * hd, qkv + 2 * d + h * hd, hd * sizeof(float));
  }
}

void attendStored(const float* qkv, const float* Kc, const float* Vc, int slot, int H, int hd, int C, float* out) {
  thread_local std::vector<float> s;
  s.resize(size_t(H) * (C + 1));
  if (hasAvx2() && hd % 8 == 0 && hd <= 64 && H <= 64) {
    attendCachedAvx2(qkv, Kc, Vc, slot, H, hd, C, out, s.data());
    return;
  }
  const float scale = 1.0f / std::sqrt(float(hd));
  for (int h = 0; h < H; h++) {
    const float* K = Kc + int64_t(h) * C * hd;
    const float* V = Vc + int64_t(h) * C * hd;
    const float* q = qkv + h * hd;
    for (int t = 0; t <= slot; t++) {
      const float* k = K + int64_t(t) * hd;
      float acc = 0;
      for (int j = 0; j < hd; j++) acc += q[j] * k[j];
      s[t] = acc * scale;
    }
    float m;
    const float inv = float(1.0 / expShift(s.data(), slot + 1, &m));
    float* o = out + h * hd;
    for (int j = 0; j < hd; j++) o[j] = 0.0f;
    for (int t = 0; t <= slot; t++) {
      const float p = s[t] * inv;
      const float* v = V + int64_t(t) * hd;
      for (int j = 0; j < hd; j++) o[j] += p * v[j];
    }
  }
}

int sampleRow(const float* logProbs, int64_t V, double temperature, double u) {
  thread_local std::vector<float> w;
  w.resize(V);
  int64_t best = 0;
  for (int64_t j = 1; j < V; j++) if (logProbs[j] > logProbs[best]) best = j;
  if (temperature <= 0) return int(best);
  const float max = logProbs[best], inv = float(1.0 / temperature), floor = float(max - 50.0 * temperature);
  for (int64_t j = 0; j < V; j++) w[j] = logProbs[j] > floor ? (logProbs[j] - max) * inv : -INFINITY;
  float m;
  const double total = expShift(w.data(), V, &m);
  double r = u * total;
  for (int64_t j = 0; j < V; j++) { r -= w[j]; if (r < 0) return int(j); }
  for (int64_t j = V - 1; j >= 0; j--) if (w[j] > 0) return int(j);
  return int(best);
}

}  // namespace colloquy

namespace colloquy {

void layerNormForward(const float* x, int64_t n, int64_t d, const float* g, const float* b, float eps, float* xhat, float* rstd, float* out) {
  for (int64_t r = 0; r < n; r++) {
    const float* xr = x + r * d;
    double mean = 0;
    for (int64_t j = 0; j < d; j++) mean += xr[j];
    mean /= double(d);
    double v = 0;
    for (int64_t j = 0; j < d; j++) { const double c = xr[j] - mean; v += c * c; }
    const float rs = float(1.0 / std::sqrt(v / double(d) + eps));
    const float mf = float(mean);
    rstd[r] = rs;
    float* hr = xhat + r * d;
    float* o = out + r * d;
    for (int64_t j = 0; j < d; j++) {
      const float h = (xr[j] - mf) * rs;
      hr[j] = h;
      o[j] = h * g[j] + b[j];
    }
  }
}

void layerNormBackward(const float* dy, const float* xhat, const float* rstd, const float* g, int64_t n, int64_t d, float* dx, float* dg, float* db) {
  std::vector<double> sg(d, 0.0), sb(d, 0.0);
  for (int64_t r = 0; r < n; r++) {
    const float* gy = dy + r * d;
    const float* h = xhat + r * d;
    double m1 = 0, m2 = 0;
    for (int64_t j = 0; j < d; j++) {
      sg[j] += double(gy[j]) * h[j];
      sb[j] += gy[j];
      const double dh = double(gy[j]) * g[j];
      m1 += dh;
      m2 += dh * h[j];
    }
    const float a = float(m1 / double(d)), c = float(m2 / double(d)), rs = rstd[r];
    float* o = dx + r * d;
    for (int64_t j = 0; j < d; j++) o[j] = rs * (gy[j] * g[j] - a - h[j] * c);
  }
  for (int64_t j = 0; j < d; j++) { dg[j] = float(sg[j]); db[j] = float(sb[j]); }
}

}  // namespace colloquy

namespace colloquy {

namespace {
constexpr double kSqrt2OverPi = 0.7978845608028654, kInvSqrt2Pi = 0.3989422804014327, kInvSqrt2 = 0.7071067811865476;
}

void geluForward(const float* x, int64_t n, int kind, float* out) {
  if (kind == 1) {
    for (int64_t i = 0; i < n; i++) { const double v = x[i]; out[i] = float(0.5 * v * std::erfc(-v * kInvSqrt2)); }
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    const double v = x[i];
    out[i] = float(0.5 * v * (1.0 + std::tanh(kSqrt2OverPi * (v + 0.044715 * v * v * v))));
  }
}

void geluBackward(const float* x, const float* dy, int64_t n, int kind, float* dx) {
  for (int64_t i = 0; i < n; i++) {
    const double v = x[i];
    double d;
    if (kind == 1) {
      d = 0.5 * std::erfc(-v * kInvSqrt2) + v * kInvSqrt2Pi * std::exp(-0.5 * v * v);
    } else {
      const double t = std::tanh(kSqrt2OverPi * (v + 0.044715 * v * v * v));
      d = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * kSqrt2OverPi * (1.0 + 3.0 * 0.044715 * v * v);
    }
    dx[i] = float(dy[i] * d);
  }
}

}  // namespace colloquy
