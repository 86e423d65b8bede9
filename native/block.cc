// A transformer block forward and backward in one native call each (block.h).
#include "block.h"

#include <cstring>
#include <vector>

#include "gemm.h"
#include "nn.h"

namespace colloquy {
namespace {

// A block's parameters (or their gradient) in the packed layout of block.h; F: const float or float.
template <class F>
struct Weights {
  F *ln1g, *ln1b, *qkvW, *qkvB, *outW, *outB, *ln2g, *ln2b, *fcW, *fcB, *projW, *projB;
  Weights(F* o, int64_t d, int64_t ff) {
    ln1g = o; o += d; ln1b = o; o += d;
    qkvW = o; o += d * 3 * d; qkvB = o; o += 3 * d;
    outW = o; o += d * d; outB = o; o += d;
    ln2g = o; o += d; ln2b = o; o += d;
    fcW = o; o += d * ff; fcB = o; o += ff;
    projW = o; o += ff * d; projB = o;
  }
};

// The saved activations' layout (blockSavedFloats).
struct Saved {
  float *xhat1, *rstd1, *qkv, *P, *att, *xhat2, *rstd2, *h1, *h2, *f, *g;
  Saved(float* o, const BlockDims& D, int64_t m) {
    const int64_t n = int64_t(D.B) * D.T, d = D.d;
    xhat1 = o; o += n * d; rstd1 = o; o += n;
    h1 = o; o += n * d;
    qkv = o; o += n * 3 * d;
    P = o; o += int64_t(D.B) * D.H * D.T * D.T;
    att = o; o += n * d;
    xhat2 = o; o += m * d; rstd2 = o; o += m;
    h2 = o; o += m * d;
    f = o; o += m * D.F;
    g = o;
  }
};

// y = x·W (+ bias, ReLU): the product TF.js's fused matMul runs.
void linearFwd(const float* x, const float* W, const float* b, int64_t M, int64_t K, int64_t N, bool relu, float* y) {
  matmul(x, W, y, M, N, K, false, false, b, relu);
}

// linearRelu's gradient (lm-ops.ts): dx = G·Wᵀ, dW = xᵀ·G, db = ones·G.
void linearBwd(const float* x, const float* W, const float* G, int64_t M, int64_t K, int64_t N, float* dx, float* dW, float* db) {
  matmul(G, W, dx, M, K, N, false, true);
  matmul(x, G, dW, K, N, M, true, false);
  thread_local std::vector<float> ones;
  if (int64_t(ones.size()) < M) ones.assign(size_t(M), 1.0f);
  matmul(ones.data(), G, db, 1, N, M, false, false);
}

// Scratch arrays reused from call to call (fresh allocations of this size cost page faults).
float* scratch(int slot, size_t n, bool zero) {
  thread_local std::vector<float> bufs[8];
  std::vector<float>& b = bufs[slot];
  if (b.size() < n) b.resize(n);
  if (zero) std::fill(b.begin(), b.begin() + n, 0.0f);
  return b.data();
}

void gatherRows(const float* x, int64_t d, int64_t m, const int32_t* rows, float* out) {
  for (int64_t i = 0; i < m; i++) std::memcpy(out + i * d, x + (rows ? int64_t(rows[i]) : i) * d, d * sizeof(float));
}

}  // namespace

int64_t blockParamFloats(int64_t d, int64_t F) {
  return 2 * d + d * 3 * d + 3 * d + d * d + d + 2 * d + d * F + F + F * d + d;
}

int64_t blockSavedFloats(const BlockDims& D, int64_t m) {
  const int64_t n = int64_t(D.B) * D.T, d = D.d;
  return n * d + n + n * d + n * 3 * d + int64_t(D.B) * D.H * D.T * D.T + n * d + m * d + m + m * d + 2 * m * D.F;
}

void blockForward(const float* x, const float* W, const BlockDims& D, const int32_t* starts, int64_t m, const int32_t* rows,
                  float* saved, float* y) {
  const int64_t n = int64_t(D.B) * D.T, d = D.d, F = D.F;
  const Weights<const float> p(W, d, F);
  const Saved s(saved, D, m);
  layerNormForward(x, n, d, p.ln1g, p.ln1b, D.eps, s.xhat1, s.rstd1, s.h1);
  linearFwd(s.h1, p.qkvW, p.qkvB, n, d, 3 * d, false, s.qkv);
  attentionForward(s.qkv, D.B, D.T, D.H, int(d / D.H), starts, s.att, s.P);
  float* as = scratch(0, size_t(m) * d, false);
  float* o = scratch(1, size_t(m) * d, false);
  gatherRows(s.att, d, m, rows, as);
  linearFwd(as, p.outW, p.outB, m, d, d, false, o);
  // x2 = x[rows] + o, kept in y until the MLP's residual.
  gatherRows(x, d, m, rows, y);
  for (int64_t k = 0; k < m * d; k++) y[k] = y[k] + o[k];
  layerNormForward(y, m, d, p.ln2g, p.ln2b, D.eps, s.xhat2, s.rstd2, s.h2);
  if (D.act == 0) {
    linearFwd(s.h2, p.fcW, p.fcB, m, d, F, true, s.g);
    std::memcpy(s.f, s.g, size_t(m) * F * sizeof(float));
  } else {
    linearFwd(s.h2, p.fcW, p.fcB, m, d, F, false, s.f);
    geluForward(s.f, m * F, D.act - 1, s.g);
  }
  linearFwd(s.g, p.projW, p.projB, m, F, d, false, o);
  for (int64_t k = 0; k < m * d; k++) y[k] = y[k] + o[k];
}

void blockBackward(const float* dy, const float* W, const BlockDims& D, const int32_t* starts, int64_t m, const int32_t* rows,
                   const float* saved, float* dx, float* G) {
  const int64_t n = int64_t(D.B) * D.T, d = D.d, F = D.F;
  const Weights<const float> p(W, d, F);
  const Weights<float> g(G, d, F);
  const Saved s(const_cast<float*>(saved), D, m);
  float* dg = scratch(0, size_t(m) * F, false);
  float* df = scratch(1, size_t(m) * F, false);
  float* dh2 = scratch(2, size_t(m) * d, false);
  float* dx2 = scratch(3, size_t(m) * d, false);
  float* das = scratch(4, size_t(m) * d, false);
  float* as = scratch(5, size_t(m) * d, false);
  // MLP: y = x2 + proj(act(fc(LN2(x2)))).
  linearBwd(s.g, p.projW, dy, m, F, d, dg, g.projW, g.projB);
  if (D.act == 0) {
    for (int64_t k = 0; k < m * F; k++) df[k] = s.g[k] > 0.0f ? dg[k] : 0.0f;
  } else {
    geluBackward(s.f, dg, m * F, D.act - 1, df);
  }
  linearBwd(s.h2, p.fcW, df, m, d, F, dh2, g.fcW, g.fcB);
  layerNormBackward(dh2, s.xhat2, s.rstd2, p.ln2g, m, d, dx2, g.ln2g, g.ln2b);
  for (int64_t k = 0; k < m * d; k++) dx2[k] = dy[k] + dx2[k];
  // Attention branch: x2 = x[rows] + out(att[rows]).
  gatherRows(s.att, d, m, rows, as);
  linearBwd(as, p.outW, dx2, m, d, d, das, g.outW, g.outB);
  float* datt = scratch(0, size_t(n) * d, true);  // dg, df are done with
  float* dqkv = scratch(1, size_t(n) * 3 * d, true);
  float* dh1 = scratch(2, size_t(n) * d, false);
  for (int64_t i = 0; i < m; i++) {
    float* r = datt + (rows ? int64_t(rows[i]) : i) * d;
    const float* a = das + i * d;
    for (int64_t j = 0; j < d; j++) r[j] += a[j];
  }
  attentionBackward(s.qkv, datt, s.P, D.B, D.T, D.H, int(d / D.H), starts, dqkv);
  linearBwd(s.h1, p.qkvW, dqkv, n, d, 3 * d, dh1, g.qkvW, g.qkvB);
  layerNormBackward(dh1, s.xhat1, s.rstd1, p.ln1g, n, d, dx, g.ln1g, g.ln1b);
  // The residual's share of dx: dx2 at the picked rows.
  if (rows) {
    float* dr = scratch(4, size_t(n) * d, true);  // das is done with
    for (int64_t i = 0; i < m; i++) {
      float* r = dr + int64_t(rows[i]) * d;
      const float* a = dx2 + i * d;
      for (int64_t j = 0; j < d; j++) r[j] += a[j];
    }
    for (int64_t k = 0; k < n * d; k++) dx[k] = dx[k] + dr[k];
  } else {
    for (int64_t k = 0; k < n * d; k++) dx[k] = dx[k] + dx2[k];
  }
}

}  // namespace colloquy
