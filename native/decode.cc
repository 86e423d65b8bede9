// One KV-cached decoding step of the whole transformer (models/sampler.ts's single-token step) in
// one call: the embedding, every block (layer norm, q|k|v projection, one-row attention against
// each row's cache, output projection, residual, layer norm, MLP, residual), the final layer norm,
// the logits and their log-softmax. It runs what the step written with TF.js ops runs (gemm's
// multiply-add chains, here on weights packed once into panels, gemmPanels; attendCached,
// geluForward, logSoftmaxRows) in the same order and shapes, and normalises as that step does
// (models/lm-ops.ts layerNormRows: float64 mean, variance and scale), so the two give the same bits.
// What it saves is the dozens of tensor allocations, kernel dispatches and read-backs per layer, and
// the weights' strided reads (each panel is 16 contiguous columns).
#include "decode.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "gemm.h"
#include "nn.h"
#include "parallel.h"

namespace colloquy {

namespace {

int64_t layerFloats(int64_t d, int64_t F) {
  return 2 * d + panelFloats(d, 3 * d) + 3 * d + panelFloats(d, d) + d + 2 * d + panelFloats(d, F) + F + panelFloats(F, d) + d;
}

}  // namespace

int64_t decodeWeightCount(const DecodeDims& D) {
  const int64_t d = D.d, F = D.F;
  return D.L * layerFloats(d, F) + 2 * d + int64_t(D.V) * d + int64_t(D.C) * d + panelFloats(d, D.V);
}

namespace {

void linear(const float* x, const float* W, const float* b, int64_t M, int64_t K, int64_t N, bool relu, float* y) {
  gemmPanels(x, M, K, W, N, y, b, relu);
}

// models/lm-ops.ts's layerNormForward, operation for operation in double precision (JS numbers),
// rounding to float only where that code stores into a Float32Array.
void layerNormJs(const float* x, int64_t n, int64_t d, const float* g, const float* b, double eps, float* out) {
  for (int64_t r = 0; r < n; r++) {
    const float* xr = x + r * d;
    float* o = out + r * d;
    double mean = 0;
    for (int64_t j = 0; j < d; j++) mean += double(xr[j]);
    mean /= double(d);
    double v = 0;
    for (int64_t j = 0; j < d; j++) {
      const double c = double(xr[j]) - mean;
      v += c * c;
    }
    const double rs = 1.0 / std::sqrt(v / double(d) + eps);
    for (int64_t j = 0; j < d; j++) {
      const double h = (double(xr[j]) - mean) * rs;
      const double gh = h * double(g[j]);
      o[j] = float(gh + double(b[j]));
    }
  }
}

}  // namespace

void decodeStep(const float* W, const DecodeDims& D, int A, const int32_t* tokens, const int32_t* slots,
                float* const* caches, int nOut, const int32_t* outRows, float* logp, float* hidden) {
  const int64_t d = D.d, F = D.F, V = D.V, C = D.C;
  const int hd = D.d / D.H;
  thread_local std::vector<float> buf;
  buf.resize(size_t(A) * (3 * d + d + d + F + F + d + d) + size_t(nOut) * d);
  float* x = buf.data();           // residual stream [A, d]
  float* h = x + A * d;            // layer-norm output [A, d]
  float* qkv = h + A * d;          // [A, 3d]
  float* att = qkv + A * 3 * d;    // attended rows [A, d]
  float* y = att + A * d;          // branch output [A, d]
  float* ff = y + A * d;           // MLP hidden [A, F]
  float* ffa = ff + A * F;         // activated [A, F]
  float* xo = ffa + A * F;         // the residual stream of the output rows [nOut, d]

  // Offsets of the packed weights (decode.h).
  const int64_t perLayer = layerFloats(d, F);
  const float* lnf = W + D.L * perLayer;
  const float* E = lnf + 2 * d;
  const float* P = E + V * d;
  const float* outT = P + C * d;

  for (int a = 0; a < A; a++)
    for (int64_t j = 0; j < d; j++) x[a * d + j] = E[int64_t(tokens[a]) * d + j] + P[int64_t(slots[a]) * d + j];

  for (int l = 0; l < D.L; l++) {
    const float* p = W + l * perLayer;
    const float *ln1g = p, *ln1b = ln1g + d, *qkvW = ln1b + d, *qkvB = qkvW + panelFloats(d, 3 * d), *outW = qkvB + 3 * d,
                *outB = outW + panelFloats(d, d), *ln2g = outB + d, *ln2b = ln2g + d, *fcW = ln2b + d, *fcB = fcW + panelFloats(d, F),
                *projW = fcB + F, *projB = projW + panelFloats(F, d);
    layerNormJs(x, A, d, ln1g, ln1b, D.eps, h);
    linear(h, qkvW, qkvB, A, d, 3 * d, false, qkv);
    // Every entry's k, v first; then the attention reads only, entries split between two threads
    // (a dialog's later entries see its earlier ones either way).
    for (int a = 0; a < A; a++)
      storeCached(qkv + a * 3 * d, caches[a] + int64_t(2 * l) * C * d, caches[a] + int64_t(2 * l + 1) * C * d, slots[a], D.H, hd, int(C));
    const auto attend = [&](int a0, int a1) {
      for (int a = a0; a < a1; a++)
        attendStored(qkv + a * 3 * d, caches[a] + int64_t(2 * l) * C * d, caches[a] + int64_t(2 * l + 1) * C * d, slots[a], D.H, hd, int(C), att + a * d);
    };
    int64_t keys = 0;
    for (int a = 0; a < A; a++) keys += slots[a] + 1;
    // Split at half the keys read (the work), not half the entries.
    int mid = 0;
    for (int64_t acc = 0; mid < A && 2 * acc < keys; mid++) acc += slots[mid] + 1;
    parallel2([&](int part) { if (part == 0) attend(0, mid); else attend(mid, A); }, A >= 64 && keys * d >= (int64_t(1) << 23));
    linear(att, outW, outB, A, d, d, false, y);
    for (int64_t k = 0; k < A * d; k++) x[k] += y[k];
    layerNormJs(x, A, d, ln2g, ln2b, D.eps, h);
    if (D.act == 0) {
      linear(h, fcW, fcB, A, d, F, true, ffa);
    } else {
      linear(h, fcW, fcB, A, d, F, false, ff);
      geluForward(ff, A * F, D.act - 1, ffa);
    }
    linear(ffa, projW, projB, A, F, d, false, y);
    for (int64_t k = 0; k < A * d; k++) x[k] += y[k];
  }
  for (int o = 0; o < nOut; o++) std::memcpy(xo + o * d, x + int64_t(outRows[o]) * d, d * sizeof(float));
  layerNormJs(xo, nOut, d, lnf, lnf + d, D.eps, hidden);
  linear(hidden, outT, nullptr, nOut, d, V, false, logp);
  logSoftmaxRows(logp, nOut, V);
}

}  // namespace colloquy
