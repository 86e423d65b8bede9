// N-API binding of native/gemm.cc (see native/README.md). Context-aware: loads in worker threads.
//
//   gemm(a, aOff, b, bOff, c, cOff, batch, M, N, K, strideA, strideB, flags, bias, biasOff, biasSize, act, alpha)
//     a, b, c: Float32Array (any buffer, the wasm heap included); offsets in elements;
//     flags: 1 transA, 2 transB, 4 accumulate into C, 8 ReLU, 16 portable kernel; bias: Float32Array or null;
//     act: 0 none, 1 relu6, 2 leaky relu (alpha), 3 sigmoid, 4 elu (after the bias).
//   info() → { avx2: boolean }
//   logSoftmaxRows, crossEntropyForward/Backward, attentionForward/Backward, attendCached, geluForward/Backward: see nn.h
//   decodeStep: see decode.h
//   (argument order in the comments above each binding below).
#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "block.h"
#include "decode.h"
#include "mixture.h"
#include "parallel.h"
#include "gemm.h"
#include "nn.h"

namespace {

bool check(napi_env env, napi_status s) {
  if (s == napi_ok) return true;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, "ERR_NATIVE", "colloquy native: N-API call failed");
  return false;
}

bool f32(napi_env env, napi_value v, const char* name, float** data, int64_t* len) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* ptr = nullptr;
  napi_value ab;
  if (is && napi_get_typedarray_info(env, v, &type, &length, &ptr, &ab, &offset) == napi_ok && type == napi_float32_array) {
    *data = static_cast<float*>(ptr);
    *len = int64_t(length);
    return true;
  }
  napi_throw_type_error(env, "ERR_NATIVE_ARG", (std::string("gemm: ") + name + " must be a Float32Array").c_str());
  return false;
}

bool num(napi_env env, napi_value v, const char* name, int64_t* out) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) == napi_ok && std::isfinite(d) && d >= 0 && d == std::floor(d) && d < 9.0e15) {
    *out = int64_t(d);
    return true;
  }
  napi_throw_type_error(env, "ERR_NATIVE_ARG", (std::string("gemm: ") + name + " must be a non-negative integer").c_str());
  return false;
}

bool fits(napi_env env, const char* name, int64_t off, int64_t need, int64_t len) {
  if (need == 0 || off + need <= len) return true;
  napi_throw_range_error(env, "ERR_NATIVE_ARG", (std::string("gemm: ") + name + " is too short for the shapes given").c_str());
  return false;
}

napi_value Gemm(napi_env env, napi_callback_info info) {
  size_t argc = 18;
  napi_value argv[18];
  if (!check(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr))) return nullptr;
  if (argc < 13) {
    napi_throw_type_error(env, "ERR_NATIVE_ARG", "gemm: expected at least 13 arguments");
    return nullptr;
  }
  float *a, *b, *c, *bias = nullptr;
  int64_t aLen, bLen, cLen, biasLen = 0;
  int64_t aOff, bOff, cOff, batch, M, N, K, sA, sB, flags, biasOff = 0, biasSize = 0;
  if (!f32(env, argv[0], "a", &a, &aLen) || !num(env, argv[1], "aOff", &aOff) ||
      !f32(env, argv[2], "b", &b, &bLen) || !num(env, argv[3], "bOff", &bOff) ||
      !f32(env, argv[4], "c", &c, &cLen) || !num(env, argv[5], "cOff", &cOff) ||
      !num(env, argv[6], "batch", &batch) || !num(env, argv[7], "M", &M) || !num(env, argv[8], "N", &N) ||
      !num(env, argv[9], "K", &K) || !num(env, argv[10], "strideA", &sA) || !num(env, argv[11], "strideB", &sB) ||
      !num(env, argv[12], "flags", &flags))
    return nullptr;
  if (argc >= 16) {
    napi_valuetype t;
    napi_typeof(env, argv[13], &t);
    if (t != napi_null && t != napi_undefined) {
      if (!f32(env, argv[13], "bias", &bias, &biasLen) || !num(env, argv[14], "biasOff", &biasOff) ||
          !num(env, argv[15], "biasSize", &biasSize))
        return nullptr;
      if (biasSize != 1 && biasSize != N) {
        napi_throw_range_error(env, "ERR_NATIVE_ARG", "gemm: biasSize must be 1 or N");
        return nullptr;
      }
      if (!fits(env, "bias", biasOff, biasSize, biasLen)) return nullptr;
    }
  }
  if (batch > 0) {
    if (!fits(env, "a", aOff, (batch - 1) * sA + M * K, aLen) || !fits(env, "b", bOff, (batch - 1) * sB + K * N, bLen) ||
        !fits(env, "c", cOff, batch * M * N, cLen))
      return nullptr;
  }
  int64_t act = 0;
  double alpha = 0;
  if (argc >= 17 && !num(env, argv[16], "act", &act)) return nullptr;
  if (argc >= 18 && (napi_get_value_double(env, argv[17], &alpha) != napi_ok || !std::isfinite(alpha))) {
    napi_throw_type_error(env, "ERR_NATIVE_ARG", "gemm: alpha must be a finite number");
    return nullptr;
  }
  if (act > 4) {
    napi_throw_range_error(env, "ERR_NATIVE_ARG", "gemm: act must be 0-4");
    return nullptr;
  }
  colloquy::GemmArgs g{a + aOff, b + bOff, c + cOff, batch, M, N, K, sA, sB,
                       (flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0,
                       bias ? bias + biasOff : nullptr, biasSize, (flags & 8) != 0, (flags & 16) != 0,
                       int(act), float(alpha), 0, 0, 0};
  colloquy::gemm(g);
  return nullptr;
}


// Positional arguments of a call, read with checks; the first failure throws and sets `ok`.
struct Args {
  napi_env env;
  const char* fn;
  napi_value argv[16];
  size_t argc = 16;
  bool ok = true;
  Args(napi_env e, napi_callback_info info, const char* name, size_t need) : env(e), fn(name) {
    if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < need) fail("wrong number of arguments");
  }
  void fail(const std::string& why) {
    if (!ok) return;
    ok = false;
    napi_throw_type_error(env, "ERR_NATIVE_ARG", (std::string(fn) + ": " + why).c_str());
  }
  bool isNull(size_t i) {
    napi_valuetype t;
    return i >= argc || napi_typeof(env, argv[i], &t) != napi_ok || t == napi_null || t == napi_undefined;
  }
  // The data and length of typed array v of type `want`, or null (nothing thrown) when it is not one.
  void* view(napi_value v, napi_typedarray_type want, size_t* length) {
    bool is = false;
    napi_typedarray_type type;
    size_t offset = 0;
    void* ptr = nullptr;
    napi_value ab;
    if (napi_is_typedarray(env, v, &is) != napi_ok || !is || napi_get_typedarray_info(env, v, &type, length, &ptr, &ab, &offset) != napi_ok || type != want) return nullptr;
    return ptr;
  }
  static const char* typeName(napi_typedarray_type t) {
    return t == napi_float32_array ? "a Float32Array" : t == napi_float64_array ? "a Float64Array" : "an Int32Array";
  }
  // Elements of typed-array argument i (0 after a failure).
  size_t count(size_t i, napi_typedarray_type want) {
    if (!ok) return 0;
    size_t length = 0;
    if (!view(argv[i], want, &length)) fail("argument " + std::to_string(i) + " must be " + typeName(want));
    return length;
  }
  template <typename T>
  T* typed(size_t i, napi_typedarray_type want, int64_t need, bool nullable = false) {
    if (!ok) return nullptr;
    if (nullable && isNull(i)) return nullptr;
    size_t length = 0;
    void* ptr = view(argv[i], want, &length);
    if (!ptr) { fail("argument " + std::to_string(i) + " must be " + typeName(want)); return nullptr; }
    if (int64_t(length) < need) { fail("argument " + std::to_string(i) + " is too short for the shapes given"); return nullptr; }
    return static_cast<T*>(ptr);
  }
  float* f32(size_t i, int64_t need, bool nullable = false) { return typed<float>(i, napi_float32_array, need, nullable); }
  int32_t* i32(size_t i, int64_t need, bool nullable = false) { return typed<int32_t>(i, napi_int32_array, need, nullable); }
  double* f64(size_t i, int64_t need, bool nullable = false) { return typed<double>(i, napi_float64_array, need, nullable); }
  int64_t integer(size_t i) {
    if (!ok) return 0;
    double d = 0;
    if (napi_get_value_double(env, argv[i], &d) != napi_ok || !std::isfinite(d) || d < 0 || d != std::floor(d) || d > 2147483647.0) {
      fail("argument " + std::to_string(i) + " must be a non-negative integer");
      return 0;
    }
    return int64_t(d);
  }
  double number(size_t i) {
    double d = 0;
    if (ok && (napi_get_value_double(env, argv[i], &d) != napi_ok || !std::isfinite(d))) fail("argument " + std::to_string(i) + " must be a finite number");
    return d;
  }
};

napi_value number(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

// logSoftmaxRows(x: Float32Array, rows, n): in place.
napi_value LogSoftmaxRows(napi_env env, napi_callback_info info) {
  Args a(env, info, "logSoftmaxRows", 3);
  const int64_t rows = a.integer(1), n = a.integer(2);
  float* x = a.f32(0, rows * n);
  if (a.ok) colloquy::logSoftmaxRows(x, rows, n);
  return nullptr;
}

// crossEntropyForward(h, E, targets: Int32Array, weights | null, n, V, d, P) → mean loss
napi_value CrossEntropyForward(napi_env env, napi_callback_info info) {
  Args a(env, info, "crossEntropyForward", 8);
  const int64_t n = a.integer(4), V = a.integer(5), d = a.integer(6);
  const float* h = a.f32(0, n * d);
  const float* E = a.f32(1, V * d);
  const int32_t* y = a.i32(2, n);
  const float* w = a.f32(3, n, true);
  float* P = a.f32(7, n * V);
  if (!a.ok) return nullptr;
  for (int64_t i = 0; i < n; i++) if (y[i] < 0 || y[i] >= V) { a.fail("target outside the vocabulary"); return nullptr; }
  return number(env, colloquy::crossEntropyForward(h, E, y, w, n, V, d, P));
}

// policyLogProbsForward(h, E, actions: Int32Array, n, V, d, P, logP, ent: Float64Array, out)
napi_value PolicyLogProbsForward(napi_env env, napi_callback_info info) {
  Args a(env, info, "policyLogProbsForward", 10);
  const int64_t n = a.integer(3), V = a.integer(4), d = a.integer(5);
  const float* h = a.f32(0, n * d);
  const float* E = a.f32(1, V * d);
  const int32_t* y = a.i32(2, n);
  float* P = a.f32(6, n * V);
  float* logP = a.f32(7, n * V);
  double* ent = a.f64(8, n);
  float* out = a.f32(9, n * 2);
  if (!a.ok) return nullptr;
  for (int64_t i = 0; i < n; i++) if (y[i] < 0 || y[i] >= V) { a.fail("action outside the vocabulary"); return nullptr; }
  colloquy::policyLogProbsForward(h, E, y, n, V, d, P, logP, ent, out);
  return nullptr;
}

// policyLogProbsBackward(h, E, P, logP, ent, actions, g, n, V, d, dh, dE | null)
napi_value PolicyLogProbsBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, "policyLogProbsBackward", 12);
  const int64_t n = a.integer(7), V = a.integer(8), d = a.integer(9);
  const float* h = a.f32(0, n * d);
  const float* E = a.f32(1, V * d);
  float* P = a.f32(2, n * V);
  const float* logP = a.f32(3, n * V);
  const double* ent = a.f64(4, n);
  const int32_t* y = a.i32(5, n);
  const float* g = a.f32(6, n * 2);
  float* dh = a.f32(10, n * d);
  float* dE = a.f32(11, V * d, true);
  if (!a.ok) return nullptr;
  for (int64_t i = 0; i < n; i++) if (y[i] < 0 || y[i] >= V) { a.fail("action outside the vocabulary"); return nullptr; }
  colloquy::policyLogProbsBackward(h, E, P, logP, ent, y, g, n, V, d, dh, dE);
  return nullptr;
}

// crossEntropyBackward(h, E, P, targets, weights | null, n, V, d, scale, dh, dE)
napi_value CrossEntropyBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, "crossEntropyBackward", 11);
  const int64_t n = a.integer(5), V = a.integer(6), d = a.integer(7);
  const double scale = a.number(8);
  const float* h = a.f32(0, n * d);
  const float* E = a.f32(1, V * d);
  float* P = a.f32(2, n * V);
  const int32_t* y = a.i32(3, n);
  const float* w = a.f32(4, n, true);
  float* dh = a.f32(9, n * d);
  float* dE = a.f32(10, V * d);
  if (!a.ok) return nullptr;
  for (int64_t i = 0; i < n; i++) if (y[i] < 0 || y[i] >= V) { a.fail("target outside the vocabulary"); return nullptr; }
  colloquy::crossEntropyBackward(h, E, P, y, w, n, V, d, float(scale), dh, dE);
  return nullptr;
}

bool startsOk(Args& a, const int32_t* starts, int64_t B, int64_t T) {
  if (starts) for (int64_t b = 0; b < B; b++) if (starts[b] < 0 || starts[b] >= T) { a.fail("starts must lie in [0, T)"); return false; }
  return a.ok;
}

// attentionForward(qkv, B, T, H, hd, starts | null, out, P)
napi_value AttentionForward(napi_env env, napi_callback_info info) {
  Args a(env, info, "attentionForward", 8);
  const int64_t B = a.integer(1), T = a.integer(2), H = a.integer(3), hd = a.integer(4);
  const float* qkv = a.f32(0, B * T * 3 * H * hd);
  const int32_t* starts = a.i32(5, B, true);
  float* out = a.f32(6, B * T * H * hd);
  float* P = a.f32(7, B * H * T * T);
  if (startsOk(a, starts, B, T)) colloquy::attentionForward(qkv, int(B), int(T), int(H), int(hd), starts, out, P);
  return nullptr;
}

// attentionBackward(qkv, dout, P, B, T, H, hd, starts | null, dqkv)
napi_value AttentionBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, "attentionBackward", 9);
  const int64_t B = a.integer(3), T = a.integer(4), H = a.integer(5), hd = a.integer(6);
  const float* qkv = a.f32(0, B * T * 3 * H * hd);
  const float* dout = a.f32(1, B * T * H * hd);
  const float* P = a.f32(2, B * H * T * T);
  const int32_t* starts = a.i32(7, B, true);
  float* dqkv = a.f32(8, B * T * 3 * H * hd);
  if (startsOk(a, starts, B, T)) colloquy::attentionBackward(qkv, dout, P, int(B), int(T), int(H), int(hd), starts, dqkv);
  return nullptr;
}

// attendCached(qkv, qkvOff, K, V, slot, H, hd, C, out, outOff)
napi_value AttendCached(napi_env env, napi_callback_info info) {
  Args a(env, info, "attendCached", 10);
  const int64_t qOff = a.integer(1), slot = a.integer(4), H = a.integer(5), hd = a.integer(6), C = a.integer(7), oOff = a.integer(9);
  if (a.ok && slot >= C) a.fail("slot must be below the context length");
  const float* qkv = a.f32(0, qOff + 3 * H * hd);
  float* K = a.f32(2, H * C * hd);
  float* V = a.f32(3, H * C * hd);
  float* out = a.f32(8, oOff + H * hd);
  if (a.ok) colloquy::attendCached(qkv + qOff, K, V, int(slot), int(H), int(hd), int(C), out + oOff);
  return nullptr;
}

// layerNormForward(x, n, d, g, b, eps, xhat, rstd, out)
napi_value LayerNormForward(napi_env env, napi_callback_info info) {
  Args a(env, info, "layerNormForward", 9);
  const int64_t n = a.integer(1), d = a.integer(2);
  const double eps = a.number(5);
  const float* x = a.f32(0, n * d);
  const float* g = a.f32(3, d);
  const float* b = a.f32(4, d);
  float* xhat = a.f32(6, n * d);
  float* rstd = a.f32(7, n);
  float* out = a.f32(8, n * d);
  if (a.ok) colloquy::layerNormForward(x, n, d, g, b, float(eps), xhat, rstd, out);
  return nullptr;
}

// layerNormBackward(dy, xhat, rstd, g, n, d, dx, dg, db)
napi_value LayerNormBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, "layerNormBackward", 9);
  const int64_t n = a.integer(4), d = a.integer(5);
  const float* dy = a.f32(0, n * d);
  const float* xhat = a.f32(1, n * d);
  const float* rstd = a.f32(2, n);
  const float* g = a.f32(3, d);
  float* dx = a.f32(6, n * d);
  float* dg = a.f32(7, d);
  float* db = a.f32(8, d);
  if (a.ok) colloquy::layerNormBackward(dy, xhat, rstd, g, n, d, dx, dg, db);
  return nullptr;
}

// geluForward(x, n, kind, out); geluBackward(x, dy, n, kind, dx)   kind 0: tanh approximation, 1: erf
napi_value Gelu(napi_env env, napi_callback_info info, bool backward) {
  const int k = backward ? 1 : 0;  // geluBackward has dy after x
  Args a(env, info, backward ? "geluBackward" : "geluForward", 4 + k);
  const int64_t n = a.integer(1 + k), kind = a.integer(2 + k);
  if (a.ok && kind > 1) a.fail("kind must be 0 (tanh) or 1 (erf)");
  const float* x = a.f32(0, n);
  const float* dy = backward ? a.f32(1, n) : nullptr;
  float* out = a.f32(3 + k, n);
  if (!a.ok) return nullptr;
  if (backward) colloquy::geluBackward(x, dy, n, int(kind), out);
  else colloquy::geluForward(x, n, int(kind), out);
  return nullptr;
}
napi_value GeluForward(napi_env env, napi_callback_info info) { return Gelu(env, info, false); }
napi_value GeluBackward(napi_env env, napi_callback_info info) { return Gelu(env, info, true); }

// sampleRow(logProbs, V, temperature, u) → token id
napi_value SampleRow(napi_env env, napi_callback_info info) {
  Args a(env, info, "sampleRow", 4);
  const int64_t V = a.integer(1);
  const double temperature = a.number(2), u = a.number(3);
  const float* lp = a.f32(0, V);
  if (a.ok && (V < 1 || u < 0 || u >= 1)) a.fail("needs V ≥ 1 and u in [0, 1)");
  if (!a.ok) return nullptr;
  return number(env, colloquy::sampleRow(lp, V, temperature, u));
}

// decodeStep(W, dims, tokens, slots, caches, outRows, logp, hidden, eps)
//   W: the packed weights (decode.h); dims: Int32Array [L, d, H, F, V, C, act]; tokens, slots: Int32Array [A];
//   caches: an Array of A Float32Arrays of L·2·C·d floats each (one array may appear several times);
//   outRows: Int32Array [nOut] of entries in [0, A); logp [nOut·V], hidden [nOut·d] are written.
napi_value DecodeStep(napi_env env, napi_callback_info info) {
  Args a(env, info, "decodeStep", 9);
  const int32_t* dims = a.i32(1, 7);
  if (!a.ok) return nullptr;
  colloquy::DecodeDims D{dims[0], dims[1], dims[2], dims[3], dims[4], dims[5], dims[6], 0.0};
  if (D.L < 1 || D.d < 1 || D.H < 1 || D.d % D.H != 0 || D.F < 1 || D.V < 1 || D.C < 1 || D.act < 0 || D.act > 2) {
    a.fail("dims must be [L, d, H, F, V, C, act] with d a multiple of H and act 0-2");
    return nullptr;
  }
  D.eps = a.number(8);
  uint32_t A = 0;
  bool isArray = false;
  if (a.ok && (napi_is_array(env, a.argv[4], &isArray) != napi_ok || !isArray || napi_get_array_length(env, a.argv[4], &A) != napi_ok)) a.fail("caches must be an Array");
  if (a.ok && (A < 1 || A > 8192)) a.fail("needs 1 to 8192 entries");
  const float* W = a.f32(0, colloquy::decodeWeightCount(D));
  const int32_t* tokens = a.i32(2, A);
  const int32_t* slots = a.i32(3, A);
  const size_t nOut = a.count(5, napi_int32_array);
  const int32_t* outRows = a.i32(5, int64_t(nOut));
  float* logp = a.f32(6, int64_t(nOut) * D.V);
  float* hidden = a.f32(7, int64_t(nOut) * D.d);
  if (!a.ok) return nullptr;
  for (size_t o = 0; o < nOut; o++) if (outRows[o] < 0 || uint32_t(outRows[o]) >= A) { a.fail("outRows must lie in [0, A)"); return nullptr; }
  const int64_t cacheLen = int64_t(D.L) * 2 * D.C * D.d;
  std::vector<float*> caches(A);
  for (uint32_t r = 0; r < A; r++) {
    if (tokens[r] < 0 || tokens[r] >= D.V) { a.fail("token outside the vocabulary"); return nullptr; }
    if (slots[r] < 0 || slots[r] >= D.C) { a.fail("slot must lie in [0, C)"); return nullptr; }
    napi_value el;
    size_t length = 0;
    void* ptr = napi_get_element(env, a.argv[4], r, &el) == napi_ok ? a.view(el, napi_float32_array, &length) : nullptr;
    if (!ptr) { a.fail("each cache must be a Float32Array"); return nullptr; }
    if (int64_t(length) < cacheLen) { a.fail("a cache is shorter than L·2·C·d"); return nullptr; }
    caches[r] = static_cast<float*>(ptr);
  }
  colloquy::decodeStep(W, D, int(A), tokens, slots, caches.data(), int(nOut), outRows, logp, hidden);
  return nullptr;
}

// Block dims from an Int32Array [B, T, H, d, F, act] and eps (block.h); false after a.fail.
bool blockDims(Args& a, size_t i, size_t iEps, colloquy::BlockDims& D) {
  const int32_t* v = a.i32(i, 6);
  if (!a.ok) return false;
  D = colloquy::BlockDims{v[0], v[1], v[2], v[3], v[4], v[5], float(a.number(iEps))};
  if (a.ok && (D.B < 1 || D.T < 1 || D.H < 1 || D.d < 1 || D.d % D.H != 0 || D.F < 1 || D.act < 0 || D.act > 2 ||
               int64_t(D.B) * D.H * D.T * D.T > (int64_t(1) << 31))) a.fail("dims must be [B, T, H, d, F, act] with d a multiple of H and act 0-2");
  return a.ok;
}

// What blockForward and blockBackward share: dims (2) and eps (3), W (1), starts (4, or null),
// rows (5, or null: all n of them, m = n), each checked; false after a.fail.
struct BlockCall {
  colloquy::BlockDims D;
  int64_t n = 0, m = 0;
  const float* W = nullptr;
  const int32_t* starts = nullptr;
  const int32_t* rows = nullptr;
  bool parse(Args& a) {
    if (!blockDims(a, 2, 3, D)) return false;
    n = int64_t(D.B) * D.T;
    if (a.isNull(5)) {
      m = n;
    } else {
      m = int64_t(a.count(5, napi_int32_array));
      rows = a.i32(5, m);
    }
    W = a.f32(1, colloquy::blockParamFloats(D.d, D.F));
    starts = a.i32(4, D.B, true);
    if (!a.ok) return false;
    for (int64_t k = 0; k < m && rows; k++) if (rows[k] < 0 || rows[k] >= n) { a.fail("rows must lie in [0, B·T)"); return false; }
    for (int b = 0; b < D.B && starts; b++) if (starts[b] < 0 || starts[b] >= D.T) { a.fail("starts must lie in [0, T)"); return false; }
    return true;
  }
};

// blockSavedFloats(dims, eps, m) → floats the forward pass saves
napi_value BlockSavedFloats(napi_env env, napi_callback_info info) {
  Args a(env, info, "blockSavedFloats", 3);
  colloquy::BlockDims D;
  if (!blockDims(a, 0, 1, D)) return nullptr;
  const int64_t m = a.integer(2);
  if (!a.ok) return nullptr;
  return number(env, double(colloquy::blockSavedFloats(D, m)));
}

// blockForward(x, W, dims, eps, starts | null, rows | null, saved, y)
napi_value BlockForward(napi_env env, napi_callback_info info) {
  Args a(env, info, "blockForward", 8);
  BlockCall c;
  if (!c.parse(a)) return nullptr;
  const float* x = a.f32(0, c.n * c.D.d);
  float* saved = a.f32(6, colloquy::blockSavedFloats(c.D, c.m));
  float* y = a.f32(7, c.m * c.D.d);
  if (!a.ok) return nullptr;
  colloquy::blockForward(x, c.W, c.D, c.starts, c.m, c.rows, saved, y);
  return nullptr;
}

// blockBackward(dy, W, dims, eps, starts | null, rows | null, saved, dx, G)
napi_value BlockBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, "blockBackward", 9);
  BlockCall c;
  if (!c.parse(a)) return nullptr;
  const float* dy = a.f32(0, c.m * c.D.d);
  const float* saved = a.f32(6, colloquy::blockSavedFloats(c.D, c.m));
  float* dx = a.f32(7, c.n * c.D.d);
  float* G = a.f32(8, colloquy::blockParamFloats(c.D.d, c.D.F));
  if (!a.ok) return nullptr;
  colloquy::blockBackward(dy, c.W, c.D, c.starts, c.m, c.rows, saved, dx, G);
  return nullptr;
}

// solveMixture(loga: Float64Array, logb: Float32Array, k, rtol, maxIter, guess, logx: Float64Array, out: Float64Array [3])
napi_value SolveMixture(napi_env env, napi_callback_info info) {
  Args a(env, info, "solveMixture", 8);
  const size_t V = a.count(0, napi_float64_array);
  const double k = a.number(2), rtol = a.number(3), guess = a.number(5);
  const int64_t maxIter = a.integer(4);
  const double* loga = a.f64(0, int64_t(V));
  const float* logb = a.f32(1, int64_t(V));
  double* logx = a.f64(6, int64_t(V));
  double* out = a.f64(7, 3);
  if (a.ok && (V < 1 || !(k >= 0) || !(rtol >= 0) || maxIter < 0 || maxIter > 10000)) a.fail("needs V ≥ 1, k ≥ 0, rtol ≥ 0 and maxIter in [0, 10000]");
  if (!a.ok) return nullptr;
  colloquy::solveMixture(loga, logb, int64_t(V), k, rtol, int(maxIter), guess, logx, out);
  return nullptr;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj, avx2, threads;
  napi_create_object(env, &obj);
  napi_get_boolean(env, colloquy::gemmUsesAvx2(), &avx2);
  napi_set_named_property(env, obj, "avx2", avx2);
  napi_create_int32(env, colloquy::threads(), &threads);
  napi_set_named_property(env, obj, "threads", threads);
  return obj;
}

// setThreads(n): 1 runs every kernel on the calling thread, 2 lets large ones use a helper thread
// (results are the same bits either way).
napi_value SetThreads(napi_env env, napi_callback_info info) {
  Args a(env, info, "setThreads", 1);
  const int64_t n = a.integer(0);
  if (a.ok && (n < 1 || n > 64)) a.fail("threads must be 1 to 64");
  if (a.ok) colloquy::setThreads(int(n));
  return nullptr;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "gemm", NAPI_AUTO_LENGTH, Gemm, nullptr, &fn);
  napi_set_named_property(env, exports, "gemm", fn);
  const struct { const char* name; napi_callback cb; } fns[] = {
      {"info", Info}, {"setThreads", SetThreads}, {"solveMixture", SolveMixture},
      {"blockSavedFloats", BlockSavedFloats}, {"blockForward", BlockForward}, {"blockBackward", BlockBackward}, {"logSoftmaxRows", LogSoftmaxRows}, {"crossEntropyForward", CrossEntropyForward},
      {"policyLogProbsForward", PolicyLogProbsForward}, {"policyLogProbsBackward", PolicyLogProbsBackward},
      {"crossEntropyBackward", CrossEntropyBackward}, {"attentionForward", AttentionForward},
      {"attentionBackward", AttentionBackward}, {"attendCached", AttendCached},
      {"layerNormForward", LayerNormForward}, {"layerNormBackward", LayerNormBackward},
      {"sampleRow", SampleRow}, {"geluForward", GeluForward}, {"geluBackward", GeluBackward}, {"decodeStep", DecodeStep}};
  for (const auto& f : fns) {
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, nullptr, &fn);
    napi_set_named_property(env, exports, f.name, fn);
  }
  return exports;
}
