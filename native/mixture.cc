#include "mixture.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace colloquy {
namespace {

struct Kl { double kl, dkl; };

Kl klAt(double alpha, const double* a, const double* b, const float* logb, int64_t V, double* logx) {
  double kl = 0, dkl = 0;
  for (int64_t j = 0; j < V; j++) {
    const double x = alpha * a[j] + (1 - alpha) * b[j];
    if (x <= 0) { logx[j] = -INFINITY; continue; }
    const double lx = std::log(x);
    logx[j] = lx;
    const double d = lx - double(logb[j]);
    kl += x * d;
    dkl += (a[j] - b[j]) * d;
  }
  return {std::max(0.0, kl), dkl};
}

}  // namespace

void solveMixture(const double* loga, const float* logb, int64_t V, double k, double rtol, int maxIter, double guess,
                  double* logx, double* out) {
  thread_local std::vector<double> buf;
  buf.resize(size_t(3 * V));
  double* a = buf.data();
  double* b = a + V;
  double* scratch = b + V;
  for (int64_t j = 0; j < V; j++) { a[j] = std::exp(loga[j]); b[j] = std::exp(double(logb[j])); }
  // `best` holds log x at the lower end of the bracket (logx), `cand` the last candidate.
  double* best = logx;
  double* cand = scratch;
  const Kl full = klAt(1, a, b, logb, V, best);
  if (full.kl <= k) { out[0] = 1; out[1] = full.kl; out[2] = full.kl; return; }
  for (int64_t j = 0; j < V; j++) best[j] = logb[j];
  double lo = 0, klLo = 0, hi = 1, klHi = full.kl, dHi = full.dkl;
  const auto tryAt = [&](double c) {
    const Kl r = klAt(c, a, b, logb, V, cand);
    if (r.kl <= k) { lo = c; klLo = r.kl; std::swap(best, cand); } else { hi = c; klHi = r.kl; dHi = r.dkl; }
  };
  if (guess > 0 && guess < 1 && k > 0) tryAt(guess);
  for (int it = 0; it < maxIter && k > 0; it++) {
    if (k - klLo <= rtol * k || hi - lo < 1e-15) break;
    const double width = hi - lo;
    const double newton = dHi > 0 ? hi - (klHi - k) / dHi : lo;
    const double chord = lo + (k - klLo) * (hi - lo) / (klHi - klLo);
    if (chord > lo && chord < hi) tryAt(chord);
    if (newton > lo && newton < hi && k - klLo > rtol * k) tryAt(newton);
    if (hi - lo > 0.5 * width) tryAt(0.5 * (lo + hi));
  }
  if (best != logx) std::copy(best, best + V, logx);
  out[0] = lo; out[1] = klLo; out[2] = full.kl;
}

}  // namespace colloquy
